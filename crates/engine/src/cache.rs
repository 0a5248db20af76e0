//! `CompileCache`: compiled native code keyed by what was compiled and by whom, so the second
//! run of the same bytes never recompiles.
//!
//! Key: sha256(sha256(wasm) ‖ engine compatibility digest). Directory: `<root>/compiled-v1/`.
//! Every entry (and every `wasmbox compile` output) carries our own record — magic, format
//! version, kind, payload length, a CRC32 of the whole file, and the sha256 of the Wasm it was
//! compiled from and the engine digest it was compiled by — so an entry is used only for the
//! Wasm and engine it claims: a truncated, damaged or swapped-in entry (another program's code
//! renamed to this key) is detected and rebuilt, never handed to wasmtime's (unsafe)
//! deserializer. Entries are read through one open file descriptor that must be a regular
//! file (no symlinks, FIFOs or devices).
//!
//! Layout (format 4): wasmtime's serialized code (an ELF file) first, our record last — a
//! trailer of [`RECORD_LEN`] bytes — so a file is wasmtime's ELF from byte 0 and is mapped,
//! not read and copied ([`crate::mapped`]). Formats 1–3 put the record first; such files are
//! told apart ([`is_older_format`]) and recompiled.
//! The CRC32 guards against damage; the binding guards against mix-ups. Neither makes a
//! directory writable by someone else safe: the cache lives in the owner-only home.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::artifact::Kind;
use crate::fs::write_replace;
use crate::mapped::CodeBytes;

pub const MAGIC: &[u8; 8] = b"WBXCWASM";
const FORMAT_VERSION: u32 = 4;
/// The record's length: magic, version, kind, native flag, deterministic flag (+1 padding),
/// payload length, CRC32 of payload and record (+4 padding), wasm sha256, engine digest,
/// target triple (NUL-padded ASCII). It follows the payload.
pub const RECORD_LEN: usize = 8 + 4 + 4 + 8 + 4 + 4 + 32 + 32 + 32;
/// No compiled artifact is this large; a record claiming more is not read.
pub const MAX_PAYLOAD: u64 = 4 << 30;

/// What compiled code is bound to: the Wasm it came from and the engine that compiled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    pub wasm_sha256: [u8; 32],
    pub engine: [u8; 32],
}

impl Binding {
    /// The cache key of this binding (a file name).
    pub fn key(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.wasm_sha256);
        h.update(self.engine);
        hex(&h.finalize())
    }
}

/// Which CPU compiled code is for: its triple, and whether it was compiled for this very
/// machine's CPU features (native) or a target's baseline (cross-compiled, Pulley).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeTarget {
    pub triple: String,
    pub native: bool,
    /// Compiled for `run --deterministic` (canonical NaNs): wasmtime does not check this
    /// setting when it loads code, so our record keeps it. Older files have 0 here.
    pub deterministic: bool,
}

/// A decoded entry: what kind of code, what it is bound to, its target, and wasmtime's bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub kind: Kind,
    pub binding: Binding,
    pub target: CodeTarget,
    pub payload: &'a [u8],
}

/// `payload` followed by our record.
pub fn encode_entry(kind: Kind, binding: &Binding, target: &CodeTarget, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_LEN + payload.len());
    out.extend_from_slice(payload);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&[kind_byte(kind), target.native as u8, target.deterministic as u8, 0]);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&[0; 4]); // the checksum, filled in below
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&binding.wasm_sha256);
    out.extend_from_slice(&binding.engine);
    let mut triple = [0u8; 32];
    let name = target.triple.as_bytes();
    triple[..name.len().min(32)].copy_from_slice(&name[..name.len().min(32)]);
    out.extend_from_slice(&triple);
    let crc = checksum(payload, &out[payload.len()..]);
    out[payload.len() + 24..payload.len() + 28].copy_from_slice(&crc);
    out
}

/// CRC32 of the payload and of the record with its checksum field zeroed: damage anywhere in
/// the file is seen, the record's own fields (target, flags) included.
fn checksum(payload: &[u8], record: &[u8]) -> [u8; 4] {
    let mut h = crc32fast::Hasher::new();
    h.update(payload);
    h.update(&record[..24]);
    h.update(&[0; 4]);
    h.update(&record[28..]);
    h.finalize().to_le_bytes()
}

/// Whether `bytes` end in our record (a `wasmbox compile` file or a cache entry, possibly
/// damaged).
pub fn is_entry(bytes: &[u8]) -> bool {
    bytes.len() >= RECORD_LEN && bytes[bytes.len() - RECORD_LEN..].starts_with(MAGIC)
}

