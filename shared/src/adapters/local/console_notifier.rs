//! Notices on one machine: printed for the person at the terminal and kept in a file.

use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;

use crate::ports::notices::{Notice, NoticeError, Notifier};

/// Writes notices to standard error and appends them to `notices.log` in the Baton home.
pub struct ConsoleNotifier {
    log: PathBuf,
    quiet: bool,
}

impl ConsoleNotifier {
    /// `quiet` keeps the terminal clean (the log file still gets every notice).
    pub fn new(log: PathBuf, quiet: bool) -> Self {
        Self { log, quiet }
    }
}

#[async_trait]
impl Notifier for ConsoleNotifier {
    async fn send(&self, notice: &Notice) -> Result<(), NoticeError> {
        if !self.quiet {
            eprintln!("\n== {} ==\n{}\n", notice.subject, notice.for_people());
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| NoticeError(Box::new(e)))?;
        writeln!(file, "== {} ==\n{}\n", notice.subject, notice.for_people())
            .map_err(|e| NoticeError(Box::new(e)))
    }
}
