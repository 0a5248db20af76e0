//! `CodeBytes`: the bytes of a precompiled file or compile cache entry — mapped from its file
//! when it came from one, owned otherwise (an image layer in memory, code just made).
//!
//! Why mapped: reading 0.5 MB of code into the heap and having wasmtime copy it into a code
//! mapping cost ~270 page faults (a third of a `run --allow-precompiled`'s); a read-only
//! mapping faults in 16 cached pages at a time, and wasmtime maps the same file itself
//! ([`CodeBytes::file`]), so code pages are shared with the page cache — and between processes
//! running the same code. The file must not change while mapped: cache entries are replaced by
//! rename, never rewritten in place (the same contract as wasmtime's `deserialize_file`).

use std::fs::File;
use std::sync::Arc;

/// Immutable bytes, mapped or owned. Cheap to clone.
#[derive(Clone)]
pub struct CodeBytes(Arc<Inner>);

enum Inner {
    Owned(Vec<u8>),
    Mapped { ptr: *const u8, len: usize, file: File },
}

// SAFETY: the mapping is read-only and private, owned by `Inner` until drop; `File` is Send+Sync.
unsafe impl Send for Inner {}
// SAFETY: as above; nothing mutates the mapping.
unsafe impl Sync for Inner {}

impl CodeBytes {
    pub fn owned(bytes: Vec<u8>) -> CodeBytes {
        CodeBytes(Arc::new(Inner::Owned(bytes)))
    }

    /// Maps `file` (a regular file of `len` bytes, `len > 0`) read-only.
    pub fn map(file: File, len: u64) -> std::io::Result<CodeBytes> {
        use std::os::fd::AsRawFd;
        let len = usize::try_from(len).map_err(|_| std::io::Error::other("file too large to map"))?;
        if len == 0 {
            return Ok(CodeBytes::owned(Vec::new()));
        }
        // SAFETY: a fresh private read-only mapping of an open file; checked for failure.
        let ptr =
            unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, file.as_raw_fd(), 0) };
        if ptr == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(CodeBytes(Arc::new(Inner::Mapped { ptr: ptr as *const u8, len, file })))
    }

    /// The file these bytes are mapped from, if they are.
    pub fn file(&self) -> Option<&File> {
        match &*self.0 {
            Inner::Mapped { file, .. } => Some(file),
            Inner::Owned(_) => None,
        }
    }
}

impl std::ops::Deref for CodeBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &*self.0 {
            Inner::Owned(v) => v,
            // SAFETY: the mapping is `len` readable bytes and lives as long as `self`.
            Inner::Mapped { ptr, len, .. } => unsafe { std::slice::from_raw_parts(*ptr, *len) },
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Inner::Mapped { ptr, len, .. } = self {
            // SAFETY: our own mapping, unmapped once; no slice of it outlives `self`.
            unsafe { libc::munmap(*ptr as *mut libc::c_void, *len) };
        }
    }
}

impl std::fmt::Debug for CodeBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = if self.file().is_some() { "mapped" } else { "owned" };
        write!(f, "CodeBytes({} bytes, {how})", self.len())
    }
}

impl PartialEq for CodeBytes {
    fn eq(&self, other: &CodeBytes) -> bool {
        **self == **other
    }
}

impl Eq for CodeBytes {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_and_owned_bytes_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"precompiled").unwrap();
        let mapped = CodeBytes::map(File::open(&path).unwrap(), 11).unwrap();
        assert!(mapped.file().is_some());
        assert_eq!(mapped, CodeBytes::owned(b"precompiled".to_vec()));
        let copy = mapped.clone();
        drop(mapped);
        assert_eq!(&copy[..], b"precompiled", "a clone keeps the mapping");
        assert!(CodeBytes::map(File::open(&path).unwrap(), 0).unwrap().is_empty());
    }
}
