//! `wasmbox logs`: print a detached container's output like `docker logs`: its stdout to our
//! stdout and its stderr to our stderr, optionally stamped and limited in time and lines.

use std::io::Write;

use clap::Args;
use http_body_util::BodyExt;
use wasmbox_engine::OutStream;
use wasmbox_host::log_read::Record;
use wasmbox_host::log_time;

/// Print a container's output (stdout to stdout, stderr to stderr)
#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Keep printing new output until the container stops (Ctrl-C to quit)
    #[arg(short, long)]
    pub follow: bool,

    /// Only the last N lines (or `all`)
    #[arg(short = 'n', long, value_name = "N", default_value = "all")]
    pub tail: String,

    /// Start each line with the time it was written (RFC 3339, UTC, nanoseconds)
    #[arg(short, long)]
    pub timestamps: bool,

    /// Only lines written since TIME: a duration back from now (10m, 1h30m), an RFC 3339 time, a date, or Unix seconds
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only lines written before TIME (same forms as --since); with -f, stop following then
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Container name or id prefix
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub fn exec(a: LogsArgs) -> anyhow::Result<i32> {
    if a.tail != "all" && a.tail.parse::<usize>().is_err() {
        anyhow::bail!("invalid --tail `{}` (expected a number of lines or `all`)", a.tail);
    }
    let now = log_time::now();
    let point = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<i64>> {
        v.as_deref()
            .map(|v| log_time::parse_point(v, now).map_err(|e| anyhow::anyhow!("invalid --{flag}: {e}")))
            .transpose()
    };
    let (since, until) = (point("since", &a.since)?, point("until", &a.until)?);
    let mut path =
        format!("/v1/containers/{}/logs?tail={}&follow={}", super::containers::encode(&a.container), a.tail, a.follow);
    for (key, value) in [("since", since), ("until", until)] {
        if let Some(v) = value {
            path.push_str(&format!("&{key}={v}"));
        }
    }
    super::block_on(async {
        let client = crate::daemon_client::connect().await?;
        let resp = match client.send("GET", &path, None).await {
            Ok(r) => r,
            Err(e) => return anyhow::Ok(super::containers::report(&e)),
        };
        let mut printer = Printer { timestamps: a.timestamps, at_line_start: [true; 2] };
        let mut body = resp.into_body();
        let mut carry: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            let Some(data) = frame.data_ref() else { continue };
            carry.extend_from_slice(data);
            let whole = carry.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            for line in carry[..whole].split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                if let Some(record) = Record::parse(line)
                    && printer.print(&record).is_err()
                {
                    return anyhow::Ok(0); // our stdout or stderr closed (`| head`)
                }
            }
            carry.drain(..whole);
        }
        anyhow::Ok(0)
    })?
}

/// Writes records to the stream they came from; a time goes only where a line starts.
struct Printer {
    timestamps: bool,
    at_line_start: [bool; 2],
}

impl Printer {
    fn print(&mut self, r: &Record) -> std::io::Result<()> {
        let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
        let (w, start): (&mut dyn Write, &mut bool) = match r.stream {
            OutStream::Stdout => (&mut out, &mut self.at_line_start[0]),
            OutStream::Stderr => (&mut err, &mut self.at_line_start[1]),
        };
        if self.timestamps && *start {
            write!(w, "{} ", log_time::format(r.time))?;
        }
        w.write_all(&r.payload)?;
        if !r.partial {
            w.write_all(b"\n")?;
        }
        *start = !r.partial;
        w.flush()
    }
}
