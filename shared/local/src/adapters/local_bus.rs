//! The in-process event bus: EventBridge's rules over a durable delivery queue in SQLite.
//!
//! Publishing routes each event by the same rules `template.yaml` gives EventBridge and queues
//! one delivery per matching target, in one transaction. A delivery stays queued until its
//! handler finishes, so a crash redelivers it (at least once, as EventBridge does). A delivery
//! that can never succeed is moved to the dead-letter table with the reason.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use baton_core::engine::Millis;
use rusqlite::{Connection, params};
use tokio::sync::{Notify, broadcast};

use super::group_commit::{Db, Guard};
use super::sql_state::unavailable;
use baton_app::ports::bus::{BusError, EventBus};
use baton_app::ports::clock::{Clock, SystemClock};
use baton_app::ports::state::StoreError;
use baton_protocol::bus_events::BusEvent;
use baton_protocol::routing::{Rule, Target, rules, targets};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deliveries (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, target TEXT NOT NULL, event TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, not_before INTEGER NOT NULL DEFAULT 0,
  claimed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS dead_letters (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, target TEXT NOT NULL, event TEXT NOT NULL,
  reason TEXT NOT NULL, at INTEGER NOT NULL);
";

/// A queued delivery of one event to one target.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Queue position.
    pub seq: i64,
    #[allow(missing_docs)]
    pub target: Target,
    #[allow(missing_docs)]
    pub event: BusEvent,
    /// Earlier tries that failed.
    pub attempts: u32,
}

/// The in-process bus.
pub struct LocalBus {
    db: Arc<Db>,
    rules: Vec<Rule>,
    /// Public events are appended here, one JSON object a line, for people to follow. Opened
    /// once: a run publishes thousands of times.
    journal: Option<Mutex<std::fs::File>>,
    /// Wakes this process's dispatcher when something is queued.
    queued: Arc<Notify>,
    /// Public events as they are published, for pages that follow them live (the console).
    public: broadcast::Sender<BusEvent>,
}

impl LocalBus {
    /// Opens the queue in the database at `path` (the state store's file).
    ///
    /// # Errors
    /// When the database cannot be opened.
    pub fn open(path: &Path, journal: Option<PathBuf>) -> Result<Self, StoreError> {
        let conn = super::sqlite::open(path, SCHEMA).map_err(unavailable)?;
        Ok(Self::on(Db::new(conn), journal))
    }

    /// The queue on a connection the state store opened (see
    /// [`SqlStateStore::connection`](super::sql_state::SqlStateStore::connection)).
    ///
    /// # Errors
    /// When the queue's tables cannot be created.
    pub fn shared(db: Arc<Db>, journal: Option<PathBuf>) -> Result<Self, StoreError> {
        db.conn().execute_batch(SCHEMA).map_err(unavailable)?;
        Ok(Self::on(db, journal))
    }

