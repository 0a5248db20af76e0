//! `CompileCache`: compiled native code keyed by what was compiled and by whom, so the second
//! run of the same bytes never recompiles.
//!
//! Key: sha256(wasm bytes ‖ engine compatibility digest). Directory: `<root>/compiled-v1/`.
//! Every entry (and every `wasmbox compile` output) carries our own header — magic, format
//! version, kind, payload length, payload CRC32 — so a truncated or damaged file is detected
//! and rebuilt, never handed to wasmtime's (unsafe) deserializer. The checksum guards against
//! damage, not malice (the key is a sha256; the directory is the user's own): CRC32 costs a
//! fraction of a millisecond on a megabyte, where a second sha256 cost more than the rest of
//! a cached start.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::artifact::Kind;
use crate::fs::write_atomic;

pub const MAGIC: &[u8; 8] = b"WBXCWASM";
const FORMAT_VERSION: u32 = 1;
/// magic, version, kind (+3 padding), payload length, CRC32 (+4 padding).
pub const HEADER_LEN: usize = 8 + 4 + 4 + 8 + 4 + 4;

/// A decoded entry: what kind of code, and wasmtime's serialized bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub kind: Kind,
    pub payload: &'a [u8],
}

/// Frames `payload` with our header.
pub fn encode_entry(kind: Kind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&[kind_byte(kind), 0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(payload);
    out
}

/// Checks the header of `bytes` and returns the payload, or why it cannot be trusted.
pub fn decode_entry(bytes: &[u8]) -> Result<Entry<'_>, String> {
    if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
        return Err("truncated header".into());
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().unwrap());
    if version != FORMAT_VERSION {
        return Err(format!("format version {version}, expected {FORMAT_VERSION}"));
    }
    let kind = match bytes[12] {
        0 => Kind::Module,
        1 => Kind::Component,
        k => return Err(format!("unknown kind {k}")),
    };
    let len = u64::from_le_bytes(bytes[16..24].try_into().unwrap());
    let payload = &bytes[HEADER_LEN..];
    if payload.len() as u64 != len {
        return Err(format!("payload is {} bytes, header says {len}", payload.len()));
    }
    if crc32fast::hash(payload).to_le_bytes() != bytes[24..28] {
        return Err("checksum mismatch".into());
    }
    Ok(Entry { kind, payload })
}

fn kind_byte(kind: Kind) -> u8 {
    match kind {
        Kind::Module => 0,
        Kind::Component => 1,
    }
}

/// The on-disk cache under one directory.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    /// A cache rooted at `root` (usually `$WASMBOX_HOME/cache`); entries live in `compiled-v1/`.
    pub fn new(root: &Path) -> CompileCache {
        CompileCache { dir: root.join("compiled-v1") }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The cache key of `wasm` compiled by an engine with compatibility digest `compat`.
    pub fn key(wasm: &[u8], compat: &[u8; 32]) -> String {
        let mut h = Sha256::new();
        h.update(wasm);
        h.update(compat);
        hex(&h.finalize())
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.bin"))
    }

    /// The entry for `key` (the whole file; its payload starts at [`HEADER_LEN`]), if present
    /// and intact. A damaged entry is deleted and reported as a miss, so the caller recompiles
    /// and rewrites it.
    pub fn get(&self, key: &str) -> Option<(Kind, Vec<u8>)> {
        let path = self.path(key);
        let bytes = std::fs::read(&path).ok()?;
        match decode_entry(&bytes) {
            Ok(Entry { kind, .. }) => Some((kind, bytes)),
            Err(why) => {
                tracing::warn!(path = %path.display(), %why, "damaged compile cache entry; recompiling");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores `payload` under `key` atomically; concurrent writers of one key are safe.
    pub fn put(&self, key: &str, kind: Kind, payload: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        write_atomic(&self.path(key), &encode_entry(kind, payload))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_damage_detection() {
        let e = encode_entry(Kind::Component, b"native code");
        assert_eq!(decode_entry(&e).unwrap(), Entry { kind: Kind::Component, payload: b"native code" });
        assert!(decode_entry(&e[..e.len() - 1]).unwrap_err().contains("header says"));
        let mut flipped = e.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(decode_entry(&flipped).unwrap_err().contains("checksum"));
        assert!(decode_entry(&e[..20]).is_err());
    }

    #[test]
    fn damaged_entry_is_a_miss_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path());
        cache.put("k", Kind::Module, b"code").unwrap();
        let (kind, bytes) = cache.get("k").unwrap();
        assert_eq!((kind, &bytes[HEADER_LEN..]), (Kind::Module, &b"code"[..]));
        let path = cache.path("k");
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 2).unwrap();
        assert_eq!(cache.get("k"), None);
        assert!(!path.exists());
    }
}
