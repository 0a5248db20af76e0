//! One sync pass: for each app, finish what a killed agent left, ask the sources, and when the
//! reference names a new digest, update — fetch, verify, stop the old version, start the new
//! one, wait for its health check, then switch, or roll back to the old version and remember
//! the failed digest until the reference moves again.
//!
//! Every step is recorded in state.json before it starts. After `kill -9` at any point, the
//! next pass finds the step and makes the invariants true again: an interrupted fetch or
//! verify is dropped (a pin is written only after every blob landed; prune removes the rest)
//! and retried; an interrupted start or health wait removes the candidate and runs the update
//! again; an interrupted rollback is finished. Then only the current version's container
//! exists (running unless it ended on its own), and it is a verified one.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use wasmbox_image::Store;

use super::config::{App, Config};
use super::deploy::{self, Daemon, alive};
use super::fetch;
use super::health;
use super::state::{AppState, Pending, Stage, State, now_rfc3339, short};

pub struct Agent {
    pub home: PathBuf,
    pub config: Config,
    pub state: State,
    pub store: Store,
}

/// Test seam for crash tests: `WASMBOX_AGENT_STALL=<stage>` makes the agent say so and wait at
/// that stage (after recording it), so a test can `kill -9` it exactly there.
async fn stall(stage: &str) {
    if std::env::var("WASMBOX_AGENT_STALL").is_ok_and(|s| s == stage) {
        eprintln!("agent: stalling at {stage}");
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

fn say(app: &str, what: &str) {
    eprintln!("agent: {app}: {what}");
}

impl Agent {
    fn st(&mut self, app: &App) -> &mut AppState {
        let desired = wasmbox_image::display_reference(&app.image);
        let st = self.state.apps.entry(app.name.clone()).or_insert_with(|| AppState {
            name: app.name.clone(),
            state: "waiting".into(),
            ..Default::default()
        });
        st.desired = desired;
        st
    }

    fn save(&self) -> anyhow::Result<()> {
        self.state.save(&self.home)
    }

    /// One pass over every app; apps no longer in the configuration are removed.
    pub async fn sync(&mut self, daemon: &Daemon) -> anyhow::Result<()> {
        let apps = self.config.apps.clone();
        for app in &apps {
            if let Err(e) = self.sync_app(daemon, app).await {
                say(&app.name, &format!("{e:#}"));
                self.st(app).last_error = Some(format!("{e:#}"));
                self.save()?;
            }
        }
        let gone: Vec<String> =
            self.state.apps.keys().filter(|n| !apps.iter().any(|a| &a.name == *n)).cloned().collect();
        let mut gone_repos = Vec::new();
        for name in gone {
            for c in daemon.versions(&name).await? {
                daemon.remove(&c.name).await?;
            }
            if let Some(st) = self.state.apps.remove(&name)
                && let Ok(r) = wasmbox_image::parse_reference(&st.desired)
            {
                gone_repos.push(repository(&r));
            }
            say(&name, "removed (no longer in the configuration)");
        }
        self.prune_also(&gone_repos)?;
        self.save()
    }

    async fn sync_app(&mut self, daemon: &Daemon, app: &App) -> anyhow::Result<()> {
        if let Some(pending) = self.st(app).pending.clone() {
            self.recover(daemon, app, pending).await?;
        }
        let scratch = self.home.join("tmp");
        let found = fetch::locate(app, &self.config.sources, &scratch).await;
        let st = self.st(app);
        st.last_check = Some(now_rfc3339());
        let found = match found {
            Err(why) => {
                // Nothing is stopped for lack of a network: what runs keeps running.
                st.last_error = Some(format!("sources unreachable, keeping what runs: {why}"));
                self.save()?;
                return self.ensure_current(daemon, app).await;
            }
            Ok(found) => found,
        };
        if st.last_error.as_deref().is_some_and(|e| e.starts_with("sources unreachable")) {
            st.last_error = None;
        }
        if st.current.as_deref() == Some(&found.digest) || st.failed.as_deref() == Some(&found.digest) {
            self.save()?;
            return self.ensure_current(daemon, app).await;
        }
        say(&app.name, &format!("{} resolves to {} (from {})", st.desired, short(&found.digest), found.from));
        self.update(daemon, app, found).await
    }

    fn set_stage(&mut self, app: &App, digest: &str, stage: Stage, reason: Option<String>) -> anyhow::Result<()> {
        let st = self.st(app);
        st.pending = Some(Pending { digest: digest.to_string(), stage, reason });
        st.state = if stage == Stage::Rollback { "rolling-back" } else { "updating" }.into();
        self.save()
    }

    /// Leaves the update: the old version keeps running, `why` is recorded.
    async fn abandon(&mut self, daemon: &Daemon, app: &App, digest: &str, why: String) -> anyhow::Result<()> {
        say(&app.name, &why);
        let st = self.st(app);
        st.pending = None;
        st.last_error = Some(why);
        self.save()?;
        self.unpin(app, digest)?;
        self.ensure_current(daemon, app).await
    }

    async fn update(&mut self, daemon: &Daemon, app: &App, found: fetch::Found) -> anyhow::Result<()> {
        let digest = found.digest.clone();
        self.set_stage(app, &digest, Stage::Fetch, None)?;
        stall("fetch").await;
        if let Err(e) = fetch::bring(app, found, &self.store, true).await {
            return self.abandon(daemon, app, &digest, format!("fetching {} failed: {e:#}", short(&digest))).await;
        }
        self.set_stage(app, &digest, Stage::Verify, None)?;
        let verified = match fetch::verify(app, &self.store, &digest) {
            Ok(v) => v,
            Err(e) => {
                let why =
                    format!("{} not verified, not started (the old version keeps running): {e:#}", short(&digest));
                return self.abandon(daemon, app, &digest, why).await;
            }
        };
        let spec = match deploy::spec(app, &digest, &verified) {
            Ok(spec) => spec,
            Err(e) => return self.abandon(daemon, app, &digest, format!("{}: {e:#}", short(&digest))).await,
        };
        self.set_stage(app, &digest, Stage::Start, None)?;
        let candidate = deploy::name(&app.name, &digest);
        for c in daemon.versions(&app.name).await? {
            if c.name == candidate {
                daemon.remove(&c.name).await?;
            } else if alive(&c) {
                // One version at a time: the new one may need the old one's port.
                daemon.stop(&c.name, app.stop_timeout).await?;
            }
        }
        // (The crash tests stop here: the old version stopped, the new one not yet created.)
        stall("start").await;
        if let Err(e) = daemon.create(&spec).await {
            return self.rollback(daemon, app, &digest, format!("it did not start: {e:#}")).await;
        }
        say(&app.name, &format!("started {}, waiting for its health check", short(&digest)));
        self.set_stage(app, &digest, Stage::Health, None)?;
        stall("health").await;
        match health::wait(daemon, &candidate, &app.health, app.port).await {
            Ok(()) => self.switch(daemon, app, &digest).await,
            Err(why) => self.rollback(daemon, app, &digest, format!("failed its health check: {why}")).await,
        }
    }

    async fn switch(&mut self, daemon: &Daemon, app: &App, digest: &str) -> anyhow::Result<()> {
        let st = self.st(app);
        if st.current.as_deref() != Some(digest) {
            st.previous = st.current.take();
        }
        st.current = Some(digest.to_string());
        st.pending = None;
        st.failed = None;
        st.last_error = None;
        st.state = "running".into();
        let previous = st.previous.as_deref().map(short).unwrap_or("none").to_string();
        self.save()?;
        say(&app.name, &format!("now running {} (previous: {previous})", short(digest)));
        self.ensure_current(daemon, app).await?;
        self.prune()
    }

    async fn rollback(&mut self, daemon: &Daemon, app: &App, digest: &str, why: String) -> anyhow::Result<()> {
        self.set_stage(app, digest, Stage::Rollback, Some(why.clone()))?;
        stall("rollback").await;
        self.finish_rollback(daemon, app, digest, why).await
    }

    async fn finish_rollback(&mut self, daemon: &Daemon, app: &App, digest: &str, why: String) -> anyhow::Result<()> {
        let candidate = deploy::name(&app.name, digest);
        if daemon.get(&candidate).await?.is_some() {
            daemon.remove(&candidate).await?;
        }
        let st = self.st(app);
        let back = match st.current.as_deref() {
            Some(current) => format!("rolled back to {}", short(current)),
            None => "no earlier version to run".to_string(),
        };
        let line = format!("{} {why}; {back}", short(digest));
        st.failed = Some(digest.to_string());
        st.pending = None;
        st.last_error = Some(line.clone());
        self.save()?;
        say(&app.name, &line);
        self.ensure_current(daemon, app).await?;
        self.unpin(app, digest)
    }

    /// What a killed agent left in the middle of an update.
    async fn recover(&mut self, daemon: &Daemon, app: &App, pending: Pending) -> anyhow::Result<()> {
        say(
            &app.name,
            &format!("resuming after an interrupted update to {} ({:?})", short(&pending.digest), pending.stage),
        );
        match pending.stage {
            Stage::Rollback => {
                let why = pending.reason.unwrap_or_else(|| "failed".into());
                self.finish_rollback(daemon, app, &pending.digest, why).await
            }
            Stage::Fetch | Stage::Verify | Stage::Start | Stage::Health => {
                // Not yet current: remove what was started (the update runs again in this pass).
                let candidate = deploy::name(&app.name, &pending.digest);
                if daemon.get(&candidate).await?.is_some() {
                    daemon.remove(&candidate).await?;
                }
                self.st(app).pending = None;
                self.save()?;
                self.prune()?;
                // A pull killed mid-blob leaves a temp file; prune removes it.
                if pending.stage == Stage::Fetch {
                    self.store.prune()?;
                }
                self.ensure_current(daemon, app).await
            }
        }
    }

    /// Exactly the current version's container exists, and runs unless it ended on its own.
    async fn ensure_current(&mut self, daemon: &Daemon, app: &App) -> anyhow::Result<()> {
        let current = self.st(app).current.clone();
        let want = current.as_deref().map(|d| deploy::name(&app.name, d));
        let mut found = None;
        for c in daemon.versions(&app.name).await? {
            if Some(&c.name) == want.as_ref() {
                found = Some(c);
            } else {
                daemon.remove(&c.name).await?;
            }
        }
        let Some(digest) = current else {
            self.st(app).state = "waiting".into();
            return self.save();
        };
        let state = match found {
            Some(c) if alive(&c) => "running",
            // Stopped by an update (or never started): start it again.
            Some(c)
                if c.status == wasmbox_host::Status::Created
                    || matches!(c.reason.as_deref(), Some("stopped" | "killed" | "daemon stopped")) =>
            {
                daemon.start(&c.name).await?;
                say(&app.name, &format!("started {} again", short(&digest)));
                "running"
            }
            // It ended on its own: its restart policy decided.
            Some(_) => "exited",
            None => {
                let verified = fetch::verify(app, &self.store, &digest)?;
                daemon.create(&deploy::spec(app, &digest, &verified)?).await?;
                say(&app.name, &format!("recreated {}", short(&digest)));
                "running"
            }
        };
        self.st(app).state = state.into();
        self.save()
    }

    /// Drops a version nobody needs (refused or failed) from the store, blobs included.
    fn unpin(&self, app: &App, digest: &str) -> anyhow::Result<()> {
        let keep = self.kept();
        if !keep.contains(digest) && self.store.untag(&fetch::pin(&app.image, digest).whole())? {
            self.store.prune()?;
        }
        Ok(())
    }

    /// Digests some app still needs: current, previous and an update in progress.
    fn kept(&self) -> BTreeSet<String> {
        self.state
            .apps
            .values()
            .flat_map(|s| [s.current.clone(), s.previous.clone(), s.pending.as_ref().map(|p| p.digest.clone())])
            .flatten()
            .collect()
    }

    /// Old versions beyond current + previous leave the store (pins of the apps' repositories).
    fn prune(&self) -> anyhow::Result<()> {
        self.prune_also(&[])
    }

    /// [`Self::prune`], also in the repositories of apps just removed from the file.
    fn prune_also(&self, gone: &[String]) -> anyhow::Result<()> {
        let keep = self.kept();
        let repos: BTreeSet<String> =
            self.config.apps.iter().map(|a| repository(&a.image)).chain(gone.iter().cloned()).collect();
        let mut untagged = false;
        for tagged in self.store.list()? {
            let Ok(r) = wasmbox_image::parse_reference(&tagged.reference) else { continue };
            let Some(d) = r.digest() else { continue };
            if repos.contains(&repository(&r)) && !keep.contains(d) {
                untagged |= self.store.untag(&tagged.reference)?;
            }
        }
        if untagged {
            self.store.prune()?;
        }
        Ok(())
    }
}

/// `registry/repository`: the agent owns the pins (`<repository>@<digest>`) of its apps' repositories.
fn repository(r: &oci_spec::distribution::Reference) -> String {
    format!("{}/{}", r.registry(), r.repository())
}
