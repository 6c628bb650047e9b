//! The state store on one machine: SQLite, with the same conditional-write rules as DynamoDB.
//!
//! Every item carries a version; a save names the version each item was read at and writes
//! nothing if any of them moved (the optimistic lock DynamoDB's condition expressions give).
//! WAL mode: a write survives `kill -9` of the process once `save` returns. Saves that arrive
//! together commit together ([`Db`]).

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use super::group_commit::{Db, Guard};
use super::local_bus::LocalBus;

use async_trait::async_trait;
use baton_core::engine::{Execution, Lanes, Millis};
use rusqlite::{Connection, OptionalExtension, params};

use baton_app::ports::state::*;
use baton_protocol::bus_events::BusEvent;

/// SQLite-backed [`StateStore`].
pub struct SqlStateStore {
    db: Arc<Db>,
    /// Parsed pipeline records by name, with the revision they were read at: every input reads
    /// its pipeline, and parsing the declaration each time would dominate a transition.
    pipelines: Mutex<std::collections::HashMap<String, (Revision, PipelineRecord)>>,
    /// The bus that queues the outbox's events with the state that caused them, when set.
    relay: OnceLock<Arc<LocalBus>>,
}

/// A pipeline row's `rev` and `updated`: together they change on every write.
type Revision = (i64, i64);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS pipelines (
  name TEXT PRIMARY KEY, record TEXT NOT NULL, created INTEGER NOT NULL, updated INTEGER NOT NULL,
  rev INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS lanes (
  pipeline TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS executions (
  pipeline TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, arrival INTEGER NOT NULL,
  started INTEGER NOT NULL, ended INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (pipeline, id));
CREATE INDEX IF NOT EXISTS executions_active ON executions (pipeline, ended);
CREATE INDEX IF NOT EXISTS executions_recent ON executions (pipeline, started DESC, arrival DESC);
CREATE TABLE IF NOT EXISTS outbox (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, pipeline TEXT NOT NULL, saved_at INTEGER NOT NULL,
  event TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS action_claims (
  attempt TEXT PRIMARY KEY, until INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS approval_links (
  id TEXT PRIMARY KEY, body TEXT NOT NULL, used TEXT);
CREATE TABLE IF NOT EXISTS running_jobs (
  key TEXT PRIMARY KEY, check_at INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS running_jobs_due ON running_jobs (check_at);
CREATE TABLE IF NOT EXISTS custom_action_types (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS webhooks (name TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS worker_jobs (
  id TEXT PRIMARY KEY, action_type TEXT NOT NULL, status TEXT NOT NULL, created INTEGER NOT NULL,
  version INTEGER NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS worker_jobs_queued ON worker_jobs (action_type, status, created);
";

pub(crate) fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Unavailable(Box::new(e))
}

impl SqlStateStore {
    /// Opens (and creates) the database at `path`.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the file cannot be opened or its schema created.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self::with(super::sqlite::open(path, SCHEMA).map_err(unavailable)?))
    }

    /// An in-memory database, for tests.
    ///
    /// # Errors
    /// As [`SqlStateStore::open`].
    pub fn in_memory() -> Result<Self, StoreError> {
        Ok(Self::with(super::sqlite::in_memory(SCHEMA).map_err(unavailable)?))
    }

    fn with(conn: Connection) -> Self {
        Self { db: Db::new(conn), pipelines: Mutex::default(), relay: OnceLock::new() }
    }

    /// The store's connection, for the in-process bus to share: two connections of one
    /// process would take turns on SQLite's file lock, waiting in its busy handler, where one
    /// shared connection takes turns on a mutex, and their writes commit together.
    pub fn connection(&self) -> Arc<Db> {
        Arc::clone(&self.db)
    }

    /// From now on, a save queues its outbox's deliveries on `bus` in its own transaction,
    /// and nothing waits in the outbox: a transition commits once, not three times (state,
    /// deliveries, outbox cleared), and no crash can fall between the state and its events.
    /// `bus` must share this store's connection ([`Self::connection`]).
    pub fn relay_through(&self, bus: Arc<LocalBus>) {
        let _ = self.relay.set(bus);
    }

    /// The connection, with this process's writes so far committed.
    pub(crate) fn conn(&self) -> Guard<'_> {
        self.db.conn()
    }

    /// The connection for this process's reads (see [`Db::read`]).
    fn read(&self) -> Guard<'_> {
        self.db.read()
    }
}

/// The first column of every row `sql` selects, as text.
pub(crate) fn texts(conn: &Connection, sql: &str) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare(sql).map_err(unavailable)?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(unavailable)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(unavailable)
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(unavailable)
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(unavailable)
}

fn read_execution(
    conn: &Connection,
    pipeline: &str,
    id: &str,
) -> Result<Option<Versioned<Execution>>, StoreError> {
    super::sqlite::query_row(
        conn,
        "SELECT version, body FROM executions WHERE pipeline = ?1 AND id = ?2",
        params![pipeline, id],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
    )
    .optional()
    .map_err(unavailable)?
    .map(|(v, body)| Ok(Versioned { version: v as u64, value: from_json(&body)? }))
    .transpose()
}

#[async_trait]
impl StateStore for SqlStateStore {
    fn relays_outbox(&self) -> bool {
        self.relay.get().is_some()
    }

    async fn create_pipeline(&self, record: &PipelineRecord) -> Result<(), StoreError> {
        let conn = self.conn();
        let name = &record.plan.name;
        let n = conn
            .execute(
                "INSERT OR IGNORE INTO pipelines (name, record, created, updated) VALUES (?1, ?2, ?3, ?4)",
                params![name, to_json(record)?, record.created, record.updated],
            )
            .map_err(unavailable)?;
        if n == 0 {
            return Err(StoreError::Exists(format!("pipeline {name}")));
        }
        Ok(())
    }

    async fn update_pipeline(&self, record: &PipelineRecord) -> Result<(), StoreError> {
        let conn = self.conn();
        let name = &record.plan.name;
        let n = conn
            .execute(
                "UPDATE pipelines SET record = ?2, updated = ?3, rev = rev + 1 WHERE name = ?1",
                params![name, to_json(record)?, record.updated],
            )
            .map_err(unavailable)?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("pipeline {name}")));
        }
        Ok(())
    }

    async fn get_pipeline(&self, name: &str) -> Result<Option<PipelineRecord>, StoreError> {
        let conn = self.read();
        // A deleted and recreated pipeline starts again at rev 1, but not at the same instant.
        let rev: Option<(i64, i64)> = super::sqlite::query_row(
            &conn,
            "SELECT rev, updated FROM pipelines WHERE name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(unavailable)?;
        let Some(rev) = rev else { return Ok(None) };
        let mut cache = self.pipelines.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((cached_rev, record)) = cache.get(name)
            && *cached_rev == rev
        {
            return Ok(Some(record.clone()));
        }
        let text: String = conn
            .query_row("SELECT record FROM pipelines WHERE name = ?1", [name], |r| r.get(0))
            .map_err(unavailable)?;
        let record: PipelineRecord = from_json(&text)?;
        cache.insert(name.to_string(), (rev, record.clone()));
        Ok(Some(record))
    }

    async fn list_pipelines(&self) -> Result<Vec<String>, StoreError> {
        texts(&self.read(), "SELECT name FROM pipelines ORDER BY name")
    }

    async fn delete_pipeline(&self, name: &str) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = super::sqlite::write(&mut conn).map_err(unavailable)?;
        let n = tx.execute("DELETE FROM pipelines WHERE name = ?1", [name]).map_err(unavailable)?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("pipeline {name}")));
        }
        tx.execute("DELETE FROM lanes WHERE pipeline = ?1", [name]).map_err(unavailable)?;
        tx.execute("DELETE FROM executions WHERE pipeline = ?1", [name]).map_err(unavailable)?;
        tx.commit().map_err(unavailable)
    }

    async fn load(&self, pipeline: &str, scope: &Scope) -> Result<Snapshot, StoreError> {
        let conn = self.read();
        let lanes_row: Option<(i64, String)> = super::sqlite::query_row(
            &conn,
            "SELECT version, body FROM lanes WHERE pipeline = ?1",
            [pipeline],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(unavailable)?;
        let lanes = match lanes_row {
            Some((v, body)) => Versioned { version: v as u64, value: from_json::<Lanes>(&body)? },
            None => Versioned { version: 0, value: Lanes::default() },
        };
        let mut ids: Vec<String> = lanes.value.waiting.iter().flatten().cloned().collect();
        match scope {
            Scope::One(id) => ids.push(id.clone()),
            Scope::LanesOnly => {}
            Scope::Active => {
                let mut stmt = conn
                    .prepare("SELECT id FROM executions WHERE pipeline = ?1 AND ended = 0")
                    .map_err(unavailable)?;
                let active = stmt
                    .query_map([pipeline], |r| r.get::<_, String>(0))
                    .map_err(unavailable)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(unavailable)?;
                ids.extend(active);
            }
        }
        ids.sort();
        ids.dedup();
        let mut executions = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(e) = read_execution(&conn, pipeline, &id)? {
                executions.push(e);
            }
        }
        Ok(Snapshot { lanes, executions })
    }

    async fn save(&self, pipeline: &str, changes: Changes) -> Result<Vec<i64>, StoreError> {
        let relay = self.relay.get();
        let seqs = self.db.write(|conn| write_changes(conn, pipeline, &changes, relay)).await?;
        if let Some(bus) = relay {
            bus.announce(&changes.outbox);
        }
        Ok(seqs)
    }

    async fn execution(&self, pipeline: &str, id: &str) -> Result<Option<Execution>, StoreError> {
        Ok(read_execution(&self.read(), pipeline, id)?.map(|v| v.value))
    }

    async fn executions(&self, pipeline: &str, limit: usize) -> Result<Vec<Execution>, StoreError> {
        let conn = self.read();
        let mut stmt = conn
            .prepare("SELECT body FROM executions WHERE pipeline = ?1 ORDER BY started DESC, arrival DESC LIMIT ?2")
            .map_err(unavailable)?;
        let bodies = stmt
            .query_map(params![pipeline, limit as i64], |r| r.get::<_, String>(0))
            .map_err(unavailable)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable)?;
        bodies.iter().map(|b| from_json(b)).collect()
    }

    async fn pending_outbox(
        &self,
        older_than: Millis,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT seq, saved_at, event FROM outbox WHERE saved_at <= ?1 ORDER BY seq LIMIT ?2")
            .map_err(unavailable)?;
        let rows = stmt
            .query_map(params![older_than, limit as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?))
            })
            .map_err(unavailable)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable)?;
        rows.into_iter()
            .map(|(seq, saved_at, text)| {
                Ok(OutboxEntry { seq, saved_at, event: from_json::<BusEvent>(&text)? })
            })
            .collect()
    }

    async fn ack_outbox(&self, seqs: &[i64]) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = super::sqlite::write(&mut conn).map_err(unavailable)?;
        for seq in seqs {
            tx.execute("DELETE FROM outbox WHERE seq = ?1", [seq]).map_err(unavailable)?;
        }
        tx.commit().map_err(unavailable)
    }
}