    fn on(db: Arc<Db>, journal: Option<PathBuf>) -> Self {
        Self {
            db,
            rules: rules(),
            // The journal is for people; without it the runtime still runs.
            journal: journal.and_then(|path| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .ok()
                    .map(Mutex::new)
            }),
            queued: Arc::new(Notify::new()),
            public: broadcast::channel(PUBLIC_BACKLOG).0,
        }
    }

    /// The public events this process publishes from now on. A follower that falls more than
    /// [`PUBLIC_BACKLOG`] behind is told it lagged and should read the state again.
    pub fn follow(&self) -> broadcast::Receiver<BusEvent> {
        self.public.subscribe()
    }

    /// Notified whenever this process queues a delivery.
    pub fn queued(&self) -> Arc<Notify> {
        Arc::clone(&self.queued)
    }

    fn conn(&self) -> Guard<'_> {
        self.db.conn()
    }

    /// Takes up to `limit` due deliveries for `target`, marking them claimed.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub fn claim(&self, target: Target, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let now = SystemClock.now();
        // Claims are forgotten at start: one a crash loses costs nothing.
        let mut out = self.db.write_soon(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "UPDATE deliveries SET claimed = 1 WHERE seq IN (
                       SELECT seq FROM deliveries WHERE target = ?1 AND claimed = 0 AND not_before <= ?2
                       ORDER BY seq LIMIT ?3)
                     RETURNING seq, event, attempts",
                )
                .map_err(unavailable)?;
            let rows = stmt
                .query_map(params![target.name(), now, limit as i64], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
                })
                .map_err(unavailable)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(unavailable)?;
            let mut out = Vec::with_capacity(rows.len());
            for (seq, text, attempts) in rows {
                match serde_json::from_str(&text) {
                    Ok(event) => {
                        out.push(Delivery { seq, target, event, attempts: attempts as u32 });
                    }
                    Err(e) => dead_letter_row(conn, seq, &format!("unreadable event: {e}"))?,
                }
            }
            Ok(out)
        })?;
        out.sort_by_key(|d| d.seq);
        Ok(out)
    }

    /// The delivery was handled.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub fn complete(&self, seq: i64) -> Result<(), StoreError> {
        self.complete_all(&[seq])
    }

    /// These deliveries were handled: forgotten in one transaction.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub fn complete_all(&self, seqs: &[i64]) -> Result<(), StoreError> {
        if seqs.is_empty() {
            return Ok(());
        }
        // A completion a crash loses is delivered again, as EventBridge may deliver twice.
        self.db.write_soon(|conn| {
            for seq in seqs {
                super::sqlite::execute(conn, "DELETE FROM deliveries WHERE seq = ?1", [seq])
                    .map_err(unavailable)?;
            }
            Ok(())
        })
    }

    /// The handler failed in a way worth retrying: deliver again after a back-off.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub fn retry_later(&self, seq: i64, attempts: u32) -> Result<(), StoreError> {
        let backoff: Millis = 200 * (1 << attempts.min(8));
        self.db.write_soon(|conn| {
            super::sqlite::execute(
                conn,
                "UPDATE deliveries SET claimed = 0, attempts = attempts + 1, not_before = ?2 WHERE seq = ?1",
                params![seq, SystemClock.now() + backoff],
            )
            .map_err(unavailable)?;
            Ok(())
        })
    }

    /// The delivery can never succeed: keep it with the reason and stop delivering it.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub fn dead_letter(&self, seq: i64, reason: &str) -> Result<(), StoreError> {
        self.db.write_soon(|conn| dead_letter_row(conn, seq, reason))
    }

    /// Forgets claims: called by the one runtime of a home when it starts, since whoever
    /// claimed them before has stopped.
    ///
    /// # Errors
    /// When the database cannot be written.
    pub fn reset_claims(&self) -> Result<(), StoreError> {
        self.conn().execute("UPDATE deliveries SET claimed = 0", []).map_err(unavailable)?;
        Ok(())
    }

    /// Dead letters, oldest first, as (target, reason, event JSON).
    ///
    /// # Errors
    /// When the database cannot be read.
    pub fn dead_letters(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let conn = self.db.read();
        let mut stmt = conn
            .prepare("SELECT target, reason, event FROM dead_letters ORDER BY seq")
            .map_err(unavailable)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(unavailable)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(unavailable)?;
        Ok(rows)
    }

    /// Queues `event` for `target` directly, bypassing the rules (for replays and tests).
    ///
    /// # Errors
    /// When the database cannot be written.
    pub fn enqueue(&self, target: Target, event: &BusEvent) -> Result<(), StoreError> {
        let text = serde_json::to_string(event).map_err(unavailable)?;
        self.conn()
            .execute(
                "INSERT INTO deliveries (target, event) VALUES (?1, ?2)",
                params![target.name(), text],
            )
            .map_err(unavailable)?;
        self.queued.notify_one();
        Ok(())
    }

    /// Public events go to people: to the live followers and, a line each, to the journal.
    fn journal(&self, events: &[BusEvent]) {
        let public: Vec<&BusEvent> =
            events.iter().filter(|e| e.source != baton_protocol::bus_events::SOURCE).collect();
        if public.is_empty() {
            return;
        }
        if self.public.receiver_count() > 0 {
            for e in &public {
                // Nobody following is not an error.
                let _ = self.public.send(strip_messages((*e).clone()));
            }
        }
        let Some(file) = &self.journal else { return };
        // The journal is for people; losing a line of it never affects an execution.
        {
            let mut text = String::new();
            for e in public {
                if let Ok(line) = serde_json::to_string(&strip_messages(e.clone())) {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
            let mut file = file.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let _ = file.write_all(text.as_bytes());
        }
    }
}

/// How many public events a follower may fall behind before it is told it lagged.
pub const PUBLIC_BACKLOG: usize = 1024;

/// A public event as people read it: without the messages that ride on it.
fn strip_messages(mut e: BusEvent) -> BusEvent {
    if let Some(detail) = e.detail.as_object_mut() {
        detail.retain(|k, _| !k.starts_with("baton-"));
    }
    e
}

fn dead_letter_row(conn: &Connection, seq: i64, reason: &str) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO dead_letters (target, event, reason, at)
         SELECT target, event, ?2, ?3 FROM deliveries WHERE seq = ?1",
        params![seq, reason, SystemClock.now()],
    )
    .map_err(unavailable)?;
    conn.execute("DELETE FROM deliveries WHERE seq = ?1", [seq]).map_err(unavailable)?;
    Ok(())
}

impl LocalBus {
    /// Queues one delivery of each event per target its rules route it to, in `tx`: the state
    /// store's write when it relays its outbox here (see
    /// [`SqlStateStore::relay_through`](super::sql_state::SqlStateStore::relay_through)), so
    /// a state change and the deliveries it causes commit together. Call [`Self::announce`]
    /// once that has committed.
    ///
    /// # Errors
    /// When the deliveries cannot be written.
    pub fn queue_in(&self, tx: &Connection, events: &[BusEvent]) -> rusqlite::Result<()> {
        for event in events {
            let routed = targets(&self.rules, event);
            if routed.is_empty() {
                continue;
            }
            let text = serde_json::to_string(event)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            let mut insert =
                tx.prepare_cached("INSERT INTO deliveries (target, event) VALUES (?1, ?2)")?;
            for target in routed {
                insert.execute(params![target.name(), text])?;
            }
        }
        Ok(())
    }

    /// Tells people and this process's dispatcher about events whose deliveries committed.
    pub fn announce(&self, events: &[BusEvent]) {
        self.journal(events);
        self.queued.notify_one();
    }
}

#[async_trait]
impl EventBus for LocalBus {
    async fn publish(&self, events: &[BusEvent]) -> Result<(), BusError> {
        self.db
            .write(|conn| self.queue_in(conn, events).map_err(unavailable))
            .await
            .map_err(|e| BusError::Unavailable(Box::new(e)))?;
        self.announce(events);
        Ok(())
    }
}
