//! Opening the one SQLite file that several `baton` processes of a home share.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};

/// How long a writer waits for another process's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens `path` in WAL mode and creates `schema` if missing.
///
/// Switching to WAL and creating the schema take locks that SQLite refuses at once, without
/// calling the busy handler, while another process is doing the same on a new file: those
/// refusals are retried until [`BUSY_TIMEOUT`].
///
/// # Errors
/// When the file cannot be opened, or stays locked past the timeout.
pub(crate) fn open(path: &Path, schema: &str) -> rusqlite::Result<Connection> {
    create_private(path)?;
    let started = Instant::now();
    loop {
        match try_open(path, schema) {
            Err(e) if is_busy(&e) && started.elapsed() < BUSY_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            done => return done,
        }
    }
}

/// Creates the file `0600` if it is new: it holds approval tokens and the queue of work. SQLite
/// gives its `-wal` and `-shm` files the database's own mode.
fn create_private(path: &Path) -> rusqlite::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!("cannot create {}: {e}", path.display())),
        )),
    }
}

/// An in-memory database with `schema`, for tests.
///
/// # Errors
/// When the schema does not apply.
pub(crate) fn in_memory(schema: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open_in_memory()?;
    conn.execute_batch(schema)?;
    Ok(conn)
}

/// Begins a transaction that writes: it takes the write lock at once (waiting through the busy
/// handler), where a deferred one that read first would fail outright if another process wrote
/// in between.
///
/// # Errors
/// When the lock stays taken past the busy timeout.
pub(crate) fn write(conn: &mut Connection) -> rusqlite::Result<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
}

/// Runs `sql` with `params` on a statement prepared once per connection and then kept: the
/// store runs the same few statements on every transition, and parsing them again each time
/// showed in every profile of a run.
pub(crate) fn execute(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// The one row `sql` selects, on a kept statement (see [`execute`]).
pub(crate) fn query_row<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, row)
}

fn try_open(path: &Path, schema: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_handler(Some(wait_for_lock))?;
    // The state store and the queue share this connection; their hot statements all stay.
    conn.set_prepared_statement_cache_capacity(64);
    // Plans must not depend on bound values: with STAT4 compiled in, SQLite otherwise compiles a
    // cached statement again whenever a value compared to an indexed column changes, and the
    // queue's claim (`not_before <= now`) changed on every call: a fifth of a run's own time.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(schema)?;
    Ok(conn)
}

/// SQLite's own busy handler sleeps 1, 2, 5, 10... ms between tries: with writers taking turns
/// hundreds of times a second (the runtime beside a `baton serve` or a CLI command on the same
/// home; within one process the state and the queue share a connection), those sleeps left the
/// cores idle most of the time. Locks here are held for tens of microseconds, so the first
/// tries come quickly, backing off to 5 ms; SQLite's count of tries bounds the wait at about
/// [`BUSY_TIMEOUT`].
fn wait_for_lock(tries: i32) -> bool {
    match pause_before_try(u32::try_from(tries).unwrap_or(0)) {
        Some(pause) => {
            std::thread::sleep(pause);
            true
        }
        None => false,
    }
}

/// The pause before try `tries + 1`, or `None` once the pauses so far reach [`BUSY_TIMEOUT`].
fn pause_before_try(tries: u32) -> Option<Duration> {
    const QUICK: Duration = Duration::from_micros(50);
    const SHORT: Duration = Duration::from_micros(500);
    const LONG: Duration = Duration::from_millis(5);
    let waited = QUICK * tries.min(20)
        + SHORT * tries.saturating_sub(20).min(40)
        + LONG * tries.saturating_sub(60);
    if waited >= BUSY_TIMEOUT {
        return None;
    }
    Some(match tries {
        0..=19 => QUICK,
        20..=59 => SHORT,
        _ => LONG,
    })
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS t (n INTEGER);";

    #[test]
    fn a_locked_writer_tries_again_within_microseconds_and_gives_up_at_the_timeout() {
        assert_eq!(pause_before_try(0), Some(Duration::from_micros(50)));
        let mut waited = Duration::ZERO;
        let mut tries = 0;
        while let Some(pause) = pause_before_try(tries) {
            waited += pause;
            tries += 1;
        }
        assert!(waited >= BUSY_TIMEOUT, "gave up after {waited:?}");
        assert!(waited < BUSY_TIMEOUT + Duration::from_millis(10), "waited {waited:?}");
    }

    /// Two connections of one file writing at once both finish, the second waiting in the
    /// busy handler rather than failing.
    #[test]
    fn two_writers_of_one_file_both_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baton.db");
        open(&path, SCHEMA).unwrap();
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let mut conn = open(&path, SCHEMA).unwrap();
                    for n in 0..200 {
                        let tx = write(&mut conn).unwrap();
                        tx.execute("INSERT INTO t (n) VALUES (?1)", [n]).unwrap();
                        tx.commit().unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let conn = open(&path, SCHEMA).unwrap();
        let rows: i64 = conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 400);
    }

    /// Many processes' first commands racing on a new home used to fail with "database is
    /// locked"; threads with their own connections race the same way.
    #[test]
    fn many_openers_of_a_new_file_all_succeed() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("baton.db");
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let path = path.clone();
                    std::thread::spawn(move || open(&path, SCHEMA).map(|_| ()))
                })
                .collect();
            for h in handles {
                h.join().unwrap().unwrap();
            }
        }
    }

    /// A kept statement runs as it was compiled whatever values are bound: the queue's claim,
    /// whose `now` changes on every call, was compiled again on every step.
    #[test]
    fn kept_statements_are_not_compiled_again_when_their_values_change() {
        let dir = tempfile::tempdir().unwrap();
        let schema = "CREATE TABLE IF NOT EXISTS q (seq INTEGER PRIMARY KEY, target TEXT NOT NULL,
            not_before INTEGER NOT NULL, claimed INTEGER NOT NULL DEFAULT 0);";
        let conn = open(&dir.path().join("baton.db"), schema).unwrap();
        let sql = "UPDATE q SET claimed = 1 WHERE seq IN (SELECT seq FROM q WHERE target = ?1
            AND claimed = 0 AND not_before <= ?2 ORDER BY seq LIMIT ?3) RETURNING seq";
        for now in 1..=5_i64 {
            conn.execute("INSERT INTO q (target, not_before) VALUES ('w', ?1)", [now]).unwrap();
            let mut stmt = conn.prepare_cached(sql).unwrap();
            let claimed: Vec<i64> = stmt
                .query_map(rusqlite::params!["w", now, 10], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(claimed.len(), 1);
        }
        let stmt = conn.prepare_cached(sql).unwrap();
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
    }
}
