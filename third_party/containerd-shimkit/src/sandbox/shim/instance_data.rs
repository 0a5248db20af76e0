use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{OnceCell, RwLock};
use tokio::time::timeout;

use crate::sandbox::shim::task_state::TaskState;
use crate::sandbox::{Error, Instance, InstanceConfig, Result};

/// wasmbox: how long a failed kill waits for the task's exit to be recorded.
const EXIT_GRACE: Duration = Duration::from_secs(1);

pub(super) struct InstanceData<T: Instance> {
    pub instance: T,
    pub config: InstanceConfig,
    pid: OnceCell<u32>,
    state: RwLock<TaskState>,
    /// wasmbox: containerd asked for a kill (so an exit by SIGKILL is not an out-of-memory end).
    kill_requested: AtomicBool,
}

impl<T: Instance> InstanceData<T> {
    #[cfg_attr(feature = "tracing", tracing::instrument(level = "Debug"))]
    pub async fn new(
        id: impl AsRef<str> + std::fmt::Debug,
        config: InstanceConfig,
    ) -> Result<Self> {
        let id = id.as_ref().to_string();
        let instance = T::new(id, &config).await?;
        Ok(Self {
            instance,
            config,
            pid: OnceCell::default(),
            state: RwLock::new(TaskState::Created),
            kill_requested: AtomicBool::new(false),
        })
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(skip(self), level = "Debug"))]
    pub fn pid(&self) -> Option<u32> {
        self.pid.get().copied()
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(skip(self), level = "Debug"))]
    pub async fn start(&self) -> Result<u32> {
        let mut s = self.state.write().await;
        s.start()?;

        let res = self.instance.start().await;

        // These state transitions are always `Ok(())` because
        // we hold the lock since `s.start()`
        let _ = match res {
            Ok(pid) => {
                let _ = self.pid.set(pid);
                s.started()
            }
            Err(_) => s.stop(),
        };

        res
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(skip(self), level = "Debug"))]
    pub async fn kill(&self, signal: u32) -> Result<()> {
        let mut s = self.state.write().await;
        s.kill()?;

        self.kill_requested.store(true, Ordering::SeqCst);
        let res = self.instance.kill(signal).await;
        // wasmbox: the task can end between the state check above and the signal (its exit is
        // recorded a moment after the process is gone); then the kill failed because there was
        // nothing left to kill, which containerd must hear as "not found", like the state check.
        if res.is_err() && timeout(EXIT_GRACE, self.instance.wait()).await.is_ok() {
            return Err(Error::NotFound("process already finished".to_string()));
        }
        res
    }

    /// wasmbox: whether the task ended by running out of memory. Exit code 137 is both the
    /// kernel's OOM kill (SIGKILL) and wasmbox's "a limit stopped the guest"; when containerd did
    /// not ask for a kill, it was one of those.
    pub fn out_of_memory(&self, exit_code: u32) -> bool {
        exit_code == 137 && !self.kill_requested.load(Ordering::SeqCst)
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(skip(self), level = "Debug"))]
    pub async fn delete(&self) -> Result<()> {
        let mut s = self.state.write().await;
        s.delete()?;

        let res = self.instance.delete().await;

        if res.is_err() {
            // Always `Ok(())` because we hold the lock since `s.delete()`
            let _ = s.stop();
        }

        res
    }

    #[cfg_attr(feature = "tracing", tracing::instrument(skip(self), level = "Debug"))]
    pub async fn wait(&self) -> (u32, DateTime<Utc>) {
        let res = self.instance.wait().await;
        let mut s = self.state.write().await;
        *s = TaskState::Exited;
        res
    }
}
