//! `LogFile`: a container's stdout and stderr, kept apart and time-stamped in
//! `containers/<id>/output.log`, with a size cap.
//!
//! One record per line, in the CRI log format containerd writes for Kubernetes:
//! `<RFC 3339 time> <stdout|stderr> <F|P> <bytes>\n`. `F` ends a line of the guest's; `P` is
//! part of a longer line (or the unfinished end of the output) and is printed without a
//! newline. The time is when the line was complete (written by the guest), so `logs
//! --timestamps/--since/--until` mean what they do for `docker logs`.
//!
//! When a record would take the file past the cap, it becomes `output.log.1` (replacing the
//! older one) and a fresh file starts, so a container never holds more than twice the cap on
//! disk however much it writes. The file is opened on the first record, so idle containers hold
//! no descriptor. Write errors (disk full) drop the bytes: a guest's output never stops the
//! guest. Logs written before this format (`log`, `log.1`: raw bytes) are still read, see
//! `log_read.rs`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use wasmbox_engine::{GuestOutput, OutStream};

use crate::log_time;

pub const FILE: &str = "output.log";
pub const ROTATED: &str = "output.log.1";

/// Longest record payload: longer lines are split (docker splits at 16 KiB too).
const MAX_RECORD: usize = 16 * 1024;

pub struct LogFile {
    path: PathBuf,
    cap: u64,
    /// Payload per record: at most a quarter of the cap, so a record always fits a fresh file.
    chunk: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    open: Option<(File, u64)>,
    /// The unfinished line of stdout and of stderr (at most one chunk each).
    pending: [Vec<u8>; 2],
}

impl LogFile {
    pub fn new(dir: &Path, cap: u64) -> LogFile {
        let chunk = MAX_RECORD.min((cap / 4).max(64) as usize);
        LogFile { path: dir.join(FILE), cap, chunk, state: Mutex::new(State::default()) }
    }

    fn take_lines(&self, state: &mut State, stream: OutStream, bytes: &[u8], out: &mut Vec<u8>) {
        let stamp = log_time::format(log_time::now());
        let pending = &mut state.pending[index(stream)];
        pending.extend_from_slice(bytes);
        let mut rest: &[u8] = pending;
        while let Some(nl) = rest.iter().position(|b| *b == b'\n') {
            let mut line = &rest[..nl];
            while line.len() > self.chunk {
                encode(out, &stamp, stream, 'P', &line[..self.chunk]);
                line = &line[self.chunk..];
            }
            encode(out, &stamp, stream, 'F', line);
            rest = &rest[nl + 1..];
        }
        while rest.len() >= self.chunk {
            encode(out, &stamp, stream, 'P', &rest[..self.chunk]);
            rest = &rest[self.chunk..];
        }
        let kept = rest.len();
        let len = pending.len();
        pending.drain(..len - kept);
    }

    fn append(&self, state: &mut State, records: &[u8]) -> std::io::Result<()> {
        if state.open.is_none() {
            let file = OpenOptions::new().create(true).append(true).open(&self.path)?;
            let len = file.metadata()?.len();
            state.open = Some((file, len));
        }
        let (file, len) = state.open.as_mut().expect("opened above");
        // Rotate on record boundaries, so both files hold whole records.
        let mut rest = records;
        while !rest.is_empty() {
            let mut take = fitting(rest, self.cap.saturating_sub(*len) as usize);
            if take == 0 && *len > 0 {
                std::fs::rename(&self.path, self.path.with_file_name(ROTATED))?;
                *file = OpenOptions::new().create(true).append(true).open(&self.path)?;
                *len = 0;
                continue;
            }
            if take == 0 {
                // Larger than the cap on its own (cannot happen with chunk <= cap/4): keep it whole.
                take = rest.iter().position(|b| *b == b'\n').map_or(rest.len(), |i| i + 1);
            }
            file.write_all(&rest[..take])?;
            *len += take as u64;
            rest = &rest[take..];
        }
        Ok(())
    }

    /// Writes out unfinished lines and closes the file (the container ended); the next write
    /// opens it again.
    pub fn close(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let stamp = log_time::format(log_time::now());
        let mut records = Vec::new();
        for stream in [OutStream::Stdout, OutStream::Stderr] {
            let pending = std::mem::take(&mut state.pending[index(stream)]);
            if !pending.is_empty() {
                encode(&mut records, &stamp, stream, 'P', &pending);
            }
        }
        if !records.is_empty()
            && let Err(e) = self.append(&mut state, &records)
        {
            tracing::debug!(path = %self.path.display(), "log write dropped: {e}");
        }
        state.open = None;
    }
}

impl GuestOutput for LogFile {
    fn write(&self, stream: OutStream, bytes: &[u8]) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut records = Vec::new();
        self.take_lines(&mut state, stream, bytes, &mut records);
        if !records.is_empty()
            && let Err(e) = self.append(&mut state, &records)
        {
            tracing::debug!(path = %self.path.display(), "log write dropped: {e}");
        }
    }
}

fn index(stream: OutStream) -> usize {
    match stream {
        OutStream::Stdout => 0,
        OutStream::Stderr => 1,
    }
}

fn stream_name(stream: OutStream) -> &'static str {
    match stream {
        OutStream::Stdout => "stdout",
        OutStream::Stderr => "stderr",
    }
}

/// One record line: the only place the on-disk (and wire) format is written.
pub(crate) fn encode(out: &mut Vec<u8>, stamp: &str, stream: OutStream, tag: char, payload: &[u8]) {
    out.extend_from_slice(format!("{stamp} {} {tag} ", stream_name(stream)).as_bytes());
    out.extend_from_slice(payload);
    out.push(b'\n');
}

/// How many bytes of whole records at the start of `records` fit in `room`.
fn fitting(records: &[u8], room: usize) -> usize {
    let mut end = 0;
    for (i, b) in records.iter().enumerate() {
        if *b == b'\n' {
            if i + 1 > room {
                break;
            }
            end = i + 1;
        }
    }
    end
}
