//! The folder a build runs in, shared by the CodeBuild and `Commands` providers: input
//! artifacts unpacked where CodeBuild puts them (`src` for the primary source, `src2/<name>` for
//! the others), the `CODEBUILD_SRC_DIR*` variables pointing there, environment variable checks,
//! and output artifacts zipped from selected files.

use std::path::{Path, PathBuf};

use baton_app::ports::provider::{Job, LocalArtifact};

use super::glob::{self, Selection};
use super::{Failure, archive, blocking};

/// Where a build's sources and outputs live, under the job's fresh work folder.
pub(crate) struct Workspace {
    /// The primary source (`CODEBUILD_SRC_DIR`).
    pub(crate) src: PathBuf,
    /// The primary source's input artifact, if there is one.
    primary: Option<String>,
    /// Secondary sources by input artifact name (`CODEBUILD_SRC_DIR_<name>`).
    pub(crate) secondary: Vec<(String, PathBuf)>,
    /// Scripts and saved shell state, out of the build's sight.
    pub(crate) scratch: PathBuf,
    /// Output zips.
    out: PathBuf,
}

impl Workspace {
    /// Unpacks the inputs: `primary` (an input artifact name) or else the first input into
    /// `src`, every other input into `src2/<name>`.
    pub(crate) async fn prepare(job: &Job, primary: Option<&str>) -> Result<Self, Failure> {
        let primary_index = match primary {
            Some(name) => job.inputs.iter().position(|a| a.name == name).ok_or_else(|| {
                Failure::configuration(format!(
                    "PrimarySource names \"{name}\", which is not one of the action's input artifacts."
                ))
            })?,
            None if job.inputs.is_empty() => {
                return Err(Failure::configuration("The action needs at least one input artifact."));
            }
            None => 0,
        };
        let work = &job.work_dir;
        let mut ws = Workspace {
            src: work.join("src"),
            primary: job.inputs.get(primary_index).map(|a| a.name.clone()),
            secondary: Vec::new(),
            scratch: work.join(".baton"),
            out: work.join("out"),
        };
        for (i, input) in job.inputs.iter().enumerate() {
            let dir = if i == primary_index {
                ws.src.clone()
            } else {
                let dir = work.join("src2").join(safe_name(&input.name)?);
                ws.secondary.push((input.name.clone(), dir.clone()));
                dir
            };
            unpack(input, &dir).await?;
        }
        if job.inputs.is_empty() {
            tokio::fs::create_dir_all(&ws.src).await.map_err(|e| io_failure(&ws.src, e))?;
        }
        Ok(ws)
    }

    /// `CODEBUILD_SRC_DIR`, one `CODEBUILD_SRC_DIR_<name>` per secondary source, and
    /// `CODEBUILD_RESOLVED_SOURCE_VERSION`: the primary source's revision (its commit or object
    /// version) among `revisions`, as (artifact, revision).
    /// The primary source's input artifact name.
    pub(crate) fn primary(&self) -> Option<&str> {
        self.primary.as_deref()
    }

    pub(crate) fn source_env(&self, revisions: &[(String, String)]) -> Vec<(String, String)> {
        let mut env =
            vec![("CODEBUILD_SRC_DIR".to_string(), self.src.to_string_lossy().into_owned())];
        let revision = revisions.iter().find(|(name, _)| Some(name) == self.primary.as_ref());
        if let Some((_, revision)) = revision {
            env.push(("CODEBUILD_RESOLVED_SOURCE_VERSION".to_string(), revision.clone()));
        }
        for (name, dir) in &self.secondary {
            env.push((format!("CODEBUILD_SRC_DIR_{name}"), dir.to_string_lossy().into_owned()));
        }
        env
    }

    /// Zips the files `selection` picks under the primary source as the artifact `name`;
    /// fails, as CodeBuild does, when nothing matches.
    pub(crate) async fn package(
        &self,
        name: &str,
        selection: Selection,
    ) -> Result<LocalArtifact, Failure> {
        let root = self.src.clone();
        let dest = self.out.join(format!("{}.zip", safe_name(name)?));
        let zip = dest.clone();
        let artifact = name.to_string();
        blocking(move || {
            let files = glob::select(&root, &selection)
                .map_err(|e| Failure::job(format!("Output artifact {artifact}: {e}.")))?;
            if files.is_empty() {
                return Err(Failure::job(format!(
                    "CLIENT_ERROR: no matching artifact paths found for output artifact {artifact}"
                )));
            }
            archive::zip_entries(&files, &zip).map_err(|e| {
                Failure::job(format!("Output artifact {artifact} could not be zipped: {e}."))
            })
        })
        .await?;
        Ok(LocalArtifact::file(name.to_string(), dest))
    }
}

