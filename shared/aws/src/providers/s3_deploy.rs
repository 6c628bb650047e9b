//! `AWS/Deploy/S3`: writes the input artifact into `BucketName`, in the action's account and
//! region.
//!
//! - `Extract` true: every file of the zip becomes an object under the `ObjectKey` prefix
//!   (the bucket's root without one), with a content type from its extension so a static site
//!   is served right. The zip is unpacked by [`archive::extract`](baton_app::providers::archive::extract),
//!   which refuses entries that escape the folder, links and zip bombs.
//! - `Extract` false: the zip itself becomes the object `ObjectKey`.
//!
//! `KMSEncryptionKeyARN` asks for SSE-KMS with that key (otherwise the bucket's default
//! encryption applies); `CannedACL` and `CacheControl` are set on every object. Objects are
//! uploaded a few at a time: a site of a thousand files is a thousand `PutObject` requests,
//! and running them one by one would spend most of the action waiting on round trips.
//! Objects already in the bucket and absent from the artifact are left alone, as CodePipeline
//! does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{ObjectCannedAcl, ServerSideEncryption};
use baton_core::plan::ActionPlan;
use tokio::task::JoinSet;

use super::credentials::RoleCredentials;
use super::{
    Failure, Stop, blocking, finish, has_reference, optional, required, sdk_config, sdk_stop,
    url_encode,
};
use crate::adapters::sdk;
use baton_app::ports::provider::{ActionProvider, Job, JobResult, LocalArtifact, ProviderError};
use baton_app::providers::archive;

/// Uploads in flight at once: enough to hide round trips, few enough to stay clear of S3's
/// per-prefix request rates and of a Lambda's connection and memory budget.
const CONCURRENT_UPLOADS: usize = 8;

/// Writes an artifact into an S3 bucket, extracted or as one object.
#[derive(Debug, Clone)]
pub struct S3DeployProvider {
    roles: Arc<dyn RoleCredentials>,
}

/// How every object is written.
#[derive(Debug, Clone)]
struct ObjectSettings {
    bucket: String,
    kms_key: Option<String>,
    acl: Option<ObjectCannedAcl>,
    cache_control: Option<String>,
}

impl S3DeployProvider {
    /// Writes with the action's role and region from `roles`.
    pub fn new(roles: Arc<dyn RoleCredentials>) -> Self {
        Self { roles }
    }

    async fn deploy(&self, job: &Job) -> Result<JobResult, Stop> {
        let config = &job.request.configuration;
        let bucket = required(config, "BucketName")?.to_owned();
        let extract =
            parse_extract(required(config, "Extract")?).map_err(Failure::configuration)?;
        let key = optional(config, "ObjectKey");
        let acl = optional(config, "CannedACL")
            .map(parse_acl)
            .transpose()
            .map_err(Failure::configuration)?;
        let settings = ObjectSettings {
            bucket: bucket.clone(),
            kms_key: optional(config, "KMSEncryptionKeyARN").map(str::to_owned),
            acl,
            cache_control: optional(config, "CacheControl").map(str::to_owned),
        };
        let input = job.inputs.first().ok_or_else(|| {
            Failure::configuration("The S3 deploy action needs one input artifact.")
        })?;
        let client = sdk::s3(&sdk_config(&self.roles, &job.request).await?);
        let (count, prefix) = if extract {
            let prefix = key.map(|k| format!("{}/", k.trim_matches('/'))).unwrap_or_default();
            let prefix = if prefix == "/" { String::new() } else { prefix };
            let dir = job.work_dir.join("extracted");
            let files = unpack(input.clone(), dir.clone()).await?;
            let objects = files
                .into_iter()
                .map(|(path, relative)| {
                    let key = format!("{prefix}{relative}");
                    (path, key, content_type(&relative))
                })
                .collect::<Vec<_>>();
            let count = objects.len();
            upload_all(&client, &settings, objects).await?;
            (count, prefix)
        } else {
            let key = key.ok_or_else(|| {
                Failure::configuration("ObjectKey is required when Extract is false.")
            })?;
            let zip = input.to_file().map_err(|e| {
                Failure::job(format!("Could not write the artifact {}: {e}.", input.name))
            })?;
            upload(&client, &settings, zip.to_path_buf(), key.to_owned(), "application/zip")
                .await?;
            (1, key.to_owned())
        };
        let region = &job.request.region;
        Ok(JobResult::Succeeded {
            output_artifacts: Vec::new(),
            output_variables: BTreeMap::new(),
            summary: Some(format!(
                "Deployed {} as {count} object(s) to s3://{bucket}/{prefix}",
                input.name
            )),
            external_id: None,
            external_url: Some(format!(
                "https://{region}.console.aws.amazon.com/s3/buckets/{bucket}?region={region}&prefix={}",
                url_encode(&prefix)
            )),
        })
    }
}

#[async_trait]
impl ActionProvider for S3DeployProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        let config = &action.configuration;
        let literal = |key: &str| {
            config.get(key).map(|v| v.trim()).filter(|v| !v.is_empty() && !has_reference(v))
        };
        if config.get("BucketName").is_none_or(|v| v.trim().is_empty()) {
            return Err("the action configuration needs BucketName".into());
        }
        if let Some(extract) = literal("Extract") {
            let extract = parse_extract(extract)?;
            if !extract && config.get("ObjectKey").is_none_or(|v| v.trim().is_empty()) {
                return Err("ObjectKey is required when Extract is false".into());
            }
        }
        if let Some(acl) = literal("CannedACL") {
            parse_acl(acl)?;
        }
        Ok(())
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        finish(self.deploy(job).await)
    }
}

