//! What CodeCommit does on AWS and moto does not: keep a repository's commits and answer for
//! its branches, commits, folders and blobs (`GetBranch`, `GetCommit`, `GetFolder`, `GetBlob`,
//! CodeCommit's JSON 1.1 protocol). The counting proxy answers the functions' CodeCommit
//! requests from here, once the harness has decided the caller may act on the repository, and
//! records them as it records the rest.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine;
use serde_json::{Value, json};

/// One commit: its message and its files (path without the leading `/` → content).
#[derive(Debug, Clone)]
pub struct Commit {
    #[allow(missing_docs)]
    pub message: String,
    #[allow(missing_docs)]
    pub files: BTreeMap<String, Vec<u8>>,
}

/// The stand-in's repositories, by name: branches (name → commit id) and commits by id.
#[derive(Debug, Clone, Default)]
pub struct Repositories {
    inner: Arc<Mutex<BTreeMap<String, Repository>>>,
}

#[derive(Debug, Default)]
struct Repository {
    branches: BTreeMap<String, String>,
    commits: BTreeMap<String, Commit>,
}

impl Repositories {
    /// Adds `commit` as `id` to `repository` (made if new) and points `branch` at it.
    pub fn commit(&self, repository: &str, branch: &str, id: &str, commit: Commit) {
        let mut all = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let repo = all.entry(repository.to_owned()).or_default();
        repo.commits.insert(id.to_owned(), commit);
        repo.branches.insert(branch.to_owned(), id.to_owned());
    }

    /// CodeCommit's answer to `operation` with the request `body`: status and JSON.
    pub fn answer(&self, operation: &str, body: &Value) -> (u16, Value) {
        let all = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let name = body["repositoryName"].as_str().unwrap_or_default();
        let Some(repo) = all.get(name) else {
            return refused("RepositoryDoesNotExistException", &format!("{name} does not exist"));
        };
        match operation {
            "GetBranch" => {
                let branch = body["branchName"].as_str().unwrap_or_default();
                match repo.branches.get(branch) {
                    Some(id) => (200, json!({"branch": {"branchName": branch, "commitId": id}})),
                    None => refused("BranchDoesNotExistException", branch),
                }
            }
            "GetCommit" => {
                match repo.commits.get_key_value(body["commitId"].as_str().unwrap_or_default()) {
                    Some((id, c)) => {
                        let person = json!({"name": "Dev", "email": "dev@example.com",
                        "date": "1764979200 +0000"});
                        (
                            200,
                            json!({"commit": {"commitId": id, "treeId": format!("tree-{id}"),
                        "parents": [], "message": c.message, "author": person,
                        "committer": person, "additionalData": ""}}),
                        )
                    }
                    None => refused("CommitIdDoesNotExistException", "no such commit"),
                }
            }
            "GetFolder" => {
                let specifier = body["commitSpecifier"].as_str().unwrap_or_default();
                let id = repo.branches.get(specifier).map_or(specifier, String::as_str);
                let Some((id, c)) = repo.commits.get_key_value(id) else {
                    return refused("CommitDoesNotExistException", specifier);
                };
                let folder = body["folderPath"].as_str().unwrap_or("/").trim_matches('/');
                (200, listing(id, folder, c))
            }
            "GetBlob" => {
                let blob = body["blobId"].as_str().unwrap_or_default();
                let found = repo.commits.iter().find_map(|(id, c)| {
                    c.files.iter().find(|(path, _)| blob_id(id, path) == blob).map(|(_, b)| b)
                });
                match found {
                    Some(bytes) => {
                        let content = base64::engine::general_purpose::STANDARD.encode(bytes);
                        (200, json!({"content": content}))
                    }
                    None => refused("BlobIdDoesNotExistException", blob),
                }
            }
            other => refused("InvalidActionException", &format!("{other} is not stood in for")),
        }
    }
}

/// `GetFolder`'s answer for `folder` ("" for the root) of commit `id`.
fn listing(id: &str, folder: &str, commit: &Commit) -> Value {
    let prefix = if folder.is_empty() { String::new() } else { format!("{folder}/") };
    let mut files = Vec::new();
    let mut folders = std::collections::BTreeSet::new();
    for path in commit.files.keys() {
        let Some(rest) = path.strip_prefix(&prefix) else { continue };
        match rest.split_once('/') {
            Some((sub, _)) => drop(folders.insert(sub.to_owned())),
            None => files
                .push(json!({"blobId": blob_id(id, path), "absolutePath": format!("/{path}"),
                "relativePath": rest, "fileMode": "NORMAL"})),
        }
    }
    let folders: Vec<Value> = folders
        .iter()
        .map(|f| {
            json!({"treeId": format!("tree-{f}"), "absolutePath": format!("/{prefix}{f}"),
            "relativePath": f})
        })
        .collect();
    json!({"commitId": id, "folderPath": format!("/{folder}"), "treeId": format!("tree-{id}"),
        "files": files, "subFolders": folders, "symbolicLinks": [], "subModules": []})
}

fn blob_id(commit: &str, path: &str) -> String {
    format!("blob-{commit}-{}", path.replace('/', "-"))
}

fn refused(code: &str, message: &str) -> (u16, Value) {
    (400, json!({"__type": code, "message": message}))
}
