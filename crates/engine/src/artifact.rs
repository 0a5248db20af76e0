//! `Artifact`: a source file read and classified — core module, component, `.wat` text, or a
//! precompiled file from `wasmbox compile` — before anything is compiled.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::cache::{self, Entry};
use crate::error::EngineError;
use crate::mapped::CodeBytes;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Module,
    Component,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Module => "module",
            Kind::Component => "component",
        })
    }
}

/// What the artifact's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// A Wasm binary (from a `.wasm`, or assembled from `.wat` text).
    Wasm(Vec<u8>),
    /// A whole `wasmbox compile` file (mapped when read from a file), its record checked:
    /// wasmtime's serialized native code, then our record ([`cache::decode_entry`]).
    Precompiled(CodeBytes),
}

#[derive(Debug, Clone)]
pub struct Artifact {
    pub path: PathBuf,
    pub kind: Kind,
    pub code: Code,
    /// Size of the file as read.
    pub file_size: u64,
    /// The file's text when it was `.wat` (kept for its digest).
    pub text: Option<Vec<u8>>,
}

impl Artifact {
    /// For precompiled code: the sha256 of the Wasm it was compiled from (from its header).
    pub fn bound_wasm_sha256(&self) -> Option<[u8; 32]> {
        match &self.code {
            Code::Precompiled(file) => crate::cache::decode_entry(file).ok().map(|e| e.binding.wasm_sha256),
            Code::Wasm(_) => None,
        }
    }

    /// sha256 of the file as read. Computed on request: running never needs it.
    pub fn sha256(&self) -> [u8; 32] {
        let file: &[u8] = match (&self.text, &self.code) {
            (Some(text), _) => text,
            (None, Code::Wasm(b)) => b,
            (None, Code::Precompiled(b)) => b,
        };
        Sha256::digest(file).into()
    }

    /// The Wasm binary, if this is not precompiled code.
    pub fn wasm(&self) -> Option<&[u8]> {
        match &self.code {
            Code::Wasm(b) => Some(b),
            Code::Precompiled(_) => None,
        }
    }
}

/// Reads and classifies the file at `path`. Precompiled code (an ELF file from byte 0) is
/// mapped rather than read ([`crate::mapped`]).
pub fn load(path: &Path) -> Result<Artifact, EngineError> {
    let read_error = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::NotFound => EngineError::NotFound { path: path.to_path_buf() },
        _ if path.is_dir() => {
            EngineError::NotWasm { path: path.to_path_buf(), reason: format!("it is a directory ({e})") }
        }
        _ => EngineError::Read { path: path.to_path_buf(), source: e },
    };
    let mut file = std::fs::File::open(path).map_err(read_error)?;
    let len = file.metadata().map_err(read_error)?.len();
    let mut magic = [0u8; 4];
    let elf = std::os::unix::fs::FileExt::read_exact_at(&file, &mut magic, 0).is_ok() && magic == *b"\x7fELF";
    if elf && len >= cache::RECORD_LEN as u64 {
        let bytes = CodeBytes::map(file, len).map_err(read_error)?;
        if cache::is_entry(&bytes) {
            return precompiled(path, bytes);
        }
        // Another ELF file (a raw .cwasm, a program): classified below, with its reason.
        return from_bytes(path, bytes.to_vec());
    }
    let mut bytes = Vec::with_capacity(len as usize);
    std::io::Read::read_to_end(&mut file, &mut bytes).map_err(read_error)?;
    from_bytes(path, bytes)
}

/// Classifies bytes that end in our record — a `wasmbox compile` file, checked (`path` is used
/// in messages only).
pub fn precompiled(path: &Path, bytes: CodeBytes) -> Result<Artifact, EngineError> {
    let not_wasm = |reason: String| EngineError::NotWasm { path: path.to_path_buf(), reason };
    let Entry { kind, .. } =
        cache::decode_entry(&bytes).map_err(|why| not_wasm(format!("damaged precompiled file: {why}")))?;
    let file_size = bytes.len() as u64;
    Ok(Artifact { path: path.to_path_buf(), kind, code: Code::Precompiled(bytes), file_size, text: None })
}

/// Classifies `bytes` read from `path` (used in messages only).
pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<Artifact, EngineError> {
    let file_size = bytes.len() as u64;
    let not_wasm = |reason: String| EngineError::NotWasm { path: path.to_path_buf(), reason };
    let make = |kind, code, text| Artifact { path: path.to_path_buf(), kind, code, file_size, text };

    if bytes.is_empty() {
        return Err(not_wasm("the file is empty".into()));
    }
    if bytes.starts_with(b"\0asm") {
        let kind = if wasmparser::Parser::is_component(&bytes) {
            Kind::Component
        } else if wasmparser::Parser::is_core_wasm(&bytes) {
            Kind::Module
        } else {
            return Err(not_wasm(format!("unknown Wasm binary version {:02x?}", &bytes[4..bytes.len().min(8)])));
        };
        return Ok(make(kind, Code::Wasm(bytes), None));
    }
    if cache::is_older_format(&bytes) {
        return Err(not_wasm(
            "it is precompiled code in the format of an older wasmbox; compile its .wasm again with `wasmbox compile`"
                .into(),
        ));
    }
    if cache::is_entry(&bytes) {
        return precompiled(path, CodeBytes::owned(bytes));
    }
    if wasmtime::Engine::detect_precompiled(&bytes).is_some() {
        return Err(not_wasm(
            "it is a raw wasmtime .cwasm; wasmbox runs .wasm, .wat, or files made by `wasmbox compile`".into(),
        ));
    }
    if looks_like_text(&bytes) {
        let wasm = assemble(path, &bytes)?;
        let kind = if wasmparser::Parser::is_component(&wasm) { Kind::Component } else { Kind::Module };
        return Ok(make(kind, Code::Wasm(wasm), Some(bytes)));
    }
    let head: Vec<String> = bytes.iter().take(4).map(|b| format!("{b:02x}")).collect();
    Err(not_wasm(format!("it starts with bytes {} instead of the Wasm magic 00 61 73 6d", head.join(" "))))
}

