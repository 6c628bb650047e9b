//! `AWS/Source/S3` and `AWS/Deploy/S3` on a folder standing in for S3: bucket `B`'s object
//! `K` is the file `s3_root/B/K`. Bucket names and keys are checked so no configuration can
//! reach outside `s3_root`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use baton_core::plan::ActionPlan;
use sha2::{Digest, Sha256};

use baton_app::ports::provider::{ActionProvider, Job, JobResult, LocalArtifact, ProviderError};

use super::{Failure, archive, blocking, has_reference, required};

/// Reads a zip object from the local S3 folder as a source.
#[derive(Debug, Clone, Default)]
pub struct S3SourceProvider {
    s3_root: PathBuf,
}

/// Writes an artifact into the local S3 folder, extracted or as one object.
#[derive(Debug, Clone, Default)]
pub struct S3DeployProvider {
    s3_root: PathBuf,
}

impl S3SourceProvider {
    /// Objects are read from `s3_root/<bucket>/<key>`.
    pub fn new(s3_root: PathBuf) -> Self {
        Self { s3_root }
    }

    async fn fetch(&self, job: &Job) -> Result<JobResult, Failure> {
        let config = &job.request.configuration;
        let bucket = required(config, "S3Bucket")?;
        let pinned = job.request.source_revision.as_ref();
        let key = match pinned.filter(|r| r.revision_type == "S3_OBJECT_KEY") {
            Some(r) => r.value.as_str(),
            None => required(config, "S3ObjectKey")?,
        };
        check_bucket(bucket).map_err(Failure::configuration)?;
        check_key(key, "S3ObjectKey").map_err(Failure::configuration)?;
        let bucket_dir = self.s3_root.join(bucket);
        if !bucket_dir.is_dir() {
            return Err(Failure::configuration(format!(
                "The bucket {bucket} does not exist: there is no folder {}.",
                bucket_dir.display()
            )));
        }
        let object = bucket_dir.join(key);
        if !object.is_file() {
            return Err(Failure::configuration(format!(
                "The object {key} does not exist in the bucket {bucket}: there is no file {}.",
                object.display()
            )));
        }
        let dest = job.work_dir.join("source.zip");
        let (from, to, uri) = (object.clone(), dest.clone(), format!("s3://{bucket}/{key}"));
        let (etag, version) = blocking(move || copy_source(&from, &to, &uri)).await?;
        // A folder keeps one version of each object: a start may only name the one it has.
        if let Some(wanted) = pinned.filter(|r| r.revision_type == "S3_OBJECT_VERSION_ID")
            && wanted.value != version
        {
            return Err(Failure::configuration(format!(
                "The object {key} in the bucket {bucket} is at version {version}, not {}: the local S3 folder keeps only the latest version.",
                wanted.value
            )));
        }
        let output_artifacts = match job.request.output_artifacts.first() {
            Some(name) => vec![LocalArtifact::file(name.clone(), dest)],
            None => Vec::new(),
        };
        Ok(JobResult::Succeeded {
            output_artifacts,
            output_variables: BTreeMap::from([
                ("ETag".to_string(), etag),
                ("VersionId".to_string(), version.clone()),
            ]),
            summary: None,
            external_id: Some(version),
            external_url: None,
        })
    }
}

#[async_trait]
impl ActionProvider for S3SourceProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        let config = &action.configuration;
        check_literal(config.get("S3Bucket"), check_bucket)?;
        check_literal(config.get("S3ObjectKey"), |k| check_key(k, "S3ObjectKey"))
    }

    /// The object's version as the run reports it: its modification time.
    async fn latest_revision(
        &self,
        action: &ActionPlan,
    ) -> Option<baton_core::engine::SourceRevision> {
        let (bucket, key) =
            (action.configuration.get("S3Bucket")?, action.configuration.get("S3ObjectKey")?);
        check_bucket(bucket).ok()?;
        check_key(key, "S3ObjectKey").ok()?;
        let modified =
            tokio::fs::metadata(self.s3_root.join(bucket).join(key)).await.ok()?.modified().ok()?;
        let version = modified.duration_since(UNIX_EPOCH).ok()?.as_nanos().to_string();
        Some(baton_core::engine::SourceRevision {
            revision_type: "S3_OBJECT_VERSION_ID".into(),
            value: version,
            branch: None,
        })
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        Ok(self.fetch(job).await.unwrap_or_else(JobResult::from))
    }
}

impl S3DeployProvider {
    /// Artifacts are written below `s3_root/<BucketName>/`; a missing bucket folder is created,
    /// since on one machine there is no separate step to create buckets.
    pub fn new(s3_root: PathBuf) -> Self {
        Self { s3_root }
    }

    async fn deploy(&self, job: &Job) -> Result<JobResult, Failure> {
        let config = &job.request.configuration;
        let bucket = required(config, "BucketName")?;
        check_bucket(bucket).map_err(Failure::configuration)?;
        let extract =
            parse_extract(required(config, "Extract")?).map_err(Failure::configuration)?;
        let key = config.get("ObjectKey").map(|k| k.trim()).filter(|k| !k.is_empty());
        let input = job.inputs.first().ok_or_else(|| {
            Failure::configuration("The S3 deploy action needs one input artifact.")
        })?;
        let zip = input.clone();
        let bucket_dir = self.s3_root.join(bucket);
        let (target, uri) = match (extract, key) {
            (true, None) => (bucket_dir, format!("s3://{bucket}/")),
            (true, Some(prefix)) => {
                check_key(prefix, "ObjectKey").map_err(Failure::configuration)?;
                (bucket_dir.join(prefix), format!("s3://{bucket}/{prefix}"))
            }
            (false, None) => {
                return Err(Failure::configuration("ObjectKey is required when Extract is false."));
            }
            (false, Some(key)) => {
                check_object_key(key).map_err(Failure::configuration)?;
                (bucket_dir.join(key), format!("s3://{bucket}/{key}"))
            }
        };
        let to = target.clone();
        blocking(move || if extract { extract_to(&zip, &to) } else { copy_to(&zip, &to) }).await?;
        Ok(JobResult::Succeeded {
            output_artifacts: Vec::new(),
            output_variables: BTreeMap::new(),
            summary: Some(format!("Deployed {} to {uri}", input.name)),
            external_id: None,
            external_url: Some(format!("file://{}", target.display())),
        })
    }
}

