//! Reading a container's log records (written by `log_file.rs`): all of them, a selection
//! (`--since/--until/--tail`), or new ones as they come (`-f`). The same line format goes over
//! the daemon API, so the client can split stdout from stderr and print times.
//!
//! Logs from before the record format (`log`, `log.1`: the guest's raw bytes, streams mixed)
//! read as stdout lines stamped with their file's modification time, the best time known.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use wasmbox_engine::OutStream;

use crate::log_file::{FILE, ROTATED};
use crate::log_time::{self, Nanos};

const LEGACY: [&str; 2] = ["log.1", "log"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub time: Nanos,
    pub stream: OutStream,
    /// Part of a line: printed without a newline.
    pub partial: bool,
    pub payload: Vec<u8>,
}

impl Record {
    /// The on-disk and wire form, one line.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let tag = if self.partial { 'P' } else { 'F' };
        crate::log_file::encode(out, &log_time::format(self.time), self.stream, tag, &self.payload);
    }

    /// One line without its newline; `None` for anything that is not a record.
    pub fn parse(line: &[u8]) -> Option<Record> {
        let mut parts = line.splitn(4, |b| *b == b' ');
        let time = log_time::parse_stamp(std::str::from_utf8(parts.next()?).ok()?)?;
        let stream = match parts.next()? {
            b"stdout" => OutStream::Stdout,
            b"stderr" => OutStream::Stderr,
            _ => return None,
        };
        let partial = match parts.next()? {
            b"P" => true,
            b"F" => false,
            _ => return None,
        };
        Some(Record { time, stream, partial, payload: parts.next().unwrap_or_default().to_vec() })
    }
}

/// What `logs` asks for: a time window, then the last `tail` lines of it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection {
    pub since: Option<Nanos>,
    pub until: Option<Nanos>,
    pub tail: Option<usize>,
}

impl Selection {
    pub fn admits(&self, t: Nanos) -> bool {
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t <= u)
    }
}

/// Every record of the container's log, oldest first.
pub fn read_all(dir: &Path) -> std::io::Result<Vec<Record>> {
    let mut records = Vec::new();
    for name in LEGACY {
        if let Some((bytes, mtime)) = read_file(&dir.join(name))? {
            records.extend(legacy_records(&bytes, mtime));
        }
    }
    for name in [ROTATED, FILE] {
        if let Some((bytes, _)) = read_file(&dir.join(name))? {
            records.extend(bytes.split(|b| *b == b'\n').filter_map(Record::parse));
        }
    }
    Ok(records)
}

/// The records `sel` picks, oldest first. A line split into parts counts once for `tail`.
pub fn select(records: Vec<Record>, sel: &Selection) -> Vec<Record> {
    let mut picked: Vec<Record> = records.into_iter().filter(|r| sel.admits(r.time)).collect();
    if let Some(n) = sel.tail {
        let mut lines = 0;
        let mut start = picked.len();
        let mut later = [false; 2]; // a later record of this stream exists
        for (i, r) in picked.iter().enumerate().rev() {
            let seen = &mut later[matches!(r.stream, OutStream::Stderr) as usize];
            // A complete record ends a line; so does a stream's unfinished last output.
            if !r.partial || !*seen {
                if lines == n {
                    break;
                }
                lines += 1;
            }
            *seen = true;
            start = i;
        }
        if n == 0 {
            start = picked.len();
        }
        picked.drain(..start);
    }
    picked
}

/// Reads records appended to the current file since the last call (`logs -f`).
pub struct Follower {
    offset: u64,
}

impl Follower {
    /// Starts at the current end of the log.
    pub fn at_end(dir: &Path) -> Follower {
        Follower { offset: std::fs::metadata(dir.join(FILE)).map(|m| m.len()).unwrap_or(0) }
    }

