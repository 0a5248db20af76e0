//! `Manager`: every container of one daemon — the database, the compiled code they share,
//! and the supervisor task of each live one. The verbs are in their own files
//! (`create.rs`, `supervise.rs`, `stop.rs`, `remove.rs`, `recover.rs`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use wasmbox_engine::{CompileCache, CompileSource, Compiled, Compiler, EngineOptions, RunStats, Runtime};

use crate::db::{Container, Db};
use crate::error::HostError;

/// How a supervisor is told to end its guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndRequest {
    /// `stop`: the deadline passed.
    Stop,
    /// `kill`, `rm -f`.
    Kill,
    /// The daemon is shutting down.
    Daemon,
}

/// A container whose supervisor task is alive.
pub(crate) struct Live {
    pub end: watch::Sender<Option<EndRequest>>,
    /// Becomes true when the supervisor task has finished and written the final state.
    pub ended: watch::Receiver<bool>,
    /// Set by `stop`/`kill` before anything else, so the restart policy does not apply.
    pub user_stopped: Arc<AtomicBool>,
    pub stats: Arc<Mutex<Arc<RunStats>>>,
    pub started: Arc<Mutex<Instant>>,
}

/// What `stats` reports for one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stats {
    pub id: String,
    pub name: String,
    pub status: String,
    pub cpu_ms: u64,
    pub memory_bytes: u64,
    pub fuel_used: Option<u64>,
    pub uptime_ms: u64,
    pub restarts: u32,
}

pub struct Manager {
    pub(crate) home: PathBuf,
    db: Mutex<Db>,
    plain: Runtime,
    fuel: Runtime,
    cache: CompileCache,
    /// Shared with the thread that replaces baseline-tier code by optimized code.
    compiled: Arc<Mutex<HashMap<(String, bool), Compiled>>>,
    /// Code that passed [`Manager::preflight`].
    linked: Mutex<std::collections::HashSet<(String, bool)>>,
    pub(crate) live: Mutex<HashMap<String, Live>>,
    pub(crate) shutting_down: AtomicBool,
    counter: AtomicU64,
    _tickers: [wasmbox_engine::engine::Ticker; 2],
}

impl Manager {
    /// Opens the state under `home` (the database, `containers/`). Call [`Manager::recover`]
    /// next, inside the tokio runtime that will run the containers.
    pub fn open(home: &Path) -> Result<Arc<Manager>, HostError> {
        std::fs::create_dir_all(home.join("containers/wasm"))
            .map_err(|e| HostError::Internal(format!("failed to create {}: {e}", home.join("containers").display())))?;
        let db = Db::open(&home.join("wasmbox.db"))?;
        let runtime = |fuel| {
            Runtime::new(EngineOptions { fuel, ..Default::default() }).map_err(|e| HostError::Internal(e.to_string()))
        };
        let (plain, fuel) = (runtime(false)?, runtime(true)?);
        // Every live guest yields on each tick, so a guest in a tight loop never holds a
        // worker thread longer than a tick.
        let tickers = [plain.start_ticker(), fuel.start_ticker()];
        Ok(Arc::new(Manager {
            home: home.to_path_buf(),
            db: Mutex::new(db),
            plain,
            fuel,
            cache: CompileCache::new(&home.join("cache")),
            compiled: Arc::new(Mutex::new(HashMap::new())),
            linked: Mutex::new(Default::default()),
            live: Mutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
            counter: AtomicU64::new(0),
            _tickers: tickers,
        }))
    }

    pub(crate) fn db(&self) -> MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn runtime(&self, fuel: bool) -> &Runtime {
        if fuel { &self.fuel } else { &self.plain }
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.home.join("containers").join(id)
    }

    pub fn wasm_path(home: &Path, sha256: &str) -> PathBuf {
        home.join("containers/wasm").join(format!("{sha256}.wasm"))
    }