/// Whether `bytes` are a precompiled file of formats 1–3 (record first), which this wasmbox
/// no longer loads.
pub fn is_older_format(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// The parts of a record that can be checked before the payload is read.
struct Record {
    kind: Kind,
    len: u64,
    crc: [u8; 4],
    binding: Binding,
    target: CodeTarget,
}

fn decode_record(bytes: &[u8]) -> Result<Record, String> {
    if bytes.len() < RECORD_LEN || &bytes[..8] != MAGIC {
        return Err("truncated record".into());
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
    if len > MAX_PAYLOAD {
        return Err(format!("record claims {len} bytes of code"));
    }
    let binding = Binding { wasm_sha256: bytes[32..64].try_into().unwrap(), engine: bytes[64..96].try_into().unwrap() };
    let name = &bytes[96..128];
    let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
    let triple = std::str::from_utf8(&name[..end]).map_err(|_| "target is not text".to_string())?.to_string();
    let target = CodeTarget { triple, native: bytes[13] == 1, deterministic: bytes[14] == 1 };
    Ok(Record { kind, len, crc: bytes[24..28].try_into().unwrap(), binding, target })
}

/// Why [`decode_entry`] refuses a file of formats 1–3.
pub const OLDER_FORMAT: &str = "made by an older wasmbox (precompiled format 3 or before)";

/// Checks the record of `bytes` and returns the payload, or why it cannot be trusted.
pub fn decode_entry(bytes: &[u8]) -> Result<Entry<'_>, String> {
    let (entry, crc) = split_entry(bytes)?;
    if checksum(entry.payload, &bytes[bytes.len() - RECORD_LEN..]) != crc {
        return Err("checksum mismatch".into());
    }
    Ok(entry)
}

/// [`decode_entry`] without the checksum pass, for bytes it already accepted (an
/// [`crate::artifact::Code::Precompiled`]): the record is read again, the payload not.
pub fn decode_checked_entry(bytes: &[u8]) -> Result<Entry<'_>, String> {
    split_entry(bytes).map(|(entry, _)| entry)
}

/// The entry's parts and its recorded checksum, its structure checked.
fn split_entry(bytes: &[u8]) -> Result<(Entry<'_>, [u8; 4]), String> {
    if is_older_format(bytes) {
        return Err(OLDER_FORMAT.into());
    }
    if !is_entry(bytes) {
        return Err("truncated record".into());
    }
    let (payload, record) = bytes.split_at(bytes.len() - RECORD_LEN);
    let h = decode_record(record)?;
    if payload.len() as u64 != h.len {
        return Err(format!("payload is {} bytes, record says {}", payload.len(), h.len));
    }
    Ok((Entry { kind: h.kind, binding: h.binding, target: h.target, payload }, h.crc))
}

fn kind_byte(kind: Kind) -> u8 {
    match kind {
        Kind::Module => 0,
        Kind::Component => 1,
    }
}

/// One file in the cache directory, as `system df` and `system prune` see it.
#[derive(Debug)]
pub struct StoredEntry {
    pub path: PathBuf,
    pub bytes: u64,
    /// What its record says it is bound to; `None`: not a readable entry (damaged, foreign,
    /// an older format, a temp file), so nothing can use it.
    pub binding: Option<Binding>,
}

/// Opens an entry without following symlinks or blocking on FIFOs; only regular files.
fn open_entry(path: &Path) -> Result<(std::fs::File, u64), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        // O_NOFOLLOW: a symlink is refused; O_NONBLOCK: opening a FIFO must not block.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.file_type().is_file() {
        return Err("not a regular file".into());
    }
    Ok((file, meta.len()))
}

/// Maps a whole entry file through one descriptor: refuses symlinks and anything but a
/// regular file.
fn read_entry_file(path: &Path) -> Result<CodeBytes, String> {
    let (file, len) = open_entry(path)?;
    if len < RECORD_LEN as u64 || len > RECORD_LEN as u64 + MAX_PAYLOAD {
        return Err(format!("file is {len} bytes"));
    }
    CodeBytes::map(file, len).map_err(|e| e.to_string())
}

