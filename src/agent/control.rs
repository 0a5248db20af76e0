//! The agent's neighbours, found through `$WASMBOX_HOME` alone: `agent status` reads the
//! record, `agent sync` asks the running agent for a pass and waits for it, `agent --detach`
//! starts one in the background.

use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

use super::state::{self, State, short};

/// The running agent's pid, if one holds the lock.
pub fn running_pid(home: &Path) -> Option<u32> {
    let dir = state::dir(home);
    let lock = std::fs::File::open(dir.join("agent.lock")).ok()?;
    // SAFETY: flock on a descriptor we own. Getting the lock means nobody holds it; it is
    // released when `lock` is dropped below.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } == 0 {
        return None;
    }
    std::fs::read_to_string(dir.join("agent.pid")).ok()?.trim().parse().ok()
}

/// The token of the newest `agent sync` request (a pass records it as seen at its start).
pub fn sync_request(home: &Path) -> Option<String> {
    std::fs::read_to_string(state::dir(home).join("sync-request")).ok().map(|s| s.trim().to_string())
}

fn no_agent(home: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "no agent is running for {}; start one with `wasmbox agent --config agent.toml [--detach]`",
        home.display()
    )
}

/// `agent sync`: the running agent rereads its file and syncs at once; returns when a pass
/// that began after this request has finished.
pub fn sync(home: &Path, timeout: Duration) -> anyhow::Result<()> {
    let pid = running_pid(home).ok_or_else(|| no_agent(home))?;
    let token = format!("{}-{}", std::process::id(), wasmbox_host::log_time::now());
    wasmbox_engine::fs::write_atomic(&state::dir(home).join("sync-request"), token.as_bytes())?;
    // SAFETY: a signal to the pid the lock holder recorded.
    if unsafe { libc::kill(pid as i32, libc::SIGHUP) } != 0 {
        bail!("cannot signal the agent (pid {pid}): {}", std::io::Error::last_os_error());
    }
    let deadline = Instant::now() + timeout;
    loop {
        if State::load(home)?.synced.as_deref() == Some(token.as_str()) {
            return Ok(());
        }
        if running_pid(home).is_none() {
            bail!("the agent (pid {pid}) exited before the sync finished; see its log");
        }
        if Instant::now() > deadline {
            bail!(
                "the agent did not finish a sync within {}s (an update may be waiting for a health check)",
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[derive(Serialize)]
struct AppStatus<'a> {
    name: &'a str,
    desired: &'a str,
    current: Option<&'a str>,
    previous: Option<&'a str>,
    state: &'a str,
    last_check: Option<&'a str>,
    last_error: Option<&'a str>,
}

/// `agent status [--json]`.
pub fn status(home: &Path, json: bool) -> anyhow::Result<()> {
    let state = State::load(home)?;
    let apps: Vec<AppStatus> = state
        .apps
        .values()
        .map(|a| AppStatus {
            name: &a.name,
            desired: &a.desired,
            current: a.current.as_deref(),
            previous: a.previous.as_deref(),
            state: &a.state,
            last_check: a.last_check.as_deref(),
            last_error: a.last_error.as_deref(),
        })
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&apps)?);
        return Ok(());
    }
    match running_pid(home) {
        Some(pid) => println!("agent: running (pid {pid}), {} sync pass(es)", state.syncs),
        None => println!("agent: not running (last record: {} sync pass(es))", state.syncs),
    }
    if let Some(e) = &state.config_error {
        println!("configuration error (the last good one is used): {e}");
    }
    let rows: Vec<[String; 7]> = apps
        .iter()
        .map(|a| {
            [
                a.name.to_string(),
                a.desired.to_string(),
                a.current.map(short).unwrap_or("-").to_string(),
                a.previous.map(short).unwrap_or("-").to_string(),
                a.state.to_string(),
                a.last_check.unwrap_or("-").to_string(),
                a.last_error.unwrap_or("").to_string(),
            ]
        })
        .collect();
    let head = ["NAME", "DESIRED", "CURRENT", "PREVIOUS", "STATE", "LAST CHECK", "LAST ERROR"];
    let width = |i: usize| rows.iter().map(|r| r[i].len()).chain([head[i].len()]).max().unwrap_or(0);
    let widths: Vec<usize> = (0..7).map(width).collect();
    let line = |cells: [&str; 7]| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == 6 {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        println!("{}", out.trim_end());
    };
    line(head);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5], &r[6]]);
    }
    Ok(())
}

/// `agent --detach`: the agent in the background (its output in `agent/agent.log`); returns
/// its pid once it holds the lock.
pub fn detach(home: &Path, config: &Path) -> anyhow::Result<u32> {
    if let Some(pid) = running_pid(home) {
        bail!("an agent is already running for {} (pid {pid})", home.display());
    }
    let dir = state::dir(home);
    std::fs::create_dir_all(&dir)?;
    let log_path = dir.join("agent.log");
    let config = std::path::absolute(config)?;
    let args = ["agent".as_ref(), "--config".as_ref(), config.as_os_str()];
    let mut child = crate::daemon_client::spawn_self(home, &args, &log_path).context("cannot start the agent")?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if running_pid(home) == Some(child.id()) {
            return Ok(child.id());
        }
        if let Some(status) = child.try_wait()? {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
            bail!("the agent exited at start ({status}): {last}");
        }
        if Instant::now() > deadline {
            bail!("the agent did not start within 15s; see {}", log_path.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
