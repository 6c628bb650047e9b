//! Notices on one machine: printed for the person at the terminal and kept in a file.

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

use baton_app::ports::notices::{Notice, NoticeError, Notifier};

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
        let mut file = private_append(&self.log).map_err(|e| NoticeError(Box::new(e)))?;
        writeln!(file, "== {} ==\n{}\n", notice.subject, notice.for_people())
            .map_err(|e| NoticeError(Box::new(e)))
    }
}

/// Opens the log to append, readable by its owner only: approval notices carry links that
/// decide, and whoever reads one can use it. A log left readable by an older Baton is made
/// private too.
fn private_append(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    if file.metadata()?.permissions().mode() & 0o077 != 0 {
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}