/// Refuses an environment variable type that needs AWS to resolve, in a sentence for `check`.
pub(crate) fn check_env_type(name: &str, kind: &str) -> Result<(), String> {
    match kind.trim() {
        "" | "PLAINTEXT" | "PARAMETER_STORE" | "SECRETS_MANAGER" => Ok(()),
        other => Err(format!(
            "environment variable {name} has type {other}; \
             the types are PLAINTEXT, PARAMETER_STORE and SECRETS_MANAGER"
        )),
    }
}

/// Refuses a variable the process environment cannot carry.
pub(crate) fn check_env_pair(name: &str, value: &str) -> Result<(), Failure> {
    if name.is_empty() || name.contains('=') || name.contains('\0') || value.contains('\0') {
        return Err(Failure::configuration(format!(
            "The environment variable \"{name}\" cannot be set: names must be non-empty \
             without '=', and neither may hold a NUL byte."
        )));
    }
    Ok(())
}

/// Refuses a variable name a shell cannot read (for exported and output variables).
pub(crate) fn check_identifier(name: &str) -> Result<(), Failure> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Failure::configuration(format!(
            "\"{name}\" is not a valid shell variable name to export."
        )))
    }
}

/// An artifact name as one safe path segment (artifact names are `[A-Za-z0-9_-]` in
/// CodePipeline; this guards the file system if one ever is not).
fn safe_name(name: &str) -> Result<&str, Failure> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(Failure::configuration(format!(
            "The artifact name \"{name}\" cannot be used as a folder name."
        )));
    }
    Ok(name)
}

/// Extracts one input artifact into `dir`.
async fn unpack(input: &LocalArtifact, dir: &Path) -> Result<(), Failure> {
    let (input, dir) = (input.clone(), dir.to_path_buf());
    let small = input.is_small();
    let work = move || {
        archive::extract_artifact(&input, &dir).map_err(|e| {
            Failure::job(format!("Input artifact {} could not be extracted: {e}.", input.name))
        })
    };
    if small { work() } else { blocking(work).await }
}

fn io_failure(path: &Path, e: std::io::Error) -> Failure {
    Failure::job(format!("Could not prepare {}: {e}.", path.display()))
}

/// Refuses, at start, a variable of `kind` this host cannot give a value: a secret with no
/// secret store to resolve it from.
pub(crate) fn check_env_source(name: &str, kind: &str, has_store: bool) -> Result<(), String> {
    check_env_type(name, kind)?;
    if !has_store && baton_app::ports::secrets::SecretKind::of_type(kind).is_some() {
        return Err(format!(
            "environment variable {name} has type {kind}, and this host has no secret store to resolve it from (baton secrets put)"
        ));
    }
    Ok(())
}

/// A build's environment with its secrets resolved: the pairs to set, and the secret values
/// to mask wherever the build's output is written.
#[derive(Debug, Default)]
pub(crate) struct ResolvedEnv {
    pub(crate) pairs: Vec<(String, String)>,
    pub(crate) masked: Vec<String>,
}

impl ResolvedEnv {
    /// Adds `name`, whose `value` is the value itself (`PLAINTEXT`) or, for `PARAMETER_STORE`
    /// and `SECRETS_MANAGER`, a reference resolved from `secrets`.
    pub(crate) async fn add(
        &mut self,
        secrets: Option<&std::sync::Arc<dyn baton_app::ports::secrets::Secrets>>,
        name: &str,
        value: &str,
        kind: &str,
    ) -> Result<(), Failure> {
        use baton_app::ports::secrets::{SecretError, SecretKind};
        check_env_type(name, kind).map_err(Failure::configuration)?;
        let Some(secret) = SecretKind::of_type(kind) else {
            self.pairs.push((name.to_owned(), value.to_owned()));
            return Ok(());
        };
        let Some(store) = secrets else {
            return Err(Failure::configuration(format!(
                "environment variable {name} has type {kind}, and this host has no secret store"
            )));
        };
        let resolved = store.resolve(secret, value).await.map_err(|e| match e {
            SecretError::NotFound(why) => {
                Failure::configuration(format!("environment variable {name}: {why}"))
            }
            SecretError::Unavailable(_) => Failure::job(format!(
                "environment variable {name}: the secret store cannot be read"
            )),
        })?;
        if !resolved.is_empty() {
            self.masked.push(resolved.clone());
        }
        self.pairs.push((name.to_owned(), resolved));
        Ok(())
    }
}

/// `text` with every secret value replaced by `***`, as CodeBuild masks them in its logs.
pub(crate) fn mask(text: &str, masked: &[String]) -> String {
    masked.iter().fold(text.to_owned(), |t, secret| t.replace(secret.as_str(), "***"))
}
