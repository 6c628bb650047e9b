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

fn try_open(path: &Path, schema: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(schema)?;
    Ok(conn)
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS t (n INTEGER);";

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
}