    /// New whole records (at most about 1 MiB a call). A file shorter than the offset was
    /// rotated: reading starts again at its beginning.
    pub fn poll(&mut self, dir: &Path) -> std::io::Result<Vec<Record>> {
        let mut f = match File::open(dir.join(FILE)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        if f.metadata()?.len() < self.offset {
            self.offset = 0;
        }
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        f.take(1 << 20).read_to_end(&mut buf)?;
        let whole = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        self.offset += whole as u64;
        Ok(buf[..whole].split(|b| *b == b'\n').filter_map(Record::parse).collect())
    }

    /// Whether everything written so far has been read.
    pub fn caught_up(&self, dir: &Path) -> bool {
        std::fs::metadata(dir.join(FILE)).map(|m| m.len()).unwrap_or(0) <= self.offset
    }
}

fn read_file(path: &Path) -> std::io::Result<Option<(Vec<u8>, Nanos)>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let mtime = std::fs::metadata(path)?
                .modified()
                .ok()
                .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as Nanos);
            Ok(Some((bytes, mtime)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn legacy_records(bytes: &[u8], time: Nanos) -> impl Iterator<Item = Record> + '_ {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let complete = bytes.ends_with(b"\n");
    let count = body.split(|b| *b == b'\n').count();
    body.split(|b| *b == b'\n').enumerate().filter(move |_| !bytes.is_empty()).map(move |(i, line)| Record {
        time,
        stream: OutStream::Stdout,
        partial: i + 1 == count && !complete,
        payload: line.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_file::LogFile;
    use wasmbox_engine::GuestOutput;

    fn text(records: &[Record]) -> String {
        records
            .iter()
            .map(|r| {
                let s = String::from_utf8_lossy(&r.payload);
                let stream = if r.stream == OutStream::Stdout { "o" } else { "e" };
                format!("{stream}:{s}{}", if r.partial { "…" } else { "|" })
            })
            .collect()
    }

    #[test]
    fn streams_stay_apart_and_lines_are_whole() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile::new(dir.path(), 1 << 20);
        log.write(OutStream::Stdout, b"out ");
        log.write(OutStream::Stderr, b"err 1\nerr");
        log.write(OutStream::Stdout, b"1\nout 2\nno newline");
        log.write(OutStream::Stderr, b" 2\n");
        log.close();
        let all = read_all(dir.path()).unwrap();
        assert_eq!(text(&all), "e:err 1|o:out 1|o:out 2|e:err 2|o:no newline…");
        assert!(all.windows(2).all(|w| w[0].time <= w[1].time), "times only grow");
        let tail = select(all.clone(), &Selection { tail: Some(2), ..Default::default() });
        assert_eq!(text(&tail), "e:err 2|o:no newline…");
        let none = select(all, &Selection { tail: Some(0), ..Default::default() });
        assert!(none.is_empty());
    }

    #[test]
    fn rotation_keeps_whole_records_under_twice_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile::new(dir.path(), 4096);
        for i in 0..10_000 {
            log.write(OutStream::Stdout, format!("line {i}\n").as_bytes());
        }
        log.write(OutStream::Stderr, &[b'x'; 100_000]);
        log.write(OutStream::Stderr, b"\nlast\n");
        let size = |n: &str| std::fs::metadata(dir.path().join(n)).unwrap().len();
        assert!(size(FILE) <= 4096 && size(ROTATED) <= 4096, "{} {}", size(FILE), size(ROTATED));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        let all = read_all(dir.path()).unwrap();
        assert!(!all.is_empty());
        let raw = std::fs::read(dir.path().join(ROTATED)).unwrap();
        assert_eq!(raw.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count(), all.len() - count_current(dir.path()));
        assert_eq!(text(&all[all.len() - 1..]), "e:last|");
    }

    fn count_current(dir: &Path) -> usize {
        std::fs::read(dir.join(FILE)).unwrap().split(|b| *b == b'\n').filter(|l| !l.is_empty()).count()
    }

    #[test]
    fn old_raw_logs_still_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("log.1"), "a\nb\n").unwrap();
        std::fs::write(dir.path().join("log"), "c\nd").unwrap();
        let log = LogFile::new(dir.path(), 1 << 20);
        log.write(OutStream::Stderr, b"new\n");
        let all = read_all(dir.path()).unwrap();
        assert_eq!(text(&all), "o:a|o:b|o:c|o:d…e:new|");
        let tail = select(all, &Selection { tail: Some(3), ..Default::default() });
        assert_eq!(text(&tail), "o:c|o:d…e:new|");
    }

    #[test]
    fn follow_reads_only_whole_new_records_and_survives_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile::new(dir.path(), 4096);
        log.write(OutStream::Stdout, b"before\n");
        let mut follower = Follower::at_end(dir.path());
        assert!(follower.poll(dir.path()).unwrap().is_empty());
        log.write(OutStream::Stdout, b"one\ntw");
        assert_eq!(text(&follower.poll(dir.path()).unwrap()), "o:one|");
        log.write(OutStream::Stdout, b"o\n");
        assert_eq!(text(&follower.poll(dir.path()).unwrap()), "o:two|");
        assert!(follower.caught_up(dir.path()));
        let line = [b'y'; 100];
        for _ in 0..60 {
            log.write(OutStream::Stdout, &line);
            log.write(OutStream::Stdout, b"\n");
        }
        assert!(!follower.poll(dir.path()).unwrap().is_empty(), "rotated: starts over on the new file");
    }

    #[test]
    fn records_round_trip_and_junk_is_skipped() {
        let r = Record {
            time: 1_764_250_049_000_000_001,
            stream: OutStream::Stderr,
            partial: true,
            payload: b"a b\r".to_vec(),
        };
        let mut line = Vec::new();
        r.encode(&mut line);
        assert_eq!(Record::parse(line.strip_suffix(b"\n").unwrap()), Some(r));
        for junk in
            [&b""[..], b"hello", b"2025-11-27T13:27:29.000000001Z stdin F x", b"2025-11-27T13:27:29Z stdout X x"]
        {
            assert_eq!(Record::parse(junk), None);
        }
    }
}
