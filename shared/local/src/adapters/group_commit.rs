//! The one SQLite connection the state store and the delivery queue share, with group commit:
//! the writes that arrive together share one transaction, and each is acknowledged only once
//! the transaction holding it has committed.
//!
//! A commit costs the same whatever it holds: the log frames of every page it touched, and
//! SQLite's file locks taken and dropped. With a transition's save, its deliveries, their claims
//! and their completions each committing alone, commits were most of the runtime's writes.
//!
//! A batch is one open transaction. The first durable write opens it and hands the commit to a
//! task that first lets the other ready writers run (and join); each later write runs in a
//! savepoint of it, so a write that fails (a version conflict) undoes only itself. One
//! connection commits its transactions in order, so a crash loses at most the open batch,
//! whose writes nobody was told were done. Reads through [`Db::read`] see the open batch, as
//! they are this process's own and die with it; other processes see only what committed.

use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;
use tokio::sync::watch;

use super::sql_state::unavailable;
use baton_app::ports::state::StoreError;

/// How many times the committer lets other tasks run while the batch still grows.
const MAX_WAITS: usize = 8;

/// The shared connection.
pub struct Db {
    inner: Mutex<Inner>,
    finished: watch::Sender<Finished>,
}

struct Inner {
    conn: Connection,
    /// How many writes joined the open batch, which is batch `last`: batches are numbered as
    /// they open, and one is open at a time.
    open: Option<u32>,
    last: u64,
    commits: u64,
}

/// The batches ended so far.
#[derive(Debug, Default)]
struct Finished {
    /// The last batch ended (committed or failed): batches end in the order they opened.
    upto: u64,
    /// The latest batches whose commit failed.
    failed: Vec<u64>,
}

/// The connection, locked; deref to it.
pub struct Guard<'a>(MutexGuard<'a, Inner>);

impl std::ops::Deref for Guard<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0.conn
    }
}

impl std::ops::DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.0.conn
    }
}

impl Db {
    /// Shares `conn`.
    pub fn new(conn: Connection) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner { conn, open: None, last: 0, commits: 0 }),
            finished: watch::channel(Finished::default()).0,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves SQLite consistent (statements roll back).
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The connection with nothing open on it: commits the open batch first. For code that
    /// runs its own transactions, or whose writes must be durable when it returns.
    pub fn conn(&self) -> Guard<'_> {
        let mut inner = self.lock();
        let last = inner.last;
        self.end(&mut inner, last);
        Guard(inner)
    }

    /// The connection as it stands, the open batch's writes included: for this process's
    /// reads.
    pub fn read(&self) -> Guard<'_> {
        Guard(self.lock())
    }

    /// Transactions committed since this opened, for tests and figures.
    pub fn commits(&self) -> u64 {
        self.lock().commits
    }

    /// Runs `write` in the open batch, or alone when none is open; returns once it ran, maybe
    /// before it is durable. Only for writes a crash may lose: delivery claims (forgotten at
    /// start anyway) and completions (a lost one is delivered again, as EventBridge may).
    ///
    /// # Errors
    /// `write`'s, or [`StoreError::Unavailable`] when the database fails.
    pub fn write_soon<T>(
        &self,
        write: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut inner = self.lock();
        if inner.open.is_some() {
            return join(&mut inner, write);
        }
        let tx = super::sqlite::write(&mut inner.conn).map_err(unavailable)?;
        let value = write(&tx)?;
        tx.commit().map_err(unavailable)?;
        inner.commits += 1;
        Ok(value)
    }

    /// Runs `write` in the open batch (opening one when none is) and returns once the batch
    /// has committed.
    ///
    /// # Errors
    /// `write`'s (its changes undone, the batch's others kept), or
    /// [`StoreError::Unavailable`] when the database fails or the batch's commit does.
    pub async fn write<T>(
        self: &Arc<Self>,
        write: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut finished = self.finished.subscribe();
        let (number, value) = {
            let mut inner = self.lock();
            let opens = inner.open.is_none();
            if opens {
                inner.conn.execute_batch("BEGIN IMMEDIATE").map_err(unavailable)?;
                inner.last += 1;
                inner.open = Some(0);
            }
            let number = inner.last;
            let value = join(&mut inner, write);
            drop(inner);
            if opens {
                self.commit_soon(number);
            }
            (number, value?)
        };
        let ended = finished.wait_for(|f| f.upto >= number).await.map_err(unavailable)?;
        if ended.failed.contains(&number) {
            return Err(StoreError::Unavailable("the transaction holding the write failed".into()));
        }
        Ok(value)
    }

    /// Commits batch `number` once the writers ready now have joined it: on a task of its
    /// own, so that no caller giving up its wait can leave the batch open.
    fn commit_soon(self: &Arc<Self>, number: u64) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.end(&mut self.lock(), number);
            return;
        };
        let db = Arc::clone(self);
        runtime.spawn(async move {
            let mut seen = 0;
            for _ in 0..MAX_WAITS {
                tokio::task::yield_now().await;
                let joined = db.lock().joined(number);
                match joined {
                    Some(joined) if joined > seen => seen = joined,
                    _ => break,
                }
            }
            db.end(&mut db.lock(), number);
        });
    }

    /// Commits batch `number` if it is still open, and tells its writers.
    fn end(&self, inner: &mut Inner, number: u64) {
        if inner.joined(number).is_none() {
            return;
        }
        inner.open = None;
        let failed = match inner.conn.execute_batch("COMMIT") {
            Ok(()) => {
                inner.commits += 1;
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot commit a batch of writes");
                let _ = inner.conn.execute_batch("ROLLBACK");
                true
            }
        };
        self.finished.send_modify(|f| {
            f.upto = number;
            if failed {
                f.failed.push(number);
                let excess = f.failed.len().saturating_sub(16);
                f.failed.drain(..excess);
            }
        });
    }
}

