//! `LogFile`: a container's stdout and stderr, kept in `containers/<id>/log` with a size cap.
//!
//! When a write would take `log` past the cap, `log` becomes `log.1` (replacing the older one)
//! and a fresh `log` starts, so a container never holds more than twice the cap on disk however
//! much it writes. The file is opened on the first write, so idle containers hold no descriptor.
//! Write errors (disk full) drop the bytes: a guest's output never stops the guest.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use wasmbox_engine::{GuestOutput, OutStream};

pub struct LogFile {
    path: PathBuf,
    cap: u64,
    open: Mutex<Option<(File, u64)>>,
}

impl LogFile {
    pub fn new(dir: &Path, cap: u64) -> LogFile {
        LogFile { path: dir.join("log"), cap, open: Mutex::new(None) }
    }

    fn append(&self, mut bytes: &[u8]) -> std::io::Result<()> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.is_none() {
            let file = OpenOptions::new().create(true).append(true).open(&self.path)?;
            let len = file.metadata()?.len();
            *open = Some((file, len));
        }
        let (file, len) = open.as_mut().expect("opened above");
        if *len + bytes.len() as u64 > self.cap {
            std::fs::rename(&self.path, rotated(&self.path))?;
            *file = OpenOptions::new().create(true).append(true).open(&self.path)?;
            *len = 0;
            // One write bigger than the cap keeps only its end.
            if bytes.len() as u64 > self.cap {
                bytes = &bytes[bytes.len() - self.cap as usize..];
            }
        }
        file.write_all(bytes)?;
        *len += bytes.len() as u64;
        Ok(())
    }

    /// Closes the file (the container ended); the next write opens it again.
    pub fn close(&self) {
        *self.open.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl GuestOutput for LogFile {
    fn write(&self, _stream: OutStream, bytes: &[u8]) {
        if let Err(e) = self.append(bytes) {
            tracing::debug!(path = %self.path.display(), "log write dropped: {e}");
        }
    }
}

fn rotated(path: &Path) -> PathBuf {
    path.with_extension("1")
}

/// The last `tail` lines (all with `None`) of the container's log, older file first.
pub fn read_tail(dir: &Path, tail: Option<usize>) -> std::io::Result<Vec<u8>> {
    let path = dir.join("log");
    let mut all = Vec::new();
    for p in [rotated(&path), path] {
        match File::open(&p) {
            Ok(mut f) => {
                f.read_to_end(&mut all)?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    let Some(n) = tail else { return Ok(all) };
    // Count newlines back from the end; a last line without its newline counts as a line.
    let body = all.strip_suffix(b"\n").unwrap_or(&all);
    let start = body
        .iter()
        .rev()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(n.saturating_sub(1))
        .map(|(i, _)| body.len() - i);
    Ok(match (n, start) {
        (0, _) => Vec::new(),
        (_, Some(s)) => all[s..].to_vec(),
        (_, None) => all,
    })
}

/// Follows `log` from byte `offset`: returns new bytes and the next offset. A file shorter
/// than `offset` was rotated: reading starts again at its beginning.
pub fn read_from(dir: &Path, offset: u64) -> std::io::Result<(Vec<u8>, u64)> {
    let mut f = match File::open(dir.join("log")) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    };
    let len = f.metadata()?.len();
    let from = if len < offset { 0 } else { offset };
    f.seek(SeekFrom::Start(from))?;
    let mut buf = Vec::new();
    f.take(1 << 20).read_to_end(&mut buf)?;
    let next = from + buf.len() as u64;
    Ok((buf, next))
}

/// Current length of `log` (where `logs -f` starts after printing the tail).
pub fn len(dir: &Path) -> u64 {
    std::fs::metadata(dir.join("log")).map(|m| m.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_disk_use_under_twice_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile::new(dir.path(), 4096);
        for i in 0..10_000 {
            log.write(OutStream::Stdout, format!("line {i}\n").as_bytes());
        }
        log.write(OutStream::Stderr, &vec![b'x'; 100_000]);
        let size = |n: &str| std::fs::metadata(dir.path().join(n)).unwrap().len();
        assert!(size("log") <= 4096 && size("log.1") <= 4096, "{} {}", size("log"), size("log.1"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn tail_counts_lines_from_the_end() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("log.1"), "a\nb\n").unwrap();
        std::fs::write(dir.path().join("log"), "c\nd\n").unwrap();
        assert_eq!(read_tail(dir.path(), Some(3)).unwrap(), b"b\nc\nd\n");
        assert_eq!(read_tail(dir.path(), Some(1)).unwrap(), b"d\n");
        assert_eq!(read_tail(dir.path(), Some(0)).unwrap(), b"");
        assert_eq!(read_tail(dir.path(), Some(10)).unwrap(), b"a\nb\nc\nd\n");
        assert_eq!(read_tail(dir.path(), None).unwrap(), b"a\nb\nc\nd\n");
        let (bytes, next) = read_from(dir.path(), 2).unwrap();
        assert_eq!((bytes.as_slice(), next), (&b"d\n"[..], 4));
        assert_eq!(read_from(dir.path(), 100).unwrap().0, b"c\nd\n", "rotated: start over");
    }
}
