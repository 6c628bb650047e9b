//! Zip and unzip for artifacts, which are zip files as in CodePipeline.
//!
//! Extraction is the dangerous half: an artifact may come from any build, so [`extract`] checks
//! every entry before writing anything and refuses names that would land outside the target
//! (absolute paths, `..`, drive prefixes), symbolic links (which could point anywhere and be
//! written through later), and archives past a size or entry count (zip bombs). Entries are
//! streamed to disk, never held whole in memory. All functions block; call them from
//! `spawn_blocking`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use crate::ports::provider::LocalArtifact;

/// CodePipeline's quota on files in one artifact.
pub const MAX_ENTRIES: usize = 100_000;

/// Twice CodePipeline's largest artifact (a 5 GB S3 source): room for real archives to expand,
/// while a zip bomb still stops long before it fills the disk.
pub const MAX_EXTRACTED_BYTES: u64 = 10 * 1024 * 1024 * 1024;

/// How much one extraction may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Most entries (files and folders) an archive may hold.
    pub max_entries: usize,
    /// Most bytes all files together may expand to.
    pub max_bytes: u64,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        Self { max_entries: MAX_ENTRIES, max_bytes: MAX_EXTRACTED_BYTES }
    }
}

/// Why zipping or unzipping failed.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// An entry would be written outside the target, or is a link.
    #[error("the archive entry \"{entry}\" is refused because {reason}")]
    Unsafe {
        /// The entry's name as stored in the archive.
        entry: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The archive holds more entries than [`ExtractLimits::max_entries`].
    #[error("the archive holds {count} entries, more than the {limit} allowed")]
    TooManyEntries {
        #[allow(missing_docs)]
        count: usize,
        #[allow(missing_docs)]
        limit: usize,
    },
    /// The archive expands past [`ExtractLimits::max_bytes`].
    #[error("the archive expands to more than the {limit} bytes allowed")]
    TooLarge {
        #[allow(missing_docs)]
        limit: u64,
    },
    /// The file is not a readable zip archive.
    #[error("the file is not a valid zip archive: {0}")]
    Zip(#[from] zip::result::ZipError),
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Zips every file and folder under `dir` into `dest`, with paths relative to `dir`.
///
/// Links to files are stored as the file's content (what `zip` does by default); links to
/// folders are skipped, so a link cycle cannot make the walk endless.
pub fn zip_dir(dir: &Path, dest: &Path) -> Result<(), ArchiveError> {
    let mut entries = Vec::new();
    walk(dir, Path::new(""), &mut entries)?;
    let skip = fs::canonicalize(dest).ok();
    entries.retain(|e| match (&skip, &e.source) {
        (Some(skip), Some(src)) => fs::canonicalize(src).ok().as_ref() != Some(skip),
        _ => true,
    });
    write_zip(&entries, dest)
}

/// Zips `files`, given relative to `base`, into `dest` under those relative paths.
pub fn zip_files(base: &Path, files: &[PathBuf], dest: &Path) -> Result<(), ArchiveError> {
    let named: Vec<(PathBuf, String)> = files.iter().map(|f| (base.join(f), zip_name(f))).collect();
    zip_entries(&named, dest)
}

/// Zips each `(file, name)` pair into `dest`, storing the file under `name`.
pub fn zip_entries(entries: &[(PathBuf, String)], dest: &Path) -> Result<(), ArchiveError> {
    let entries: Vec<Entry> = entries
        .iter()
        .map(|(source, name)| Entry { source: Some(source.clone()), name: name.clone() })
        .collect();
    write_zip(&entries, dest)
}

/// Extracts the zip at `archive` into `target` with the default [`ExtractLimits`].
pub fn extract(archive: &Path, target: &Path) -> Result<(), ArchiveError> {
    extract_with_limits(archive, target, ExtractLimits::default())
}

/// Extracts the zip at `archive` into `target`, refusing the whole archive (nothing written)
/// if any entry is unsafe or the archive is past `limits` by its own account, and stopping
/// once the bytes actually written pass `limits.max_bytes` (sizes in a zip can lie).
pub fn extract_with_limits(
    archive: &Path,
    target: &Path,
    limits: ExtractLimits,
) -> Result<(), ArchiveError> {
    extract_from(BufReader::new(File::open(archive)?), target, limits)
}

/// [`extract`] of an artifact's archive, from its file or from the bytes held.
pub fn extract_artifact(artifact: &LocalArtifact, target: &Path) -> Result<(), ArchiveError> {
    extract_from(artifact.open()?, target, ExtractLimits::default())
}

/// [`extract_with_limits`] from an archive read by `reader`.
fn extract_from<R: Read + io::Seek>(
    reader: R,
    target: &Path,
    limits: ExtractLimits,
) -> Result<(), ArchiveError> {
    let mut zip = ZipArchive::new(reader)?;
    let plan = plan_extraction(&mut zip, limits)?;
    fs::create_dir_all(target)?;
    let mut budget = limits.max_bytes;
    for (index, item) in plan.iter().enumerate() {
        let dest = target.join(&item.path);
        refuse_links_on_path(target, &item.path, &item.name)?;
        if item.is_dir {
            fs::create_dir_all(&dest)?;
            continue;
        }
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent)?;
        }
        let mut entry = zip.by_index(index)?;
        budget = write_entry(&mut entry, &dest, item.mode, budget, limits.max_bytes)?;
    }
    Ok(())
}

/// One entry to write into a zip: a file (or, with no source, nothing) and its name.
struct Entry {
    /// `None` for a folder entry.
    source: Option<PathBuf>,
    name: String,
}

