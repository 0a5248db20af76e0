//! The access log: one line per request on stderr (or a container's log), written once the response body has been
//! sent and the instance has ended, so it can say how long both took.
//!
//! Lines go through a bounded channel to one writer thread that writes whatever has queued up
//! in a single `write` and then rests a few milliseconds: under load that is far fewer system
//! calls and wake-ups than a write per line, and a blocked stderr can never stall a request
//! (lines beyond the queue are dropped and counted).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Lines that may wait for the writer thread.
const QUEUE: usize = 16 * 1024;

/// How long the writer rests after a write before it looks for more lines. While it rests,
/// logging a line is a plain queue push; a writer blocked on an empty queue instead has to be
/// woken for each line (a futex call and a context switch per request: about a tenth of a
/// busy server's CPU in a profile of the hello benchmark). Lines reach the log at most this
/// much later.
const LINGER: Duration = Duration::from_millis(5);

enum Message {
    Line(String),
    Flush(SyncSender<()>),
}

/// Where the server's own lines (the listening address, the access log) go.
#[derive(Clone, Default)]
pub enum LogTarget {
    #[default]
    Stderr,
    /// A detached container's log (the daemon serves `run -d -p` apps).
    Sink(Arc<dyn wasmbox_engine::GuestOutput>),
}

impl LogTarget {
    pub fn write(&self, bytes: &[u8]) {
        match self {
            LogTarget::Stderr => {
                let _ = std::io::stderr().lock().write_all(bytes);
            }
            LogTarget::Sink(sink) => sink.write(wasmbox_engine::OutStream::Stderr, bytes),
        }
    }

    /// One line (a newline is added).
    pub fn line(&self, text: &str) {
        self.write(format!("{text}\n").as_bytes());
    }
}

impl std::fmt::Debug for LogTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogTarget::Stderr => "Stderr",
            LogTarget::Sink(_) => "Sink",
        })
    }
}

pub struct Logger {
    format: LogFormat,
    sender: SyncSender<Message>,
    dropped: AtomicU64,
}

impl Logger {
    /// Starts the writer thread.
    pub fn start(format: LogFormat, target: LogTarget) -> Logger {
        let (sender, receiver) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("wasmbox-access-log".into())
            .spawn(move || write_lines(receiver, target))
            .expect("spawn the access-log thread");
        Logger { format, sender, dropped: AtomicU64::new(0) }
    }

    pub fn log(&self, entry: &Entry) {
        let mut line = format(self.format, entry);
        line.push('\n');
        if let Err(TrySendError::Full(_)) = self.sender.try_send(Message::Line(line)) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits (up to a second) until every line logged so far is written.
    pub fn flush(&self) {
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            let _ =
                self.sender.try_send(Message::Line(format!("{dropped} access-log lines dropped (stderr too slow)\n")));
        }
        let (ack, done) = sync_channel(1);
        if self.sender.send(Message::Flush(ack)).is_ok() {
            let _ = done.recv_timeout(Duration::from_secs(1));
        }
    }
}

fn write_lines(receiver: Receiver<Message>, target: LogTarget) {
    let mut buf = String::new();
    while let Ok(first) = receiver.recv() {
        let mut acks = Vec::new();
        for message in std::iter::once(first).chain(receiver.try_iter().take(4096)) {
            match message {
                Message::Line(line) => buf.push_str(&line),
                Message::Flush(ack) => acks.push(ack),
            }
        }
        target.write(buf.as_bytes());
        buf.clear();
        for ack in acks {
            let _ = ack.send(());
        }
        std::thread::sleep(LINGER);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// `GET /path 200 1.2ms instance=0.9ms 26B`
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("unknown log format `{s}` (expected text or json)")),
        }
    }
}

/// One finished request.
pub struct Entry<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    /// Until the last response byte.
    pub duration: Duration,
    /// `None` when no instance ran (404, 413, 503).
    pub instance_time: Option<Duration>,
    /// Response body bytes sent.
    pub bytes: u64,
    /// Why the instance failed, if it did (trap, limit).
    pub error: Option<String>,
}

pub fn format(format: LogFormat, e: &Entry) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    match format {
        LogFormat::Text => {
            let mut line = format!("{} {} {} {:.1}ms", e.method, e.path, e.status, ms(e.duration));
            if let Some(t) = e.instance_time {
                line.push_str(&format!(" instance={:.1}ms", ms(t)));
            }
            line.push_str(&format!(" {}B", e.bytes));
            if let Some(error) = &e.error {
                line.push_str(&format!(" error={error:?}"));
            }
            line
        }
        LogFormat::Json => {
            let time = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
            let mut v = serde_json::json!({
                "time": (time * 1e3).round() / 1e3,
                "method": e.method,
                "path": e.path,
                "status": e.status,
                "duration_ms": (ms(e.duration) * 1e3).round() / 1e3,
                "bytes": e.bytes,
            });
            if let Some(t) = e.instance_time {
                v["instance_ms"] = serde_json::json!((ms(t) * 1e3).round() / 1e3);
            }
            if let Some(error) = &e.error {
                v["error"] = serde_json::json!(error);
            }
            v.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_json_lines() {
        let e = Entry {
            method: "GET",
            path: "/a\"b",
            status: 500,
            duration: Duration::from_micros(2500),
            instance_time: Some(Duration::from_micros(1200)),
            bytes: 42,
            error: Some("guest trapped: unreachable".into()),
        };
        assert_eq!(
            format(LogFormat::Text, &e),
            "GET /a\"b 500 2.5ms instance=1.2ms 42B error=\"guest trapped: unreachable\""
        );
        let v: serde_json::Value = serde_json::from_str(&format(LogFormat::Json, &e)).unwrap();
        assert_eq!(v["path"], "/a\"b");
        assert_eq!(v["status"], 500);
        assert_eq!(v["instance_ms"], 1.2);
        assert_eq!(v["bytes"], 42);
        assert!("xml".parse::<LogFormat>().is_err());
    }
}
