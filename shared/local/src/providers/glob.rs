//! File selection for output artifacts: the path patterns of a buildspec's `artifacts` and of
//! the `Commands` action's `files`, matched the way CodeBuild documents them.
//!
//! `*` and `?` match within one path segment, `[abc]`/`[!a-z]` match one character, and a
//! `**` segment matches any number of segments, so `**/*` is every file and `dir/*` the files
//! directly in `dir`. A pattern that names a folder selects everything below it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// How to turn selected files into zip entries.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selection {
    /// Patterns relative to the base directory.
    pub(crate) files: Vec<String>,
    /// A folder (itself possibly a pattern) under the root that paths are relative to.
    pub(crate) base_directory: Option<String>,
    /// Keep only file names, dropping their folders.
    pub(crate) discard_paths: bool,
}

/// The files `selection` picks under `root`, as `(file, name in the zip)` pairs.
///
/// Fails with one sentence when a pattern is absolute or climbs out with `..`, or when
/// the base directory matches no folder; returns an empty list when no file matches.
pub(crate) fn select(root: &Path, selection: &Selection) -> Result<Vec<(PathBuf, String)>, String> {
    let patterns: Vec<Vec<String>> =
        selection.files.iter().map(|p| segments(p)).collect::<Result<_, _>>()?;
    let bases = base_directories(root, selection.base_directory.as_deref())?;
    let mut picked: Vec<(PathBuf, String)> = Vec::new();
    let mut names = std::collections::HashSet::new();
    for base in bases {
        let dir = root.join(&base);
        let mut files = Vec::new();
        list(&dir, "", &mut files)
            .map_err(|e| format!("Could not list {}: {e}.", dir.display()))?;
        for rel in files {
            if !patterns.iter().any(|p| matches_file_or_parent(p, &rel)) {
                continue;
            }
            let name = if selection.discard_paths {
                rel.rsplit('/').next().unwrap_or(&rel).to_string()
            } else {
                rel.clone()
            };
            // Two files under one name (discard-paths, several base folders): the first wins,
            // as a zip with duplicate names unpacks differently with every tool.
            if names.insert(name.clone()) {
                picked.push((dir.join(&rel), name));
            }
        }
    }
    Ok(picked)
}

/// The base folders, relative to `root`: `root` itself when none is given.
fn base_directories(root: &Path, base: Option<&str>) -> Result<Vec<String>, String> {
    let Some(base) = base.map(str::trim).filter(|b| !b.is_empty() && *b != ".") else {
        return Ok(vec![String::new()]);
    };
    let pattern = segments(base)?;
    let mut dirs = Vec::new();
    list_dirs(root, "", &mut dirs)
        .map_err(|e| format!("Could not list {}: {e}.", root.display()))?;
    let found: Vec<String> = dirs.into_iter().filter(|d| matches(&pattern, d)).collect();
    if found.is_empty() {
        return Err(format!("no matching base directory path found for {base}"));
    }
    Ok(found)
}

/// A pattern's segments, without `.` or empty ones; refuses patterns that leave the root.
fn segments(pattern: &str) -> Result<Vec<String>, String> {
    let p = pattern.trim();
    if p.starts_with('/') {
        return Err(format!("The path pattern \"{p}\" must be relative."));
    }
    let parts: Vec<String> =
        p.split('/').filter(|s| !s.is_empty() && *s != ".").map(str::to_string).collect();
    if parts.iter().any(|s| s == "..") {
        return Err(format!("The path pattern \"{p}\" must not climb out with \"..\"."));
    }
    Ok(parts)
}

/// Whether `pattern` matches the file `rel` or one of its folders.
fn matches_file_or_parent(pattern: &[String], rel: &str) -> bool {
    if matches(pattern, rel) {
        return true;
    }
    rel.match_indices('/').any(|(i, _)| matches(pattern, &rel[..i]))
}

