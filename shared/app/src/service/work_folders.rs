//! Work folders of ended steps, emptied and kept to be reused.
//!
//! Every action attempt works in a fresh folder (`work/<execution>/<stage>.<action>.<n>.run`
//! with the job's `run/src` inside). Making and removing those folders per action was most of
//! a no-op action's cost on ext4, whose inode allocator walks past every inode freed in the
//! last minute, so creating a folder gets slower the more were recently removed. An ended
//! step's folder is emptied at once (nothing of its work stays behind), its `run/src` skeleton
//! kept, and moved here; the next step renames it into place instead of making one.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The folders a job's work folder holds before anything runs in it.
const SKELETON: &[&str] = &["run", "run/src"];

/// The pool: one folder (`<home>/work/.free`) of empty work folders.
#[derive(Debug)]
pub(crate) struct WorkFolders {
    free: PathBuf,
    next: AtomicU64,
}

impl WorkFolders {
    pub(crate) fn new(work: &Path) -> Self {
        Self { free: work.join(".free"), next: AtomicU64::new(0) }
    }

    /// Makes `folder` (which must not exist) an empty work folder: a free one moved there, or
    /// a new one.
    pub(crate) fn make(&self, folder: &Path) -> io::Result<()> {
        // The execution's folder goes with its last step's (`give_back`), maybe between
        // making it and moving a folder in: then make it again.
        let mut tries = 0;
        loop {
            tries += 1;
            match self.make_in_place(folder) {
                Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 3 => continue,
                made => return made,
            }
        }
    }

    fn make_in_place(&self, folder: &Path) -> io::Result<()> {
        if let Some(parent) = folder.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if let Ok(entries) = std::fs::read_dir(&self.free) {
            for entry in entries.flatten() {
                // Another process may take the same one first; then try the next.
                if std::fs::rename(entry.path(), folder).is_ok() {
                    return Ok(());
                }
            }
        }
        std::fs::create_dir(folder)
    }

    /// Empties `folder` and keeps it for the next step; removes it when it cannot be emptied
    /// or moved. Never fails: the work folder is scratch space.
    pub(crate) fn give_back(&self, folder: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let kept = std::fs::metadata(folder)
            .and_then(|m| empty_keeping(folder, Path::new(""), m.permissions().mode()))
            .and_then(|()| std::fs::create_dir_all(&self.free))
            .and_then(|()| {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                std::fs::rename(folder, self.free.join(format!("{}-{n}", std::process::id())))
            });
        if kept.is_err() {
            let _ = std::fs::remove_dir_all(folder);
        }
        // The execution's folder, once its last step's is gone (an error while others remain).
        if let Some(parent) = folder.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
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

        let first = work.join("e-1").join("Build.Make.1.run");
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
        assert!(!work.join("e-1").exists(), "and its execution's, now empty");
        let pooled: Vec<_> = std::fs::read_dir(work.join(".free")).unwrap().flatten().collect();
        assert_eq!(pooled.len(), 1);
        assert_eq!(std::fs::read_to_string(outside.join("keep.txt")).unwrap(), "not the job's");

        let second = work.join("e-2").join("Test.Unit.1.run");
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

        let third = work.join("e-2").join("Test.Lint.1.run");
        folders.make(&third).unwrap();
        assert!(names(&third).is_empty(), "a new folder when none is free");
        folders.give_back(&second);
        assert!(third.is_dir(), "an execution's folder stays while a step works in it");
        folders.give_back(&third);
        assert!(!work.join("e-2").exists());
    }

    #[test]
    fn a_skeleton_folder_whose_mode_a_job_changed_is_removed_not_kept() {
        let home = tempfile::tempdir().unwrap();
        let work = home.path().join("work");
        let folders = WorkFolders::new(&work);
        let first = work.join("e-1").join("Build.Make.1.run");
        folders.make(&first).unwrap();
        std::fs::create_dir_all(first.join("run/src")).unwrap();
        let made = std::fs::metadata(&first).unwrap().permissions().mode();
        let changed = std::fs::Permissions::from_mode(made ^ 0o020);
        std::fs::set_permissions(first.join("run/src"), changed).unwrap();
        folders.give_back(&first);
        let second = work.join("e-2").join("Build.Make.1.run");
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