#[async_trait]
impl ActionProvider for S3DeployProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        let config = &action.configuration;
        check_literal(config.get("BucketName"), check_bucket)?;
        check_literal(config.get("Extract"), |v| parse_extract(v).map(|_| ()))?;
        check_literal(config.get("ObjectKey"), |k| check_key(k, "ObjectKey"))
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        Ok(self.deploy(job).await.unwrap_or_else(JobResult::from))
    }
}

/// Applies `check` to a configuration value unless it is absent or still holds a reference.
fn check_literal(
    value: Option<&String>,
    check: impl Fn(&str) -> Result<(), String>,
) -> Result<(), String> {
    match value {
        Some(v) if !has_reference(v) && !v.trim().is_empty() => check(v.trim()),
        _ => Ok(()),
    }
}

/// A bucket name is one folder under `s3_root`.
fn check_bucket(bucket: &str) -> Result<(), String> {
    if bucket.is_empty() || bucket == "." || bucket == ".." || bucket.contains(['/', '\\', '\0']) {
        return Err(format!(
            "The bucket name \"{bucket}\" must be one plain name, without '/', '\\' or '..'"
        ));
    }
    Ok(())
}

/// A key stays inside its bucket: relative, no `..` segment.
fn check_key(key: &str, field: &str) -> Result<(), String> {
    if key.starts_with('/') || key.starts_with('\\') || key.contains('\0') {
        return Err(format!("{field} \"{key}\" must be a relative key, not an absolute path"));
    }
    if key.split(['/', '\\']).any(|part| part == "..") {
        return Err(format!("{field} \"{key}\" must not climb out of its bucket with \"..\""));
    }
    Ok(())
}

/// The key of a single object: a relative key naming a file, not a folder.
fn check_object_key(key: &str) -> Result<(), String> {
    check_key(key, "ObjectKey")?;
    if key.ends_with('/') || key.split('/').all(|p| p.is_empty() || p == ".") {
        return Err(format!("ObjectKey \"{key}\" must name an object, not a folder"));
    }
    Ok(())
}

fn parse_extract(value: &str) -> Result<bool, String> {
    match value.trim() {
        v if v.eq_ignore_ascii_case("true") => Ok(true),
        v if v.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(format!("Extract must be \"true\" or \"false\", not \"{other}\"")),
    }
}

/// Copies a source object to `to`, checking it is a zip and hashing it in the same pass.
/// Returns the ETag and VersionId stand-ins.
fn copy_source(from: &Path, to: &Path, uri: &str) -> Result<(String, String), Failure> {
    let io_err = |e: io::Error| Failure::job(format!("Could not read {uri}: {e}."));
    zip::ZipArchive::new(BufReader::new(File::open(from).map_err(io_err)?))
        .map_err(|e| Failure::job(format!("The object {uri} is not a zip archive: {e}.")))?;
    let mut input = File::open(from).map_err(io_err)?;
    // VersionId: S3 gives each version an opaque id; the file's modification time in
    // nanoseconds changes whenever the object is replaced, which is what pipelines rely on.
    let modified = input.metadata().and_then(|m| m.modified()).map_err(io_err)?;
    let version = modified.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos()).to_string();
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent).map_err(io_err)?;
    }
    let mut output = File::create(to).map_err(io_err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = input.read(&mut buf).map_err(io_err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        output.write_all(&buf[..n]).map_err(io_err)?;
    }
    output.flush().map_err(io_err)?;
    // ETag: S3's is the object's MD5 in hex (32 characters). The crate has SHA-256 and no MD5,
    // so this is SHA-256 in hex cut to the same 32 characters: as stable and as unique in
    // practice, but not equal to what S3 would report for the same bytes.
    let mut etag = hex::encode(hasher.finalize());
    etag.truncate(32);
    Ok((etag, version))
}

/// Extracts the artifact `zip` into the folder `to`.
fn extract_to(zip: &LocalArtifact, to: &Path) -> Result<(), Failure> {
    archive::extract_artifact(zip, to).map_err(|e| {
        Failure::job(format!(
            "The artifact {} could not be extracted to {}: {e}.",
            zip.name,
            to.display()
        ))
    })
}

/// Copies the artifact `zip` to the object file `to`, replacing it in one step (a reader never
/// sees half an object).
fn copy_to(zip: &LocalArtifact, to: &Path) -> Result<(), Failure> {
    let fail = |e: io::Error| Failure::job(format!("Could not write {}: {e}.", to.display()));
    let parent =
        to.parent().ok_or_else(|| Failure::job(format!("{} has no folder.", to.display())))?;
    fs::create_dir_all(parent).map_err(fail)?;
    let file_name = to.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = parent.join(format!(".{file_name}.baton-partial"));
    zip.copy_to(&temp).map_err(fail)?;
    fs::rename(&temp, to).map_err(|e| {
        let _ = fs::remove_file(&temp);
        fail(e)
    })
}
