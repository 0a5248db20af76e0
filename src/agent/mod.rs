//! The edge agent (`wasmbox agent`, docs/edge.md): keeps a device's apps at the versions its
//! `agent.toml` names, from registry mirrors, OCI layouts (a USB stick) and the images' own
//! registries; nothing unverified runs, a failed update rolls itself back, and a kill at any
//! moment leaves a good version running. It drives the daemon of its `$WASMBOX_HOME` and
//! keeps its own record in `$WASMBOX_HOME/agent/` (`state.json`, `agent.lock`, `agent.pid`).
//!
//! `config` reads agent.toml, `state` the record, `fetch` sources and trust, `deploy` the
//! daemon's containers, `health` health checks, `update` one sync pass, `control` this loop's
//! neighbours: `agent status`, `agent sync`, `--detach`.

pub mod config;
pub mod control;
pub mod deploy;
pub mod fetch;
pub mod health;
pub mod state;
pub mod update;

use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::{Context, bail};
use tokio::signal::unix::{SignalKind, signal};

use self::deploy::Daemon;
use self::update::Agent;

/// Runs the agent in the foreground until SIGTERM or SIGINT (the apps keep running in the
/// daemon). SIGHUP (and `agent sync`) rereads the file and syncs at once.
pub fn run(config_path: &Path) -> anyhow::Result<i32> {
    let home = crate::home::wasmbox_home()?;
    let config_path = std::path::absolute(config_path).unwrap_or_else(|_| config_path.to_path_buf());
    let config = config::load(&config_path)?;
    let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    tokio.block_on(async move {
        // Handlers first: `agent sync` signals whoever holds the lock, and SIGHUP's default
        // action would end the process.
        let mut hup = signal(SignalKind::hangup())?;
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let _lock = take_lock(&home)?;
        let state = state::State::load(&home)?;
        let store = crate::commands::image_store()?;
        let mut agent = Agent { home: home.clone(), config, state, store };
        eprintln!(
            "agent: watching {} app(s) from {} (poll every {:?})",
            agent.config.apps.len(),
            config_path.display(),
            agent.config.poll_interval
        );
        loop {
            // A stop in the middle of a pass drops it where it is: every step is recorded
            // before it starts, so the next agent resumes it as after a kill.
            tokio::select! {
                done = pass(&mut agent) => {
                    if let Err(e) = done {
                        eprintln!("agent: this pass failed, trying again at the next one: {e:#}");
                    }
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
            tokio::select! {
                _ = tokio::time::sleep(agent.config.poll_interval) => {}
                _ = hup.recv() => reload(&mut agent, &config_path)?,
                _ = term.recv() => break,
                _ = int.recv() => break,
            }
        }
        eprintln!("agent: stopping; the apps keep running in the daemon");
        anyhow::Ok(0)
    })
}

/// One sync pass; it records the `agent sync` request it began after.
async fn pass(agent: &mut Agent) -> anyhow::Result<()> {
    let token = control::sync_request(&agent.home);
    let client = crate::daemon_client::connect().await?;
    let synced = agent.sync(&Daemon { client }).await;
    agent.state.syncs += 1;
    agent.state.synced = token;
    agent.state.save(&agent.home)?;
    synced
}

/// A changed file takes effect; a broken one is reported and the last good one kept.
fn reload(agent: &mut Agent, path: &Path) -> anyhow::Result<()> {
    match config::load(path) {
        Ok(config) => {
            agent.config = config;
            agent.state.config_error = None;
            eprintln!("agent: reread {}", path.display());
        }
        Err(e) => {
            eprintln!("agent: {e:#}; keeping the last good configuration");
            agent.state.config_error = Some(format!("{e:#}"));
        }
    }
    agent.state.save(&agent.home)
}

/// One agent per home: an exclusive `flock` on `agent/agent.lock`, held for the process's
/// life (the kernel drops it when the process dies, even by SIGKILL); `agent.pid` says who.
fn take_lock(home: &Path) -> anyhow::Result<std::fs::File> {
    let dir = state::dir(home);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("agent.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock on a descriptor we own; the lock lives as long as the file.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let pid = control::running_pid(home).map(|p| format!(" (pid {p})")).unwrap_or_default();
        bail!("an agent is already running for {}{pid}; use `wasmbox agent sync` to make it sync now", home.display());
    }
    wasmbox_engine::fs::write_atomic(&dir.join("agent.pid"), std::process::id().to_string().as_bytes())?;
    Ok(lock)
}