/// `.wat` text to a Wasm binary.
#[cfg(feature = "cranelift")]
fn assemble(path: &Path, text: &[u8]) -> Result<Vec<u8>, EngineError> {
    let wasm = wat::parse_bytes(text).map_err(|e| EngineError::Invalid {
        path: path.to_path_buf(),
        what: "text (.wat) file",
        source: anyhow::Error::msg(e.to_string()),
    })?;
    Ok(wasm.into_owned())
}

/// Text could only be compiled, and the edge build has no compiler (nor the assembler).
#[cfg(not(feature = "cranelift"))]
fn assemble(path: &Path, _: &[u8]) -> Result<Vec<u8>, EngineError> {
    Err(EngineError::NoCompiler { path: path.to_path_buf() })
}

/// WAT text is UTF-8 whose first meaningful character opens an s-expression or a comment.
fn looks_like_text(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(&bytes[..bytes.len().min(4096)]).or_else(|e| {
        // A multi-byte character cut at the 4 KiB boundary is still text.
        std::str::from_utf8(&bytes[..e.valid_up_to()]).map_err(|_| ())
    }) else {
        return false;
    };
    let t = text.trim_start_matches('\u{feff}').trim_start();
    t.starts_with('(') || t.starts_with(";;")
}

/// Whether Wasm is a component that exports `wasi:http/incoming-handler` (a `wasi:http/proxy`,
/// served rather than run), read from its binary without compiling it: the containerd shim picks
/// the engine to compile with from this (see `EngineOptions::uninterruptible`). Only the
/// component's own exports count, not those of components nested in it.
pub fn exports_http_handler(wasm: &[u8]) -> bool {
    use wasmparser::{Parser, Payload};
    if !Parser::is_component(wasm) {
        return false;
    }
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload {
            Ok(Payload::Version { .. }) => depth += 1,
            Ok(Payload::End(_)) => depth = depth.saturating_sub(1),
            Ok(Payload::ComponentExportSection(exports)) if depth == 1 => {
                if exports.into_iter().flatten().any(|e| e.name.name.starts_with("wasi:http/incoming-handler")) {
                    return true;
                }
            }
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_proxies_are_told_from_their_exports() {
        let read = |path: &str| std::fs::read(path).unwrap();
        assert!(exports_http_handler(&read(wasmbox_test_programs::HTTP_HELLO_COMPONENT)));
        assert!(exports_http_handler(&read(wasmbox_test_programs::HTTP_PROBE_COMPONENT)));
        assert!(!exports_http_handler(&read(wasmbox_test_programs::PROBE_COMPONENT)), "a wasi:cli/run component");
        assert!(!exports_http_handler(&read(wasmbox_test_programs::PROBE_MODULE)));
        assert!(!exports_http_handler(b"\0asm\x0d\0\x01\0garbage"));
        // An import of the interface does not make a server.
        let importer = wat::parse_str(
            r#"(component (import "wasi:http/incoming-handler@0.2.0" (instance)) (export "x" (instance 0)))"#,
        )
        .unwrap();
        assert!(!exports_http_handler(&importer));
        // Nor does a nested component's export.
        let nested = wat::parse_str(
            r#"(component (component (import "i" (instance)) (export "wasi:http/incoming-handler@0.2.0" (instance 0))))"#,
        )
        .unwrap();
        assert!(!exports_http_handler(&nested));
    }

    fn classify(bytes: &[u8]) -> Result<Artifact, EngineError> {
        from_bytes(Path::new("x.wasm"), bytes.to_vec())
    }

    #[test]
    fn kinds() {
        assert_eq!(classify(b"\0asm\x01\0\0\0").unwrap().kind, Kind::Module);
        assert_eq!(classify(b"\0asm\x0d\0\x01\0").unwrap().kind, Kind::Component);
        let a = classify(b"(module)").unwrap();
        assert!(a.text.is_some() && a.kind == Kind::Module);
        assert_eq!(a.sha256(), <[u8; 32]>::from(Sha256::digest(b"(module)")), "digest of the file, not the binary");
        assert_eq!(classify(b";; c\n(component)").unwrap().kind, Kind::Component);
    }

    #[test]
    fn rejects_non_wasm_with_reason() {
        for (bytes, needle) in [
            (&b""[..], "empty"),
            (b"\x89PNG\r\n\x1a\n", "89 50 4e 47"),
            (b"\0asm\x09\0\0\0", "version"),
            (b"hello world", "68 65 6c 6c"),
        ] {
            let e = classify(bytes).unwrap_err();
            assert_eq!(e.exit_code(), 126);
            assert!(e.to_string().contains(needle), "{e} lacks {needle}");
        }
        let e = classify(b"(module (func (bogus)))").unwrap_err();
        assert!(matches!(e, EngineError::Invalid { .. }));
    }

    #[test]
    fn missing_file_is_not_found() {
        let e = load(Path::new("/definitely/not/here.wasm")).unwrap_err();
        assert_eq!(e.exit_code(), 127);
    }
}