/// Whether the `/`-separated `path` matches the pattern segments.
pub(crate) fn matches(pattern: &[String], path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // reachable[i][j]: pattern[i..] can match parts[j..]; filled from the end so `**` costs
    // no backtracking.
    let (np, ns) = (pattern.len(), parts.len());
    let mut reachable = vec![vec![false; ns + 1]; np + 1];
    reachable[np][ns] = true;
    for i in (0..np).rev() {
        for j in (0..=ns).rev() {
            reachable[i][j] = if pattern[i] == "**" {
                reachable[i + 1][j] || (j < ns && reachable[i][j + 1])
            } else {
                j < ns && segment_matches(&pattern[i], parts[j]) && reachable[i + 1][j + 1]
            };
        }
    }
    reachable[0][0]
}

/// Whether one path segment matches one pattern segment (`*`, `?`, `[...]`).
fn segment_matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
            continue;
        }
        if pi < p.len()
            && let Some((true, next)) = single_char(&p, pi, t[ti])
        {
            pi = next;
            ti += 1;
            continue;
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Whether the pattern item at `p[at]` (a literal, `?` or a class) matches `c`, and where the
/// next item starts; `None` when `p[at]` is `*`.
fn single_char(p: &[char], at: usize, c: char) -> Option<(bool, usize)> {
    match p[at] {
        '*' => None,
        '?' => Some((true, at + 1)),
        '[' => Some(class(p, at, c).unwrap_or((c == '[', at + 1))),
        lit => Some((lit == c, at + 1)),
    }
}

/// Matches a `[...]` class at `p[at]`; `None` when the bracket is never closed (then it is a
/// literal `[`).
fn class(p: &[char], at: usize, c: char) -> Option<(bool, usize)> {
    let mut i = at + 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            hit |= p[i] <= c && c <= p[i + 2];
            i += 3;
        } else {
            hit |= p[i] == c;
            i += 1;
        }
        first = false;
    }
    None
}

/// Every file under `dir`, as `/`-separated paths relative to it (links to files count as
/// files; links to folders are not followed, so cycles cannot trap the walk).
fn list(dir: &Path, prefix: &str, out: &mut Vec<String>) -> io::Result<()> {
    for (name, path, is_dir) in children(dir)? {
        let rel = join(prefix, &name);
        if is_dir {
            list(&path, &rel, out)?;
        } else if path.is_file() {
            out.push(rel);
        }
    }
    Ok(())
}

/// Every folder under `dir`, relative to it.
fn list_dirs(dir: &Path, prefix: &str, out: &mut Vec<String>) -> io::Result<()> {
    for (name, path, is_dir) in children(dir)? {
        if is_dir {
            let rel = join(prefix, &name);
            out.push(rel.clone());
            list_dirs(&path, &rel, out)?;
        }
    }
    Ok(())
}

/// The entries of `dir`, sorted by name, with whether each is a real (not linked) folder.
fn children(dir: &Path) -> io::Result<Vec<(String, PathBuf, bool)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let is_dir = entry.file_type()?.is_dir();
        out.push((entry.file_name().to_string_lossy().into_owned(), entry.path(), is_dir));
    }
    out.sort();
    Ok(out)
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        matches(&segments(pattern).unwrap_or_default(), path)
    }

    #[test]
    fn patterns() {
        assert!(m("**/*", "a"));
        assert!(m("**/*", "a/b/c.txt"));
        assert!(m("dir/*", "dir/x"));
        assert!(!m("dir/*", "dir/x/y"));
        assert!(m("dir/**/*", "dir/x/y"));
        assert!(m("*.jar", "app.jar"));
        assert!(!m("*.jar", "lib/app.jar"));
        assert!(m("**/*.jar", "lib/app.jar"));
        assert!(m("./out/a?.txt", "out/ab.txt"));
        assert!(m("f[0-9].txt", "f7.txt"));
        assert!(!m("f[!0-9].txt", "f7.txt"));
        assert!(m("my-build*", "my-build2"));
        assert!(m("a/**", "a/b/c"));
    }

    #[test]
    fn refuses_escaping_patterns() {
        assert!(segments("../x").is_err());
        assert!(segments("/etc/passwd").is_err());
    }
}
