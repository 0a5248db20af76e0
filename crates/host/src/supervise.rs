//! `supervise`: the task that runs one container, records how each run ended, and applies the
//! restart policy. A guest runs in a task of its own, so a panic there (a wasmbox bug) fails
//! that container only.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use wasmbox_engine::{Compiled, Output, RunStats};

use crate::db::Container;
use crate::log_file::LogFile;
use crate::manager::{EndRequest, Live, Manager, now_ms};
use crate::spec::RestartPolicy;
use crate::status::Status;

/// A run that lasted this long resets the restart back-off.
const STABLE_RUN: Duration = Duration::from_secs(10);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How one run ended: exit code and, when it was not a plain exit, why.
struct Ended {
    code: Option<i32>,
    reason: Option<String>,
    requested: Option<EndRequest>,
}

impl Manager {
    pub(crate) fn spawn_supervisor(self: &Arc<Self>, c: &Container, compiled: Compiled) {
        let (end, end_rx) = watch::channel(None);
        let (ended_tx, ended) = watch::channel(false);
        let user_stopped = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(Arc::new(RunStats::default())));
        let started = Arc::new(Mutex::new(Instant::now()));
        let live =
            Live { end, ended, user_stopped: user_stopped.clone(), stats: stats.clone(), started: started.clone() };
        self.live.lock().unwrap_or_else(|e| e.into_inner()).insert(c.id.clone(), live);
        let me = self.clone();
        let c = c.clone();
        tokio::spawn(async move {
            let id = c.id.clone();
            let token = user_stopped.clone();
            me.supervise(c, compiled, end_rx, user_stopped, stats, started).await;
            // A `start` right after the end may already have put a new supervisor in the map.
            let mut live = me.live.lock().unwrap_or_else(|e| e.into_inner());
            if live.get(&id).is_some_and(|l| Arc::ptr_eq(&l.user_stopped, &token)) {
                live.remove(&id);
            }
            drop(live);
            let _ = ended_tx.send(true);
        });
    }

    async fn supervise(
        self: &Arc<Self>,
        c: Container,
        compiled: Compiled,
        mut end: watch::Receiver<Option<EndRequest>>,
        user_stopped: Arc<AtomicBool>,
        stats: Arc<Mutex<Arc<RunStats>>>,
        started: Arc<Mutex<Instant>>,
    ) {
        let log = Arc::new(LogFile::new(&self.container_dir(&c.id), c.spec.log_max_bytes));
        let mut restarts = c.restarts;
        let mut backoff = FIRST_BACKOFF;
        loop {
            let run_stats = Arc::new(RunStats::default());
            *stats.lock().unwrap_or_else(|e| e.into_inner()) = run_stats.clone();
            let began = Instant::now();
            *started.lock().unwrap_or_else(|e| e.into_inner()) = began;
            let ended = self.run_once(&c, &compiled, log.clone(), run_stats, &mut end).await;
            log.close();
            if ended.requested == Some(EndRequest::Daemon) || self.shutting_down.load(Ordering::Relaxed) {
                // Left as "running" in the database: recovery at the next start records
                // "daemon stopped" and applies the restart policy, as after a crash.
                return;
            }
            let stopped = user_stopped.load(Ordering::Relaxed) || ended.requested.is_some();
            let failed = ended.code != Some(0);
            let restart = !stopped
                && match c.spec.restart {
                    RestartPolicy::No => false,
                    RestartPolicy::Always => true,
                    RestartPolicy::OnFailure { max } => failed && max.is_none_or(|m| restarts < m),
                };
            let reason = match (stopped, ended.requested) {
                (true, Some(EndRequest::Kill)) => Some("killed".to_string()),
                (true, _) => ended.reason.clone().or(Some("stopped".into())),
                (false, _) => ended.reason.clone(),
            };
            let status = if restart { Status::Restarting } else { Status::Exited };
            if let Err(e) = self.db().set_ended(&c.id, status, ended.code, reason.as_deref(), now_ms()) {
                tracing::error!(id = %c.id, "failed to record the end of a run: {e}");
            }
            if !restart {
                if c.spec.auto_remove {
                    let _ = self.remove_stored(&c.id);
                }
                return;
            }
            if began.elapsed() >= STABLE_RUN {
                backoff = FIRST_BACKOFF;
            }
            let woken = tokio::select! {
                _ = tokio::time::sleep(backoff) => None,
                r = requested(&mut end) => r,
            };
            backoff = (backoff * 2).min(MAX_BACKOFF);
            if woken.is_some() || user_stopped.load(Ordering::Relaxed) {
                if woken != Some(EndRequest::Daemon) {
                    let reason = if woken == Some(EndRequest::Kill) { "killed" } else { "stopped" };
                    let _ = self.db().set_ended(&c.id, Status::Exited, ended.code, Some(reason), now_ms());
                }
                return;
            }
            // Every start is checked against the current trust policy, restarts too.
            if let Err(e) = self.admit(&c.spec) {
                let reason = format!("refused by the trust policy: {e}");
                let _ = self.db().set_ended(&c.id, Status::Exited, ended.code, Some(&reason), now_ms());
                return;
            }
            restarts += 1;
            if let Err(e) = self.db().set_running(&c.id, now_ms(), restarts) {
                tracing::error!(id = %c.id, "failed to record a restart: {e}");
            }
        }
    }

    /// Runs the guest once, in its own task, until it ends or an end is requested.
    async fn run_once(
        self: &Arc<Self>,
        c: &Container,
        compiled: &Compiled,
        log: Arc<LogFile>,
        stats: Arc<RunStats>,
        end: &mut watch::Receiver<Option<EndRequest>>,
    ) -> Ended {
        let rt = self.runtime(c.spec.fuel.is_some()).clone();
        let caps = match c.spec.capabilities(Output::Sink(log.clone())) {
            Ok(caps) => caps,
            Err(e) => return Ended { code: Some(e.exit_code()), reason: Some(format!("{e:#}")), requested: None },
        };
        let limits = c.spec.limits();
        let compiled = compiled.clone();
        let serving = c.spec.publish.is_some();
        let mut task = if serving {
            let shutdown = end.clone();
            let spec = c.spec.clone();
            tokio::spawn(async move { crate::publish::serve(compiled, spec, caps, log, shutdown).await })
        } else {
            tokio::spawn(async move { wasmbox_engine::run_observed(&rt, &compiled, &caps, &limits, stats).await })
        };
        let joined = tokio::select! {
            r = &mut task => r,
            requested = requested(end) => {
                if !serving {
                    // Dropping the future cancels the guest at its next yield (one epoch tick).
                    task.abort();
                }
                let _ = task.await;
                let code = if requested == Some(EndRequest::Daemon) { None } else { Some(137) };
                return Ended { code, reason: None, requested };
            }
        };
        match joined {
            Ok(Ok(code)) => Ended { code: Some(code), reason: None, requested: None },
            Ok(Err(e)) => Ended { code: Some(e.exit_code()), reason: Some(format!("{e:#}")), requested: None },
            Err(e) => Ended {
                code: Some(125),
                reason: Some(format!("wasmbox internal error in this container: {e}")),
                requested: None,
            },
        }
    }
}

/// Resolves once an end is requested (never, if the sender is gone).
async fn requested(end: &mut watch::Receiver<Option<EndRequest>>) -> Option<EndRequest> {
    let seen = end.wait_for(Option::is_some).await.ok().map(|r| *r);
    match seen {
        Some(r) => r,
        None => std::future::pending().await,
    }
}
