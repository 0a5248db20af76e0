//! `create`: store a new container and start it (`run -d`). Nothing is stored when the spec is
//! invalid or the code cannot be compiled; the answer comes after the database commit.

use std::sync::Arc;

use crate::db::Container;
use crate::error::HostError;
use crate::manager::{Manager, now_ms};
use crate::spec::ContainerSpec;
use crate::status::Status;

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nimble", "proud",
    "quiet", "rapid", "sharp", "tidy", "vivid", "witty", "young", "zesty",
];
const NOUNS: &[&str] = &[
    "otter", "falcon", "badger", "heron", "lynx", "panda", "raven", "tiger", "walrus", "yak", "bison", "crane",
    "dingo", "gecko", "ibis", "koala", "lemur", "moose", "newt", "quokka",
];

impl Manager {
    pub fn create(self: &Arc<Self>, mut spec: ContainerSpec) -> Result<Container, HostError> {
        spec.validate()?;
        if self.shutting_down.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(HostError::Conflict("the daemon is shutting down".into()));
        }
        self.admit(&spec)?;
        // Compile first: a container that can never start is refused, not stored.
        let compiled = self.compiled(&spec.wasm_sha256, spec.fuel.is_some())?;
        if spec.publish.is_some() && compiled.kind() != wasmbox_engine::Kind::Component {
            return Err(HostError::NotRunnable(
                "-p serves wasi:http components; this is a core module".into(),
                Some("run it without -p".into()),
            ));
        }
        if spec.publish.is_none() {
            self.preflight(&spec.wasm_sha256, spec.fuel.is_some(), &compiled)?;
        }
        let id = self.new_id();
        let explicit = spec.name.is_some();
        let name = spec.name.take().unwrap_or_else(|| generated_name(&id));
        let now = now_ms();
        let dir = self.container_dir(&id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| HostError::Internal(format!("failed to create {}: {e}", dir.display())))?;
        let mut c = Container {
            id: id.clone(),
            name,
            spec,
            status: Status::Running,
            exit_code: None,
            reason: None,
            created_ms: now,
            started_ms: Some(now),
            finished_ms: None,
            restarts: 0,
        };
        let mut inserted = self.db().insert_running(&c);
        if !explicit {
            // A generated name collided: make it unique with more and more of the id (the
            // name came from its first four digits, the suffix adds the next ones).
            let base = c.name.clone();
            for end in [10, 16, 64] {
                if !matches!(inserted, Err(HostError::Conflict(_))) {
                    break;
                }
                c.name = format!("{base}_{}", &id[4..end]);
                inserted = self.db().insert_running(&c);
            }
        }
        if let Err(e) = inserted {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        self.spawn_supervisor(&c, compiled);
        Ok(c)
    }

    /// `start`: run a stopped container again.
    pub fn start(self: &Arc<Self>, text: &str) -> Result<Container, HostError> {
        let c = self.resolve(text)?;
        if !c.status.can_start() {
            return Err(HostError::Conflict(format!("container {} is {}: stop it first", c.name, c.status)));
        }
        self.start_stored(c, 0)
    }

    /// Marks `c` running (restarts + `extra`) and starts its supervisor.
    pub(crate) fn start_stored(self: &Arc<Self>, mut c: Container, extra: u32) -> Result<Container, HostError> {
        self.admit(&c.spec)?;
        let compiled = self.compiled(&c.spec.wasm_sha256, c.spec.fuel.is_some())?;
        c.restarts += extra;
        c.started_ms = Some(now_ms());
        self.db().set_running(&c.id, c.started_ms.unwrap_or_default(), c.restarts)?;
        c.status = Status::Running;
        c.exit_code = None;
        c.reason = None;
        self.spawn_supervisor(&c, compiled);
        Ok(c)
    }
}

fn generated_name(id: &str) -> String {
    let b = u8::from_str_radix(&id[..2], 16).unwrap_or(0) as usize;
    let n = u8::from_str_radix(&id[2..4], 16).unwrap_or(0) as usize;
    format!("{}_{}", ADJECTIVES[b % ADJECTIVES.len()], NOUNS[n % NOUNS.len()])
}