/// The record of an entry file, read alone (`system df` lists many entries).
fn read_record(file: &std::fs::File, len: u64) -> Option<Record> {
    use std::os::unix::fs::FileExt;
    let mut record = [0u8; RECORD_LEN];
    file.read_exact_at(&mut record, len.checked_sub(RECORD_LEN as u64)?).ok()?;
    let h = decode_record(&record).ok()?;
    (len == RECORD_LEN as u64 + h.len).then_some(h)
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

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.bin"))
    }

    /// The entry for `binding` (the whole file, mapped; [`decode_entry`] finds its payload),
    /// if present, intact and bound to exactly this Wasm and engine. Anything else is deleted
    /// and reported as a miss, so the caller recompiles and rewrites it.
    pub fn get(&self, binding: &Binding) -> Option<(Kind, CodeBytes)> {
        let path = self.path(&binding.key());
        let checked = read_entry_file(&path).and_then(|bytes| {
            let (kind, bound) = decode_entry(&bytes).map(|e| (e.kind, e.binding))?;
            if bound != *binding {
                return Err("compiled from other Wasm or by another engine than its name says".into());
            }
            Ok((kind, bytes))
        });
        match checked {
            Ok(found) => Some(found),
            Err(why) if std::fs::symlink_metadata(&path).is_ok() => {
                if why == OLDER_FORMAT {
                    tracing::debug!(path = %path.display(), "compile cache entry of an older format; recompiling");
                } else {
                    tracing::warn!(path = %path.display(), %why, "damaged compile cache entry; recompiling");
                }
                let _ = std::fs::remove_file(&path);
                None
            }
            Err(_) => None,
        }
    }

    /// Every file in the cache directory with what its record binds it to (records only are
    /// read). A missing directory is an empty cache.
    pub fn entries(&self) -> std::io::Result<Vec<StoredEntry>> {
        let listing = match std::fs::read_dir(&self.dir) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut entries = Vec::new();
        for item in listing {
            let item = item?;
            let bytes = item.metadata()?.len();
            let path = item.path();
            let binding = open_entry(&path).ok().and_then(|(file, len)| {
                let h = read_record(&file, len)?;
                (path.file_name()? == format!("{}.bin", h.binding.key()).as_str()).then_some(h.binding)
            });
            entries.push(StoredEntry { path, bytes, binding });
        }
        Ok(entries)
    }

    /// Stores `payload` under `binding` atomically; concurrent writers of one key are safe. Not
    /// synced to disk: an entry torn by a power loss fails its checksum and is recompiled.
    pub fn put(&self, binding: &Binding, target: &CodeTarget, kind: Kind, payload: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        write_replace(&self.path(&binding.key()), &encode_entry(kind, binding, target, payload))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Binding = Binding { wasm_sha256: [1; 32], engine: [2; 32] };

    fn t() -> CodeTarget {
        CodeTarget { triple: "aarch64-unknown-linux-gnu".into(), native: false, deterministic: true }
    }

    #[test]
    fn roundtrip_and_damage_detection() {
        let e = encode_entry(Kind::Component, &B, &t(), b"native code");
        assert_eq!(
            decode_entry(&e).unwrap(),
            Entry { kind: Kind::Component, binding: B, target: t(), payload: b"native code" }
        );
        assert!(decode_entry(&e[1..]).unwrap_err().contains("record says"));
        assert!(decode_entry(&e[..e.len() - 1]).unwrap_err().contains("truncated"));
        for at in [0, e.len() - 1] {
            let mut flipped = e.clone();
            flipped[at] ^= 1;
            assert!(decode_entry(&flipped).unwrap_err().contains("checksum"), "byte {at} flipped");
        }
        assert!(decode_entry(&e[..20]).is_err());
        // The checked decoder reads the record only: it still refuses a wrong structure.
        assert_eq!(decode_checked_entry(&e).unwrap(), decode_entry(&e).unwrap());
        assert!(decode_checked_entry(&e[1..]).unwrap_err().contains("record says"));
        // Format 3 and before: the record first.
        let mut older = e[e.len() - RECORD_LEN..].to_vec();
        older.extend_from_slice(b"native code");
        assert!(decode_entry(&older).unwrap_err().contains("older wasmbox"));
    }

    #[test]
    fn damaged_entry_is_a_miss_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path());
        cache.put(&B, &t(), Kind::Module, b"code").unwrap();
        let (kind, bytes) = cache.get(&B).unwrap();
        assert!(bytes.file().is_some(), "entries are mapped, not read");
        assert_eq!((kind, decode_entry(&bytes).unwrap().payload), (Kind::Module, &b"code"[..]));
        let path = cache.path(&B.key());
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(len - 2).unwrap();
        assert_eq!(cache.get(&B), None);
        assert!(!path.exists());
    }

    #[test]
    fn an_entry_swapped_in_from_another_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path());
        let other = Binding { wasm_sha256: [3; 32], ..B };
        cache.put(&other, &t(), Kind::Module, b"other program").unwrap();
        std::fs::rename(cache.path(&other.key()), cache.path(&B.key())).unwrap();
        assert_eq!(cache.get(&B), None, "an intact entry of another Wasm must not be used");
        assert!(!cache.path(&B.key()).exists(), "the swapped entry is removed");
    }

    #[test]
    fn symlinks_and_special_files_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path());
        std::fs::create_dir_all(cache.dir()).unwrap();
        let path = cache.path(&B.key());
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        let started = std::time::Instant::now();
        assert_eq!(cache.get(&B), None);
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "read from /dev/zero?");
        assert!(std::fs::symlink_metadata(&path).is_err(), "the symlink is removed");
        // A FIFO must neither block the open nor be read.
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(cache.get(&B), None);
        // A record that claims more than the file holds is refused without reading on.
        let mut e = encode_entry(Kind::Module, &B, &t(), b"code");
        let at = e.len() - RECORD_LEN + 16;
        e[at..at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
        std::fs::write(&path, &e).unwrap();
        assert_eq!(cache.get(&B), None);
    }
}