fn parse_extract(value: &str) -> Result<bool, String> {
    match value.trim() {
        v if v.eq_ignore_ascii_case("true") => Ok(true),
        v if v.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(format!("Extract must be \"true\" or \"false\", not \"{other}\"")),
    }
}

fn parse_acl(value: &str) -> Result<ObjectCannedAcl, String> {
    let known = ObjectCannedAcl::values();
    if known.contains(&value) {
        Ok(ObjectCannedAcl::from(value))
    } else {
        Err(format!("CannedACL \"{value}\" is not one of {}", known.join(", ")))
    }
}

/// The content type S3 should serve a file with, from its extension; S3's own default
/// otherwise.
pub fn content_type(path: &str) -> &'static str {
    let extension = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match extension.as_deref() {
        Some("html" | "htm") => "text/html",
        Some("css") => "text/css",
        Some("js" | "mjs") => "application/javascript",
        Some("json" | "map") => "application/json",
        Some("txt") => "text/plain",
        Some("xml") => "application/xml",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("pdf") => "application/pdf",
        Some("zip") => "application/zip",
        Some("wasm") => "application/wasm",
        Some("woff") => "font/woff",
        Some("woff2") => "font/woff2",
        _ => "binary/octet-stream",
    }
}

/// Extracts the artifact and lists its files as (path on disk, key relative to the prefix).
async fn unpack(zip: LocalArtifact, dir: PathBuf) -> Result<Vec<(PathBuf, String)>, Failure> {
    blocking(move || {
        let name = &zip.name;
        archive::extract_artifact(&zip, &dir).map_err(|e| {
            Failure::job(format!("The artifact {name} could not be extracted: {e}."))
        })?;
        let mut files = Vec::new();
        walk(&dir, "", &mut files)
            .map_err(|e| Failure::job(format!("Could not list the artifact {name}: {e}.")))?;
        Ok(files)
    })
    .await
}

/// Collects the regular files under `dir`, sorted, with `/`-separated relative names.
fn walk(dir: &Path, relative: &str, out: &mut Vec<(PathBuf, String)>) -> std::io::Result<()> {
    let mut entries = std::fs::read_dir(dir)?.collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = if relative.is_empty() { name } else { format!("{relative}/{name}") };
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), &relative, out)?;
        } else if kind.is_file() {
            out.push((entry.path(), relative));
        }
    }
    Ok(())
}

/// Uploads every object, [`CONCURRENT_UPLOADS`] at a time; the first failure stops the rest.
async fn upload_all(
    client: &Client,
    settings: &ObjectSettings,
    objects: Vec<(PathBuf, String, &'static str)>,
) -> Result<(), Stop> {
    let mut running = JoinSet::new();
    let mut objects = objects.into_iter();
    loop {
        while running.len() < CONCURRENT_UPLOADS {
            let Some((path, key, content_type)) = objects.next() else { break };
            let (client, settings) = (client.clone(), settings.clone());
            running.spawn(async move { upload(&client, &settings, path, key, content_type).await });
        }
        let Some(done) = running.join_next().await else { return Ok(()) };
        match done {
            Ok(Ok(())) => {}
            Ok(Err(stop)) => return Err(stop),
            Err(e) => {
                return Err(Failure::job(format!("An upload stopped unexpectedly: {e}.")).into());
            }
        }
    }
}

async fn upload(
    client: &Client,
    settings: &ObjectSettings,
    path: PathBuf,
    key: String,
    content_type: &str,
) -> Result<(), Stop> {
    let body = ByteStream::from_path(&path).await.map_err(|e| {
        Failure::job(format!("Could not read {} to upload it: {e}.", path.display()))
    })?;
    let mut request = client
        .put_object()
        .bucket(&settings.bucket)
        .key(&key)
        .body(body)
        .content_type(content_type)
        .set_acl(settings.acl.clone())
        .set_cache_control(settings.cache_control.clone());
    if let Some(kms_key) = &settings.kms_key {
        request =
            request.server_side_encryption(ServerSideEncryption::AwsKms).ssekms_key_id(kms_key);
    }
    request.send().await.map_err(sdk_stop("PutObject"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_follow_common_extensions() {
        assert_eq!(content_type("index.HTML"), "text/html");
        assert_eq!(content_type("assets/app.js"), "application/javascript");
        assert_eq!(content_type("a/b/logo.svg"), "image/svg+xml");
        assert_eq!(content_type("data.bin"), "binary/octet-stream");
        assert_eq!(content_type("README"), "binary/octet-stream");
    }

    #[test]
    fn extract_and_acl_values_are_checked() {
        assert_eq!(parse_extract("TRUE"), Ok(true));
        assert_eq!(parse_extract("false"), Ok(false));
        assert!(parse_extract("yes").is_err());
        assert!(parse_acl("public-read").is_ok());
        assert!(parse_acl("everyone").is_err());
    }
}
