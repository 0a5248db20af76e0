//! The CLI's way to the daemon: connect to `$WASMBOX_HOME/wasmbox.sock`, starting the daemon in
//! the background first when none is running (and saying so once, on stderr).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use wasmbox_host::api::Ping;
use wasmbox_host::{Client, ClientError};

use crate::home::wasmbox_home;

/// How long a freshly spawned daemon has to open its socket.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A client for a running daemon, starting one if needed.
pub async fn connect() -> anyhow::Result<Client> {
    if let Some(client) = connect_existing().await? {
        return Ok(client);
    }
    let home = wasmbox_home()?;
    let client = Client::new(&wasmbox_host::daemon::socket_path(&home));
    // Daemons started by concurrent CLIs share the log: only what was written after this
    // point can say why ours exited.
    let log_start = std::fs::metadata(home.join("daemon.log")).map(|m| m.len()).unwrap_or(0);
    let child = spawn_daemon(&home)?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match client.call::<Ping>("GET", "/v1/ping", None).await {
            Ok(ping) => {
                if ping.pid == child {
                    eprintln!(
                        "wasmbox: started the daemon in the background (pid {child}; log: {})",
                        home.join("daemon.log").display()
                    );
                }
                return Ok(client);
            }
            Err(ClientError::NotRunning(_)) if Instant::now() < deadline => {}
            Err(ClientError::NotRunning(why)) => {
                bail!("the daemon did not start within {START_TIMEOUT:?} ({why}){}", last_log_line(&home))
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(status) = exited(child) {
            // Another CLI's daemon may have won the lock: keep waiting for its socket then.
            // (Its "listening" line may come after our daemon's "already running" one.)
            let since = log_since(&home, log_start);
            if !since.contains("already running") {
                let why = since.lines().rev().find(|l| !l.trim().is_empty()).map(|l| format!(": {l}"));
                bail!("the daemon exited at start ({status}){}", why.unwrap_or_default());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Connects only if a daemon is already running (commands that must not start one).
pub async fn connect_existing() -> anyhow::Result<Option<Client>> {
    let home = wasmbox_home()?;
    let client = Client::new(&wasmbox_host::daemon::socket_path(&home));
    match client.call::<Ping>("GET", "/v1/ping", None).await {
        Ok(_) => Ok(Some(client)),
        Err(ClientError::NotRunning(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn spawn_daemon(home: &Path) -> anyhow::Result<u32> {
    std::fs::create_dir_all(home).with_context(|| format!("failed to create {}", home.display()))?;
    let child = spawn_self(home, &["daemon".as_ref()], &home.join("daemon.log"))
        .context("failed to start the wasmbox daemon")?;
    Ok(child.id())
}

/// This wasmbox again, in the background with `args`: `home` as its `WASMBOX_HOME`, no stdin,
/// its output appended to `log_path`, in its own process group (Ctrl-C in this terminal must
/// not reach it). The daemon and `agent --detach` start this way.
pub fn spawn_self(home: &Path, args: &[&std::ffi::OsStr], log_path: &Path) -> anyhow::Result<std::process::Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .with_context(|| format!("failed to open {}", log_path.display()))?;
    let exe = std::env::current_exe().context("cannot find the wasmbox executable")?;
    use std::os::unix::process::CommandExt;
    Ok(std::process::Command::new(exe)
        .args(args)
        .env("WASMBOX_HOME", home)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()?)
}

/// `Some` once the process has exited (it is our child, so this also reaps it).
fn exited(pid: u32) -> Option<String> {
    let mut status = 0;
    // SAFETY: waitpid on our own child with a valid status pointer; WNOHANG never blocks.
    let r = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
    (r == pid as i32).then(|| describe_wait_status(status))
}

/// `exit code N` or `killed by signal N`, never the raw wait status.
fn describe_wait_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exit code {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status:#x}")
    }
}

/// The daemon log from byte `offset` on.
fn log_since(home: &Path, offset: u64) -> String {
    let bytes = std::fs::read(home.join("daemon.log")).unwrap_or_default();
    String::from_utf8_lossy(bytes.get(offset as usize..).unwrap_or_default()).into_owned()
}

fn last_log_line(home: &Path) -> String {
    let text = std::fs::read_to_string(home.join("daemon.log")).unwrap_or_default();
    text.lines().rev().find(|l| !l.trim().is_empty()).map(|l| format!(": {l}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn wait_statuses_are_described() {
        assert_eq!(super::describe_wait_status(125 << 8), "exit code 125");
        assert_eq!(super::describe_wait_status(9), "killed by signal 9");
    }
}