    /// The compiled code for `sha256`, compiled once per engine and shared by every container.
    pub(crate) fn compiled(&self, sha256: &str, fuel: bool) -> Result<Compiled, HostError> {
        let key = (sha256.to_string(), fuel);
        if let Some(c) = self.compiled.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
            return Ok(c.clone());
        }
        let path = Self::wasm_path(&self.home, sha256);
        let artifact = wasmbox_engine::artifact::load(&path)?;
        let rt = self.runtime(fuel);
        let (compiled, how) = wasmbox_engine::compile_first(rt, &artifact, Some(&self.cache), false, Compiler::Auto)?;
        self.compiled.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone(), compiled.clone());
        if how == CompileSource::Baseline {
            self.optimize_later(key, artifact, rt.clone());
        }
        Ok(compiled)
    }

    /// Compiles optimized code for baseline-tier `artifact` on a thread of its own; containers
    /// started once it is ready use it (running ones keep the code they started with).
    fn optimize_later(&self, key: (String, bool), artifact: wasmbox_engine::Artifact, rt: Runtime) {
        let (cache, compiled) = (self.cache.clone(), self.compiled.clone());
        let spawned = std::thread::Builder::new().name("wasmbox-optimize".into()).spawn(move || {
            match wasmbox_engine::optimize(&rt, &artifact, Some(&cache)) {
                Ok(optimized) => {
                    compiled.lock().unwrap_or_else(|e| e.into_inner()).insert(key, optimized);
                }
                Err(e) => tracing::warn!(path = %artifact.path.display(), "optimized compile failed; staying on the baseline tier: {e:#}"),
            }
        });
        if let Err(e) = spawned {
            tracing::warn!("cannot start the optimizing compile: {e}");
        }
    }

    /// Checks once per code and engine that `compiled` links as a WASI command: a missing
    /// import would fail every start, so it is refused before anything is stored.
    pub(crate) fn preflight(&self, sha256: &str, fuel: bool, compiled: &Compiled) -> Result<(), HostError> {
        let key = (sha256.to_string(), fuel);
        if self.linked.lock().unwrap_or_else(|e| e.into_inner()).contains(&key) {
            return Ok(());
        }
        wasmbox_engine::preflight(compiled)?;
        self.linked.lock().unwrap_or_else(|e| e.into_inner()).insert(key);
        Ok(())
    }

    /// Finds a container by exact name or unique id prefix.
    pub fn resolve(&self, text: &str) -> Result<Container, HostError> {
        if text.is_empty() {
            return Err(HostError::NotFound("(empty name)".into()));
        }
        let matches = self.db().matching(text)?;
        let id = match matches.as_slice() {
            [] => return Err(HostError::NotFound(text.into())),
            [(id, name), ..] if name == text => id.clone(),
            [(id, _)] => id.clone(),
            many => {
                let ids: Vec<&str> = many.iter().take(5).map(|(id, _)| &id[..12.min(id.len())]).collect();
                return Err(HostError::Ambiguous(text.into(), ids.join(", ")));
            }
        };
        self.db().get(&id)?.ok_or_else(|| HostError::NotFound(text.into()))
    }

    pub fn list(&self, all: bool) -> Result<Vec<Container>, HostError> {
        let mut list = self.db().list()?;
        if !all {
            list.retain(|c| c.status.can_stop());
        }
        Ok(list)
    }

    pub fn stats(&self, c: &Container) -> Stats {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let (cpu, mem, fuel, uptime) = match live.get(&c.id) {
            Some(l) if c.status == crate::Status::Running => {
                let s = l.stats.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let started = *l.started.lock().unwrap_or_else(|e| e.into_inner());
                (
                    s.cpu_nanos.load(Ordering::Relaxed) / 1_000_000,
                    s.memory_bytes.load(Ordering::Relaxed),
                    c.spec.fuel.map(|_| s.fuel_used.load(Ordering::Relaxed)),
                    started.elapsed().as_millis() as u64,
                )
            }
            _ => (0, 0, None, 0),
        };
        Stats {
            id: c.id.clone(),
            name: c.name.clone(),
            status: c.status.to_string(),
            cpu_ms: cpu,
            memory_bytes: mem,
            fuel_used: fuel,
            uptime_ms: uptime,
            restarts: c.restarts,
        }
    }

    /// A new 64-hex-digit id: sha256 of the time, the process, a counter and the clock's noise.
    pub(crate) fn new_id(&self) -> String {
        use sha2::{Digest, Sha256};
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut h = Sha256::new();
        h.update(now_nanos().to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        h.update(n.to_le_bytes());
        h.update(format!("{:?}", Instant::now()).as_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

pub(crate) fn now_nanos() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

pub fn now_ms() -> i64 {
    (now_nanos() / 1_000_000) as i64
}