impl Inner {
    /// How many writes joined batch `number`, if it is the open one.
    fn joined(&self, number: u64) -> Option<u32> {
        self.open.filter(|_| self.last == number)
    }
}

/// Runs `write` in a savepoint of the open batch, counted as one of its writes.
fn join<T>(
    inner: &mut Inner,
    write: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    if let Some(joined) = &mut inner.open {
        *joined += 1;
    }
    let savepoint = inner.conn.savepoint().map_err(unavailable)?;
    let value = write(&savepoint)?;
    savepoint.commit().map_err(unavailable)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)";

    fn db() -> Arc<Db> {
        Db::new(crate::adapters::sqlite::in_memory(SCHEMA).unwrap())
    }

    fn insert(k: i64) -> impl FnOnce(&Connection) -> Result<(), StoreError> {
        move |c| {
            c.execute("INSERT INTO t (k, v) VALUES (?1, 0)", [k]).map_err(unavailable)?;
            Ok(())
        }
    }

    fn count(db: &Db) -> i64 {
        db.conn().query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_that_arrive_together_share_commits_and_each_returns_once_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baton.db");
        let db = Db::new(crate::adapters::sqlite::open(&path, SCHEMA).unwrap());
        // Another process's view: it sees only what committed.
        let other = Arc::new(Mutex::new(crate::adapters::sqlite::open(&path, SCHEMA).unwrap()));
        let writers: Vec<_> = (0..200)
            .map(|k| {
                let (db, other) = (Arc::clone(&db), Arc::clone(&other));
                tokio::spawn(async move {
                    db.write(insert(k)).await.unwrap();
                    let seen: i64 = other
                        .lock()
                        .unwrap()
                        .query_row("SELECT COUNT(*) FROM t WHERE k = ?1", [k], |r| r.get(0))
                        .unwrap();
                    assert_eq!(seen, 1, "write {k} was acknowledged before it committed");
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        assert_eq!(count(&db), 200);
        let commits = db.commits();
        assert!(commits < 100, "{commits} commits for 200 writes");
    }

    #[tokio::test]
    async fn a_failed_write_undoes_only_itself() {
        let db = db();
        db.write(insert(1)).await.unwrap();
        let (a, b, c) = tokio::join!(db.write(insert(2)), db.write(insert(1)), db.write(insert(3)));
        assert!(a.is_ok() && c.is_ok());
        assert!(matches!(b, Err(StoreError::Unavailable(_))), "{b:?}");
        assert_eq!(count(&db), 3);
    }

    #[tokio::test]
    async fn a_write_soon_joins_the_open_batch_and_conn_commits_it() {
        let db = db();
        // Open a batch without letting its committer run.
        let pending = db.write(insert(1));
        tokio::pin!(pending);
        assert!(poll_once(&mut pending).await.is_none(), "waits for the commit");
        db.write_soon(insert(2)).unwrap();
        assert_eq!(db.lock().open, Some(2), "joined the open batch");
        assert_eq!(count(&db), 2, "conn() committed the batch");
        assert!(db.lock().open.is_none());
        pending.await.unwrap();
        assert_eq!(db.commits(), 1);
    }

    /// Polls `f` once; `None` when it is still pending.
    async fn poll_once<F: std::future::Future + Unpin>(f: &mut F) -> Option<F::Output> {
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut *f).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }
}