/// Writes `changes` to `pipeline`'s items under their versions, and their outbox: queued on
/// `relay` when set, else in the outbox table (whose sequence numbers are returned).
fn write_changes(
    conn: &Connection,
    pipeline: &str,
    changes: &Changes,
    relay: Option<&Arc<LocalBus>>,
) -> Result<Vec<i64>, StoreError> {
    let conflict = || StoreError::Conflict(pipeline.to_string());
    if let Some(lanes) = &changes.lanes {
        let body = to_json(&lanes.value)?;
        let n = if lanes.version == 0 {
            super::sqlite::execute(
                conn,
                "INSERT OR IGNORE INTO lanes (pipeline, version, body) VALUES (?1, 1, ?2)",
                params![pipeline, body],
            )
        } else {
            super::sqlite::execute(
                conn,
                "UPDATE lanes SET version = version + 1, body = ?2 WHERE pipeline = ?1 AND version = ?3",
                params![pipeline, body, lanes.version as i64],
            )
        }
        .map_err(unavailable)?;
        if n == 0 {
            return Err(conflict());
        }
    }
    for e in &changes.executions {
        let x = &e.value;
        let body = to_json(x)?;
        let ended = i64::from(x.status().is_ended());
        let n = if e.version == 0 {
            super::sqlite::execute(
                conn,
                "INSERT OR IGNORE INTO executions (pipeline, id, version, arrival, started, ended, body)
                 VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6)",
                params![pipeline, x.id, x.arrival as i64, x.started_at, ended, body],
            )
        } else {
            super::sqlite::execute(
                conn,
                "UPDATE executions SET version = version + 1, ended = ?3, body = ?4
                 WHERE pipeline = ?1 AND id = ?2 AND version = ?5",
                params![pipeline, x.id, ended, body, e.version as i64],
            )
        }
        .map_err(unavailable)?;
        if n == 0 {
            return Err(conflict());
        }
    }
    if let Some(bus) = relay {
        bus.queue_in(conn, &changes.outbox).map_err(unavailable)?;
        return Ok(Vec::new());
    }
    let now = changes.outbox.first().map_or(0, |_| now_millis());
    let mut seqs = Vec::with_capacity(changes.outbox.len());
    for event in &changes.outbox {
        super::sqlite::execute(
            conn,
            "INSERT INTO outbox (pipeline, saved_at, event) VALUES (?1, ?2, ?3)",
            params![pipeline, now, to_json(event)?],
        )
        .map_err(unavailable)?;
        seqs.push(conn.last_insert_rowid());
    }
    Ok(seqs)
}

fn now_millis() -> Millis {
    use baton_app::ports::clock::{Clock, SystemClock};
    SystemClock.now()
}
