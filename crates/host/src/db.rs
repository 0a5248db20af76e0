//! `Db`: the container table in SQLite (`$WASMBOX_HOME/wasmbox.db`), WAL with
//! `synchronous=FULL`, so a write that returned survives `kill -9` and power loss.
//!
//! Schema changes are numbered migrations applied in order (`PRAGMA user_version`). A damaged
//! file is refused with a clear error; nothing here ever rewrites or deletes it.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::error::HostError;
use crate::spec::ContainerSpec;
use crate::status::Status;

/// Migration N (1-based) brings the schema from version N-1 to N.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE containers (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        spec        TEXT NOT NULL,
        status      TEXT NOT NULL,
        exit_code   INTEGER,
        reason      TEXT,
        created_ms  INTEGER NOT NULL,
        started_ms  INTEGER,
        finished_ms INTEGER,
        restarts    INTEGER NOT NULL DEFAULT 0
    );
"];

/// One container as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub spec: ContainerSpec,
    pub status: Status,
    pub exit_code: Option<i32>,
    /// Why it ended when that was not a plain exit: a trap, a limit, "stopped", "daemon stopped".
    pub reason: Option<String>,
    pub created_ms: i64,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    pub restarts: u32,
}

pub struct Db {
    conn: Connection,
}

impl Db {
    pub fn open(path: &Path) -> Result<Db, HostError> {
        let damaged = |e: String| {
            HostError::Db(format!(
                "{} is damaged or not a wasmbox database ({e}); move it aside to start with an empty container list",
                path.display()
            ))
        };
        let conn = Connection::open(path).map_err(|e| damaged(e.to_string()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // The first read of a file that is not SQLite fails here, before anything is written.
        let mode: String =
            conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(|e| damaged(e.to_string()))?;
        if mode != "wal" {
            return Err(HostError::Db(format!("{} cannot use WAL (journal mode {mode})", path.display())));
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
        let check: String =
            conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(|e| damaged(e.to_string()))?;
        if check != "ok" {
            return Err(damaged(check));
        }
        let mut db = Db { conn };
        db.migrate()?;
        Ok(db)
    }

    fn migrate(&mut self) -> Result<(), HostError> {
        let version: usize = self.conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > MIGRATIONS.len() {
            return Err(HostError::Db(format!(
                "the database has schema version {version}, newer than this wasmbox knows ({}); use a newer wasmbox",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i + 1)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Stores a new container that is starting now (created and running in one commit).
    pub fn insert_running(&self, c: &Container) -> Result<(), HostError> {
        let spec = serde_json::to_string(&c.spec).map_err(|e| HostError::Internal(e.to_string()))?;
        let inserted = self.conn.execute(
            "INSERT INTO containers (id, name, spec, status, created_ms, started_ms, restarts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
            params![c.id, c.name, spec, c.status.as_str(), c.created_ms, c.started_ms],
        );
        match inserted {
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                Err(HostError::Conflict(format!("the container name `{}` is already in use", c.name)))
            }
            other => other.map(|_| ()).map_err(HostError::from),
        }
    }

    pub fn get(&self, id: &str) -> Result<Option<Container>, HostError> {
        self.conn.query_row(&format!("{SELECT} WHERE id = ?1"), [id], row).optional()?.transpose()
    }

    pub fn list(&self) -> Result<Vec<Container>, HostError> {
        let mut stmt = self.conn.prepare_cached(&format!("{SELECT} ORDER BY created_ms, id"))?;
        let rows = stmt.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().collect()
    }

    /// Ids and names that start with `prefix` (for name-or-id-prefix lookup).
    pub fn matching(&self, text: &str) -> Result<Vec<(String, String)>, HostError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, name FROM containers WHERE name = ?1 OR substr(id, 1, length(?1)) = ?1 ORDER BY name = ?1 DESC",
        )?;
        let rows = stmt.query_map([text], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn set_running(&self, id: &str, started_ms: i64, restarts: u32) -> Result<(), HostError> {
        self.conn.execute(
            "UPDATE containers SET status = 'running', started_ms = ?2, restarts = ?3, exit_code = NULL, reason = NULL, finished_ms = NULL WHERE id = ?1",
            params![id, started_ms, restarts],
        )?;
        Ok(())
    }

    pub fn set_ended(
        &self,
        id: &str,
        status: Status,
        exit_code: Option<i32>,
        reason: Option<&str>,
        finished_ms: i64,
    ) -> Result<(), HostError> {
        self.conn.execute(
            "UPDATE containers SET status = ?2, exit_code = ?3, reason = ?4, finished_ms = ?5 WHERE id = ?1",
            params![id, status.as_str(), exit_code, reason, finished_ms],
        )?;
        Ok(())
    }

    /// Deletes the row; `false` when there was none (someone else removed it first).
    pub fn remove(&self, id: &str) -> Result<bool, HostError> {
        Ok(self.conn.execute("DELETE FROM containers WHERE id = ?1", [id])? == 1)
    }
}

const SELECT: &str =
    "SELECT id, name, spec, status, exit_code, reason, created_ms, started_ms, finished_ms, restarts FROM containers";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Container, HostError>> {
    let spec: String = r.get(2)?;
    let status: String = r.get(3)?;
    let id: String = r.get(0)?;
    let parsed = (|| {
        let spec = serde_json::from_str(&spec).map_err(|e| format!("spec: {e}"))?;
        let status = Status::parse(&status).ok_or_else(|| format!("status `{status}`"))?;
        Ok::<_, String>((spec, status))
    })();
    let (spec, status) = match parsed {
        Ok(x) => x,
        Err(why) => return Ok(Err(HostError::Db(format!("container {id} has a damaged record ({why})")))),
    };
    Ok(Ok(Container {
        id,
        name: r.get(1)?,
        spec,
        status,
        exit_code: r.get(4)?,
        reason: r.get(5)?,
        created_ms: r.get(6)?,
        started_ms: r.get(7)?,
        finished_ms: r.get(8)?,
        restarts: r.get(9)?,
    }))
}
