//! How wasmbox talks about failure: `error: …` with the cause chain, a `hint: …` where we know
//! the fix, and the documented exit code. No Rust backtraces reach users.

use std::io::IsTerminal;

use wasmbox_engine::EngineError;
use wasmbox_host::ClientError;
use wasmbox_image::{ImageError, RegistryFailure};

/// Exit code when wasmbox itself failed (bad flags, internal error).
pub const WASMBOX_FAILED: i32 = 125;

/// Prints `result`'s error (if any) and returns the process exit code.
pub fn exit_code(result: anyhow::Result<i32>) -> i32 {
    match result {
        Ok(code) => code,
        Err(err) => {
            let engine = err.chain().find_map(|e| e.downcast_ref::<EngineError>());
            let image = err.chain().find_map(|e| e.downcast_ref::<ImageError>());
            let client = err.chain().find_map(|e| e.downcast_ref::<ClientError>());
            #[cfg(feature = "compose")]
            if let Some(e) = err.chain().find_map(|e| e.downcast_ref::<wasmbox_compose::ComposeError>()) {
                eprintln!("{}: {err:#}", paint("error", "1;31"));
                eprintln!("{}: {}", paint("hint", "1;36"), compose_hint(e));
                return 126;
            }
            if let Some(client) = client {
                return crate::commands::containers::report(client);
            }
            eprintln!("{}: {err:#}", paint("error", "1;31"));
            let hint = engine.and_then(EngineError::hint).or_else(|| image.and_then(image_hint));
            if let Some(hint) = hint {
                eprintln!("{}: {hint}", paint("hint", "1;36"));
            }
            match (engine, image) {
                (Some(e), _) => e.exit_code(),
                (None, Some(e)) => image_exit_code(e),
                (None, None) => WASMBOX_FAILED,
            }
        }
    }
}

/// Image failures use the `run` table too: a missing image is "not found" (127), an image that
/// is damaged or of an unsupported kind "cannot run" (126), anything else is ours (125).
fn image_exit_code(e: &ImageError) -> i32 {
    match e {
        ImageError::NotFound(_) => 127,
        ImageError::Registry { failure: RegistryFailure::NotFound, .. } => 127,
        ImageError::Registry { .. } => WASMBOX_FAILED,
        ImageError::BadReference { .. } | ImageError::BadApp { .. } | ImageError::Io { .. } => WASMBOX_FAILED,
        ImageError::Policy(_) => WASMBOX_FAILED,
        _ => 126,
    }
}

#[cfg(feature = "compose")]
fn compose_hint(e: &wasmbox_compose::ComposeError) -> String {
    use wasmbox_compose::ComposeError as E;
    match e {
        E::Unsatisfied { .. } => {
            "plug a component that exports it (`--plug DEP`, or `[dependencies]` in wasmbox.toml); \
            `wasmbox inspect --wit DEP` shows what a component exports"
                .into()
        }
        E::Incompatible(_) => "the two were built against different versions of the interface; rebuild one \
            from the other's WIT (`wasmbox inspect --wit`)"
            .into(),
        E::Ambiguous { .. } => "plug only one dependency per interface".into(),
        E::WrongProvider { .. } => {
            "list the dependency under the interface it exports (`wasmbox inspect --wit DEP`)".into()
        }
        E::Unused { .. } => {
            "check the --plug file; `wasmbox inspect --wit` shows what each part imports and exports".into()
        }
        E::NotAComponent { .. } => "build it as a component (e.g. cargo's wasm32-wasip2 target, componentize-py, \
            componentize-js), or turn a module into one with `wasm-tools component new`"
            .into(),
        E::Cycle { .. } | E::Invalid(_) => "check each part with `wasmbox inspect --wit`".into(),
    }
}

fn image_hint(e: &ImageError) -> Option<String> {
    match e {
        ImageError::NotFound(_) => {
            Some("list local images with `wasmbox images`; make one with `wasmbox build -t NAME PATH`".into())
        }
        ImageError::Registry { failure: RegistryFailure::Unauthorized, registry, .. } => {
            Some(format!("log in with `wasmbox login {registry} -u USER --password-stdin`"))
        }
        ImageError::Registry { failure: RegistryFailure::Unreachable, registry, .. } => Some(format!(
            "check that {registry} is up and the name is right; registries off this machine need HTTPS (or --insecure)"
        )),
        ImageError::Registry { failure: RegistryFailure::NotFound, .. } => {
            Some("check the name and tag; `wasmbox push` uploads a local image".into())
        }
        ImageError::Registry { failure: RegistryFailure::Integrity, .. } => {
            Some("nothing was stored; the registry or something between us altered the content".into())
        }
        ImageError::Refused { reference, .. } => Some(format!(
            "see what applies with `wasmbox policy {reference}`; sign it (`wasmbox sign --key KEY {reference}`) and pull it again"
        )),
        ImageError::Policy(_) => Some("fix or remove the policy file; until then every image is refused".into()),
        ImageError::DigestMismatch { .. } | ImageError::MissingBlob(_) => {
            Some("the local store is damaged: remove the image with `wasmbox rmi` and build or pull it again".into())
        }
        _ => None,
    }
}

/// Usage errors exit 125 (not clap's 2, which a guest could return); `--help` and `--version`
/// exit 0.
pub fn clap_error(e: clap::Error) -> ! {
    let code = if e.use_stderr() { WASMBOX_FAILED } else { 0 };
    let _ = e.print();
    std::process::exit(code)
}

/// Errors carry no native backtrace unless `RUST_LIB_BACKTRACE` asks for one. Errors are
/// everyday events here (a guest's failed `open`, Winch declining code that Cranelift then
/// compiles), and with `RUST_BACKTRACE=1` in a developer's environment every one of them
/// walked the stack: a first `run` of a component Winch cannot compile took 0.2-0.3 s longer,
/// and wasmtime's errors printed 90 frames into one-line messages. Panics are unaffected
/// (wasmbox's hook prints one line either way). Must run before any thread starts.
pub fn quiet_error_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: called first in `main`, before any thread exists that could read the
        // environment concurrently.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
}

/// A panic is a wasmbox bug: one line saying so, exit 125, no Rust backtrace.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        // Output piped into a reader that quit (`wasmbox ps | head`): end quietly, the way a
        // shell tool killed by SIGPIPE does (128 + 13).
        if msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("error: internal error: {msg}{at} (this is a wasmbox bug; please report it)");
        std::process::exit(WASMBOX_FAILED);
    }));
}

/// `WASMBOX_LOG=debug` (any tracing filter) turns on diagnostics on stderr.
pub fn init_logging() {
    if let Ok(spec) = std::env::var("WASMBOX_LOG") {
        // A bare level (`debug`) is about wasmbox itself, not every dependency's internals.
        let spec = if spec.contains('=') { spec } else { format!("warn,wasmbox={spec},wasmbox_engine={spec}") };
        let filter = tracing_subscriber::EnvFilter::try_new(&spec).unwrap_or_else(|_| "warn".into());
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(use_color())
            .without_time()
            .init();
    }
}

fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

fn paint(text: &str, style: &str) -> String {
    if use_color() { format!("\x1b[{style}m{text}\x1b[0m") } else { text.to_string() }
}
