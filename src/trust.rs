//! The CLI's side of trust: where the policy lives, reading key passwords, and the one check
//! every command that turns an image into a container makes.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use oci_spec::distribution::Reference;
use wasmbox_image::Store;
use wasmbox_trust::Policy;

use crate::home::wasmbox_home;

/// `$WASMBOX_HOME/policy.json`.
pub fn policy_path() -> anyhow::Result<PathBuf> {
    Ok(wasmbox_home()?.join("policy.json"))
}

/// The policy, if there is one; a file that cannot be used fails closed (an error).
pub fn load_policy() -> anyhow::Result<Option<Policy>> {
    Ok(wasmbox_image::admit::load_policy(&policy_path()?)?)
}

/// Re-checks a stored image against the current policy, offline, from the signatures kept
/// next to it (a key removed from the policy stops it at once).
pub fn admit_stored(
    store: &Store,
    reference: &Reference,
    digest: &str,
) -> anyhow::Result<Vec<wasmbox_trust::Verified>> {
    Ok(wasmbox_image::admit::admit_stored(store, &policy_path()?, reference, digest)?)
}

/// A key password: `WASMBOX_PASSWORD`, else `COSIGN_PASSWORD`, else one line of stdin with
/// `--password-stdin`, else asked on the terminal (twice when `confirm`).
pub fn password(from_stdin: bool, confirm: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\n', '\r']).to_string());
    }
    for var in ["WASMBOX_PASSWORD", "COSIGN_PASSWORD"] {
        if let Ok(p) = std::env::var(var) {
            return Ok(p);
        }
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("no password: set WASMBOX_PASSWORD (or COSIGN_PASSWORD) or pass --password-stdin");
    }
    let first = ask("Enter password for private key: ")?;
    if confirm && ask("Enter password for private key again: ")? != first {
        anyhow::bail!("passwords do not match");
    }
    Ok(first)
}

/// Reads a line from the terminal without echo.
fn ask(prompt: &str) -> anyhow::Result<String> {
    use std::io::Write;
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let fd = libc::STDIN_FILENO;
    let mut term: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: plain termios calls on stdin, restored below.
    let echo_off = unsafe { libc::tcgetattr(fd, &mut term) } == 0 && {
        let mut quiet = term;
        quiet.c_lflag &= !libc::ECHO;
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) == 0 }
    };
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if echo_off {
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &term) };
        eprintln!();
    }
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
