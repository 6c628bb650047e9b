//! Job workers' artifacts on one machine: each grant is a private folder holding copies of the
//! attempt's inputs and the outputs the worker puts, served by `baton serve` under S3's
//! protocol to whoever signs with the grant's own credentials.
//!
//! ```text
//! <home>/jobs/<grant>/grant.json      credentials, expiry, and which objects it may read or write
//! <home>/jobs/<grant>/in/<name>.zip   the inputs, decrypted for the worker
//! <home>/jobs/<grant>/out/<name>.zip  what the worker put
//! <home>/jobs/keys/<access key id>    the grant an access key belongs to
//! ```

use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use baton_core::engine::Millis;
use serde::{Deserialize, Serialize};

use baton_app::ports::BoxError;
use baton_app::ports::job_artifacts::{
    ArtifactGrant, GrantError, GrantedObjects, JobArtifacts, S3Place, SessionCredentials,
};
use baton_app::ports::provider::{Job, LocalArtifact};

/// The bucket every local grant's objects appear in.
pub const BUCKET: &str = "baton-artifacts";

/// Grants in a folder of the Baton home.
pub struct LocalJobArtifacts {
    root: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct GrantRecord {
    credentials: SessionCredentials,
    until: Millis,
    /// Object key -> file name under the grant's folder.
    reads: BTreeMap<String, String>,
    writes: BTreeMap<String, String>,
    grant: ArtifactGrant,
}

impl LocalJobArtifacts {
    /// Grants kept under `home/jobs`.
    pub fn new(home: &Path) -> Self {
        Self { root: home.join("jobs") }
    }

    fn dir(&self, grant_id: &str) -> Result<PathBuf, BoxError> {
        // Grant ids are ours (job ids), but a path is built from them: refuse anything else.
        if grant_id.is_empty() || !grant_id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(format!("not a grant id: {grant_id:?}").into());
        }
        Ok(self.root.join(grant_id))
    }

    fn record(&self, grant_id: &str) -> Option<GrantRecord> {
        let text = std::fs::read_to_string(self.dir(grant_id).ok()?.join("grant.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn by_key(&self, access_key_id: &str) -> Option<(String, GrantRecord)> {
        if !access_key_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return None;
        }
        let grant_id = std::fs::read_to_string(self.root.join("keys").join(access_key_id)).ok()?;
        let record = self.record(grant_id.trim())?;
        (record.credentials.access_key_id == access_key_id)
            .then(|| (grant_id.trim().to_owned(), record))
    }
}

fn private_dir(path: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path)
}

/// `n` random bytes as upper-case hex, or as lower-case when `lower`.
fn random_hex(n: usize, lower: bool) -> Result<String, BoxError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    let h = hex::encode(bytes);
    Ok(if lower { h } else { h.to_ascii_uppercase() })
}

#[async_trait]
impl JobArtifacts for LocalJobArtifacts {
    async fn grant(
        &self,
        grant_id: &str,
        job: &Job,
        until: Millis,
    ) -> Result<ArtifactGrant, BoxError> {
        if let Some(existing) = self.record(grant_id) {
            return Ok(existing.grant);
        }
        let dir = self.dir(grant_id)?;
        private_dir(&dir.join("in"))?;
        private_dir(&dir.join("out"))?;
        private_dir(&self.root.join("keys"))?;
        let mut reads = BTreeMap::new();
        let mut inputs = Vec::new();
        for input in &job.inputs {
            let file = format!("in/{}.zip", input.name);
            input.copy_to(&dir.join(&file))?;
            let key = format!("{grant_id}/{file}");
            reads.insert(key.clone(), file);
            inputs.push((
                input.name.clone(),
                S3Place { bucket_name: BUCKET.into(), object_key: key },
            ));
        }
        let mut writes = BTreeMap::new();
        let mut outputs = Vec::new();
        for name in &job.request.output_artifacts {
            let file = format!("out/{name}.zip");
            let key = format!("{grant_id}/{file}");
            writes.insert(key.clone(), file);
            outputs.push((name.clone(), S3Place { bucket_name: BUCKET.into(), object_key: key }));
        }
        let credentials = SessionCredentials {
            access_key_id: format!("ASIA{}", random_hex(8, false)?),
            secret_access_key: random_hex(20, true)?,
            session_token: random_hex(32, true)?,
        };
        let grant = ArtifactGrant {
            inputs,
            outputs,
            credentials: credentials.clone(),
            encryption_key: None,
        };
        let record = GrantRecord { credentials, until, reads, writes, grant: grant.clone() };
        std::fs::write(dir.join("grant.json"), serde_json::to_vec(&record)?)?;
        std::fs::write(self.root.join("keys").join(&record.credentials.access_key_id), grant_id)?;
        Ok(grant)
    }

    async fn collect(&self, grant_id: &str, job: &Job) -> Result<Vec<LocalArtifact>, BoxError> {
        let record = self
            .record(grant_id)
            .ok_or_else(|| format!("the artifacts granted to job {grant_id} are gone"))?;
        let dir = self.dir(grant_id)?;
        let mut outputs = Vec::new();
        for (name, place) in &record.grant.outputs {
            let from = dir.join(format!("out/{name}.zip"));
            if !from.exists() {
                return Err(format!(
                    "the job worker did not put the output artifact {name} (s3://{}/{})",
                    place.bucket_name, place.object_key
                )
                .into());
            }
            let path = job.work_dir.join(format!("{name}.zip"));
            std::fs::copy(&from, &path)?;
            outputs.push(LocalArtifact::file(name.clone(), path));
        }
        Ok(outputs)
    }

    async fn revoke(&self, grant_id: &str) -> Result<(), BoxError> {
        if let Some(record) = self.record(grant_id) {
            let _ = std::fs::remove_file(
                self.root.join("keys").join(&record.credentials.access_key_id),
            );
        }
        match std::fs::remove_dir_all(self.dir(grant_id)?) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}

impl GrantedObjects for LocalJobArtifacts {
    fn credentials(&self, access_key_id: &str, now: Millis) -> Option<SessionCredentials> {
        let (_, record) = self.by_key(access_key_id)?;
        (now < record.until).then_some(record.credentials)
    }

    fn readable(
        &self,
        access_key_id: &str,
        bucket: &str,
        key: &str,
    ) -> Result<PathBuf, GrantError> {
        let (grant_id, record) = self.by_key(access_key_id).ok_or(GrantError::UnknownKey)?;
        let file = match (bucket == BUCKET, record.reads.get(key), record.writes.get(key)) {
            (true, Some(file), _) | (true, None, Some(file)) => file,
            _ => return Err(GrantError::Denied),
        };
        let path = self.root.join(grant_id).join(file);
        if path.exists() { Ok(path) } else { Err(GrantError::NoSuchKey) }
    }

    fn write(
        &self,
        access_key_id: &str,
        bucket: &str,
        key: &str,
        body: &[u8],
    ) -> Result<(), GrantError> {
        let (grant_id, record) = self.by_key(access_key_id).ok_or(GrantError::UnknownKey)?;
        let Some(file) = record.writes.get(key).filter(|_| bucket == BUCKET) else {
            return Err(GrantError::Denied);
        };
        let path = self.root.join(grant_id).join(file);
        // Whole or not at all: a reader never sees half an output.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, body)
            .and_then(|()| std::fs::rename(&partial, &path))
            .map_err(|e| GrantError::Unavailable(e.into()))
    }
}
