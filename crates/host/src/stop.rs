//! `stop`, `kill` and `restart`. WASI has no signals: `stop -t SECS` lets the guest finish on
//! its own until the deadline, then ends it at its next yield point (within an epoch tick);
//! `kill` ends it at once. Either way the restart policy does not apply.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::db::Container;
use crate::error::HostError;
use crate::manager::{EndRequest, Manager};

/// How long a forced end may take before we report a wasmbox failure (a guest yields every
/// epoch tick, so this is generous).
const FORCE_GRACE: Duration = Duration::from_secs(10);

impl Manager {
    pub async fn stop(self: &Arc<Self>, text: &str, timeout: Duration) -> Result<Container, HostError> {
        let c = self.resolve(text)?;
        if !c.status.can_stop() {
            // docker: stopping a stopped container succeeds and changes nothing.
            return Ok(c);
        }
        self.end(&c, Some(timeout)).await?;
        self.resolve(&c.id)
    }

    pub async fn kill(self: &Arc<Self>, text: &str) -> Result<Container, HostError> {
        let c = self.resolve(text)?;
        if !c.status.can_stop() {
            return Err(HostError::Conflict(format!("container {} is not running", c.name)));
        }
        self.end(&c, None).await?;
        self.resolve(&c.id)
    }

    pub async fn restart(self: &Arc<Self>, text: &str, timeout: Duration) -> Result<Container, HostError> {
        let c = self.resolve(text)?;
        if c.status.can_stop() {
            self.end(&c, Some(timeout)).await?;
        }
        let c = self.resolve(&c.id)?;
        self.start_stored(c, 1)
    }

    /// Ends `c`'s supervisor: after `grace` on its own (stop) or at once (kill).
    pub(crate) async fn end(&self, c: &Container, grace: Option<Duration>) -> Result<(), HostError> {
        let live = {
            let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            live.get(&c.id).map(|l| (l.end.clone(), l.ended.clone(), l.user_stopped.clone()))
        };
        let Some((end, mut ended, user_stopped)) = live else { return Ok(()) };
        user_stopped.store(true, Ordering::Relaxed);
        if let Some(grace) = grace
            && tokio::time::timeout(grace, ended.wait_for(|e| *e)).await.is_ok()
        {
            return Ok(());
        }
        let request = if grace.is_some() { EndRequest::Stop } else { EndRequest::Kill };
        let _ = end.send(Some(request));
        match tokio::time::timeout(FORCE_GRACE, ended.wait_for(|e| *e)).await {
            Ok(_) => Ok(()),
            Err(_) => Err(HostError::Internal(format!("container {} did not stop within {FORCE_GRACE:?}", c.name))),
        }
    }
}