/// One checked entry of an archive being extracted.
struct Planned {
    name: String,
    path: PathBuf,
    is_dir: bool,
    mode: u32,
}

/// Checks every entry of `zip` before anything is written, so a refused archive leaves no trace.
fn plan_extraction<R: Read + io::Seek>(
    zip: &mut ZipArchive<R>,
    limits: ExtractLimits,
) -> Result<Vec<Planned>, ArchiveError> {
    if zip.len() > limits.max_entries {
        return Err(ArchiveError::TooManyEntries { count: zip.len(), limit: limits.max_entries });
    }
    let mut declared: u64 = 0;
    let mut plan = Vec::with_capacity(zip.len());
    for index in 0..zip.len() {
        let entry = zip.by_index_raw(index)?;
        let name = entry.name().to_string();
        if entry.is_symlink() {
            return Err(ArchiveError::Unsafe { entry: name, reason: "it is a symbolic link" });
        }
        let path = safe_relative_path(&name)?;
        declared = declared.saturating_add(entry.size());
        if declared > limits.max_bytes {
            return Err(ArchiveError::TooLarge { limit: limits.max_bytes });
        }
        let is_dir = entry.is_dir();
        plan.push(Planned { name, path, is_dir, mode: entry.unix_mode().unwrap_or(0) });
    }
    Ok(plan)
}

/// The relative path an entry name stands for, or why it would escape the target.
///
/// Both `/` and `\` count as separators: archives made on Windows use the latter, and a
/// `..\evil` entry must not slip through as one odd file name.
fn safe_relative_path(name: &str) -> Result<PathBuf, ArchiveError> {
    let refuse = |reason| Err(ArchiveError::Unsafe { entry: name.to_string(), reason });
    if name.contains('\0') {
        return refuse("its name holds a NUL byte");
    }
    if name.starts_with('/') || name.starts_with('\\') {
        return refuse("it has an absolute path");
    }
    let mut path = PathBuf::new();
    for (i, part) in name.split(['/', '\\']).enumerate() {
        match part {
            "" | "." => {}
            ".." => return refuse("its path climbs out of the target with \"..\""),
            _ if i == 0 && is_drive_prefix(part) => return refuse("its path starts with a drive"),
            _ => path.push(part),
        }
    }
    if path.as_os_str().is_empty() {
        return refuse("its name is empty");
    }
    Ok(path)
}

/// `C:` and the like: harmless on Unix, an absolute path on Windows.
fn is_drive_prefix(part: &str) -> bool {
    let b = part.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

/// Refuses to write through a link already inside `target` (a deploy folder may hold files
/// from earlier runs), since the write would land wherever the link points.
fn refuse_links_on_path(target: &Path, relative: &Path, name: &str) -> Result<(), ArchiveError> {
    let mut at = target.to_path_buf();
    for part in relative.components() {
        if let Component::Normal(p) = part {
            at.push(p);
        }
        match fs::symlink_metadata(&at) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(ArchiveError::Unsafe {
                    entry: name.to_string(),
                    reason: "a symbolic link already sits on its path in the target",
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Streams one entry to `dest`, returning the byte budget left.
fn write_entry(
    entry: &mut impl Read,
    dest: &Path,
    mode: u32,
    budget: u64,
    limit: u64,
) -> Result<u64, ArchiveError> {
    // Executables stay executable (build scripts in a source zip); nothing else of the stored
    // mode is kept, so an archive cannot create set-uid or world-writable files.
    let perm = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
    let file = OpenOptions::new().write(true).create(true).truncate(true).mode(perm).open(dest)?;
    let mut out = BufWriter::new(file);
    let written = io::copy(&mut entry.take(budget.saturating_add(1)), &mut out)?;
    if written > budget {
        drop(out);
        let _ = fs::remove_file(dest);
        return Err(ArchiveError::TooLarge { limit });
    }
    out.flush()?;
    Ok(budget - written)
}

/// Collects files and folders under `root/relative`, sorted so archives are reproducible.
fn walk(root: &Path, relative: &Path, out: &mut Vec<Entry>) -> io::Result<()> {
    let mut children: Vec<_> = fs::read_dir(root.join(relative))?.collect::<Result<_, _>>()?;
    children.sort_by_key(|c| c.file_name());
    for child in children {
        let rel = relative.join(child.file_name());
        let path = child.path();
        let kind = child.file_type()?;
        if kind.is_dir() {
            out.push(Entry { source: None, name: format!("{}/", zip_name(&rel)) });
            walk(root, &rel, out)?;
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            out.push(Entry { source: Some(path), name: zip_name(&rel) });
        }
    }
    Ok(())
}

/// A relative path as a zip entry name (always `/`-separated).
fn zip_name(path: &Path) -> String {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_string_lossy()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Writes `entries` to a new zip at `dest`, streaming each file.
fn write_zip(entries: &[Entry], dest: &Path) -> Result<(), ArchiveError> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut zip = ZipWriter::new(BufWriter::new(File::create(dest)?));
    let base = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
    for entry in entries {
        match &entry.source {
            None => zip.add_directory(entry.name.as_str(), base.unix_permissions(0o755))?,
            Some(source) => {
                let mut file = File::open(source)?;
                let meta = file.metadata()?;
                let options = base
                    .unix_permissions(meta.permissions().mode() & 0o777)
                    .large_file(meta.len() >= u64::from(u32::MAX));
                zip.start_file(entry.name.as_str(), options)?;
                io::copy(&mut file, &mut zip)?;
            }
        }
    }
    zip.finish()?.flush()?;
    Ok(())
}
