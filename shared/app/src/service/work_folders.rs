//! Work folders of ended steps, emptied and kept to be reused.
//!
//! Every action attempt works in a fresh folder (`work/<execution>.<stage>.<action>.<n>.run`
//! with the job's `run/src` inside). Making and removing folders per action was most of a no-op
//! action's cost on ext4, whose inode allocator walks past every inode freed in the last minute,
//! so creating a folder gets slower the more were recently removed; and every `mkdir` in one
//! folder takes that folder's lock, even one that fails because the folder exists. So an ended
//! step's folder is emptied at once (nothing of its work stays behind), its `run/src` skeleton
//! kept, and moved to the pool; the next step renames it into place instead of making one. The
//! folders sit side by side in `work/` (no folder per execution to make and remove per step),
//! and this process remembers which pooled folders it gave back, so taking one lists nothing.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The folders a job's work folder holds before anything runs in it.
const SKELETON: &[&str] = &["run", "run/src"];

/// The pool: one folder (`<home>/work/.free`) of empty work folders.
#[derive(Debug)]
pub(crate) struct WorkFolders {
    work: PathBuf,
    free: PathBuf,
    next: AtomicU64,
    /// Pooled folders this process knows of: those it gave back, and those an earlier process
    /// left (listed once, when this one knows of none).
    known: Mutex<Vec<PathBuf>>,
}

impl WorkFolders {
    pub(crate) fn new(work: &Path) -> Self {
        Self {
            work: work.to_path_buf(),
            free: work.join(".free"),
            next: AtomicU64::new(0),
            known: Mutex::default(),
        }
    }

    /// The work folder of `name` (unique among running steps, without `/`).
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.work.join(name)
    }

    /// Makes `folder` (which must not exist) an empty work folder: a free one moved there, or
    /// a new one.
    pub(crate) fn make(&self, folder: &Path) -> io::Result<()> {
        if let Some(parent) = folder.parent() {
            ensure_dir(parent)?;
        }
        while let Some(free) = self.take() {
            // Another process may take the same one first; then try the next.
            if std::fs::rename(&free, folder).is_ok() {
                return Ok(());
            }
        }
        std::fs::create_dir(folder)
    }

    /// A pooled folder, if any is known or (when none is) listed.
    fn take(&self) -> Option<PathBuf> {
        let mut known = self.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.is_empty() {
            let listed = std::fs::read_dir(&self.free).into_iter().flatten().flatten();
            known.extend(listed.map(|entry| entry.path()));
        }
        known.pop()
    }

    /// Empties `folder` and keeps it for the next step; removes it when it cannot be emptied
    /// or moved. Never fails: the work folder is scratch space.
    pub(crate) fn give_back(&self, folder: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let pooled = self.free.join(format!("{}-{n}", std::process::id()));
        let kept = std::fs::metadata(folder)
            .and_then(|m| empty_keeping(folder, Path::new(""), m.permissions().mode()))
            .and_then(|()| ensure_dir(&self.free))
            .and_then(|()| std::fs::rename(folder, &pooled));
        match kept {
            Ok(()) => {
                self.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(pooled)
            }
            Err(_) => {
                let _ = std::fs::remove_dir_all(folder);
            }
        }
    }
}

/// Makes `dir` and its parents unless it exists. Looks first: `mkdir` of a folder that exists
/// still takes its parent's lock, which every worker would queue on.
pub(crate) fn ensure_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() { Ok(()) } else { std::fs::create_dir_all(dir) }
}

/// Removes everything under `dir` but the [`SKELETON`]'s folders that still have `mode` (the
/// work folder's, as made; one whose mode a job changed is removed, so the next job gets it as
/// new). `at`: `dir`'s path from the work folder. A symbolic link is removed, never followed.
fn empty_keeping(dir: &Path, at: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let relative = at.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            let skeleton = SKELETON.iter().any(|s| Path::new(s) == relative);
            if skeleton && entry.metadata()?.permissions().mode() == mode {
                empty_keeping(&path, &relative, mode)?;
            } else {
                std::fs::remove_dir_all(&path)?;
            }
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    #[test]
    fn an_ended_folder_is_emptied_at_once_and_reused_with_its_skeleton() {
        let home = tempfile::tempdir().unwrap();
        let outside = home.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep.txt"), "not the job's").unwrap();
        let work = home.path().join("work");
        let folders = WorkFolders::new(&work);

        let first = folders.path("e-1.Build.Make.1.run");
        folders.make(&first).unwrap();
        let src = first.join("run/src");
        std::fs::create_dir_all(src.join("deep/er")).unwrap();
        std::fs::write(src.join("deep/er/file"), "secret").unwrap();
        std::fs::write(first.join("Src.zip"), "zip").unwrap();
        std::fs::create_dir_all(first.join("run/.baton")).unwrap();
        std::os::unix::fs::symlink(&outside, src.join("link")).unwrap();
        let inode = std::fs::metadata(&src).unwrap().ino();

        folders.give_back(&first);
        assert!(!first.exists(), "the ended folder is moved away");
        let pooled: Vec<_> = std::fs::read_dir(work.join(".free")).unwrap().flatten().collect();
        assert_eq!(pooled.len(), 1);
        assert_eq!(std::fs::read_to_string(outside.join("keep.txt")).unwrap(), "not the job's");

        let second = folders.path("e-2.Test.Unit.1.run");
        folders.make(&second).unwrap();
        assert_eq!(
            std::fs::read_dir(work.join(".free")).unwrap().count(),
            0,
            "taken from the pool"
        );
        assert_eq!(names(&second), ["run"]);
        assert_eq!(names(&second.join("run")), ["src"]);
        assert!(names(&second.join("run/src")).is_empty(), "nothing of the last job is left");
        assert_eq!(std::fs::metadata(second.join("run/src")).unwrap().ino(), inode, "reused");

        let third = folders.path("e-2.Test.Lint.1.run");
        folders.make(&third).unwrap();
        assert!(names(&third).is_empty(), "a new folder when none is free");
        folders.give_back(&second);
        folders.give_back(&third);
        let names_in_work = names(&work);
        assert_eq!(names_in_work, [".free"], "nothing but the pool is left in work/");

        // A later process finds what an earlier one pooled.
        let later = WorkFolders::new(&work);
        let fourth = later.path("e-3.Deploy.Push.1.run");
        assert_eq!(std::fs::read_dir(work.join(".free")).unwrap().count(), 2);
        later.make(&fourth).unwrap();
        assert!(fourth.is_dir());
        assert_eq!(std::fs::read_dir(work.join(".free")).unwrap().count(), 1, "a pooled one");
    }

    #[test]
    fn a_skeleton_folder_whose_mode_a_job_changed_is_removed_not_kept() {
        let home = tempfile::tempdir().unwrap();
        let work = home.path().join("work");
        let folders = WorkFolders::new(&work);
        let first = folders.path("e-1.Build.Make.1.run");
        folders.make(&first).unwrap();
        std::fs::create_dir_all(first.join("run/src")).unwrap();
        let made = std::fs::metadata(&first).unwrap().permissions().mode();
        let changed = std::fs::Permissions::from_mode(made ^ 0o020);
        std::fs::set_permissions(first.join("run/src"), changed).unwrap();
        folders.give_back(&first);
        let second = folders.path("e-2.Build.Make.1.run");
        folders.make(&second).unwrap();
        assert_eq!(names(&second), ["run"]);
        assert!(names(&second.join("run")).is_empty(), "src is made again by the next job");
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}
