//! The artifact store on S3: one bucket per region, every object encrypted with that region's
//! customer-managed KMS key, with the same semantics as
//! the local `FileArtifactStore`.
//!
//! # Contract
//!
//! - Keys are `<pipeline>/<execution_id>/<artifact>/<attempt>.zip`, so a retried attempt never
//!   overwrites what an earlier attempt's consumers may still be reading.
//! - [`put`](ArtifactStore::put) always asks for `aws:kms` with the region's key. Files over
//!   [`PART_BYTES`] go up as a multipart upload, one part read from the file at a time, and the
//!   upload is aborted on any error so no half-written parts are left to be billed.
//! - [`get`](ArtifactStore::get) refuses ([`ArtifactError::Tampered`]) an object that is not
//!   encrypted with the region's key: an object written there by anyone else, with their own
//!   key, is not one of ours. The body streams into a temporary file next to `dest`, renamed
//!   into place only once complete, so memory does not grow with the artifact and no reader
//!   sees half of one.
//! - [`copy_to_region`](ArtifactStore::copy_to_region) is a server-side copy into the other
//!   region's bucket under the same key, re-encrypted with that region's key: `CopyObject` up
//!   to S3's 5 GiB limit, `UploadPartCopy` above it.
//!
//! # A pipeline's own stores
//!
//! A deployment may keep each pipeline's artifacts where its declaration says
//! (`artifactStore`/`artifactStores`), as CodePipeline does, for buckets whose names match
//! its pattern ([`S3ArtifactStore::with_declared_buckets`]): the users' CodeBuild projects and
//! deploy roles then find them where they always did. [`for_pipeline`](ArtifactStore::for_pipeline)
//! gives a view of this store over the declared buckets, with the declared `encryptionKey`, or
//! the region's own key when none is declared (CodePipeline would use the S3-managed
//! `aws/s3` key there; a customer key is the safer default, and services that read artifacts
//! in place are handed it). A declared key given as an alias cannot be compared with the key
//! S3 reports, so in such a bucket any SSE-KMS object is accepted: the bucket's owner decides
//! who writes there.
//!
//! # Why S3 does the encryption
//!
//! SSE-KMS gives what the embedded store's envelope encryption gives (a data key per object,
//! wrapped by the region's key), enforced by S3 and KMS instead of by us, and keeps the
//! objects readable by the services CodePipeline users point at them (CloudFormation template
//! URLs, CodeBuild sources) with nothing but `kms:Decrypt` on the key. Integrity in transit and
//! at rest is S3's: the SDK sends a CRC32 with every upload and checks it on download when the
//! object has a full-object checksum.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use aws_config::{Region, SdkConfig};
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::operation::get_object::{GetObjectError, GetObjectOutput};
use aws_sdk_s3::operation::head_object::HeadObjectError;
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use baton_core::engine::ArtifactLocation;
use baton_core::plan::DeclaredStore;
use tokio::io::AsyncWriteExt;
use tracing::warn;

use super::sdk;
use baton_app::ports::BoxError;
use baton_app::ports::artifacts::{ArtifactError, ArtifactKey, ArtifactStore, InPlace};
use baton_app::ports::provider::SMALL_FILE_BYTES;

/// Files larger than this are uploaded in parts of this size.
pub const PART_BYTES: u64 = 16 * 1024 * 1024;
/// `CopyObject` copies at most 5 GiB; larger objects need `UploadPartCopy`.
/// <https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html>
pub const COPY_OBJECT_MAX_BYTES: u64 = 5 * 1024 * 1024 * 1024;
/// Part size for `UploadPartCopy`: fewer, larger parts mean fewer requests; S3 takes up to
/// 5 GiB per part.
pub const COPY_PART_BYTES: u64 = 1024 * 1024 * 1024;
/// A multipart upload has at most 10,000 parts.
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html>
const MAX_PARTS: u64 = 10_000;
const CONTENT_TYPE: &str = "application/zip";

/// A region's artifact bucket and the KMS key its objects are encrypted with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactBucket {
    #[allow(missing_docs)]
    pub bucket: String,
    /// The key's ARN (or id). Not an alias: S3 reports the key ARN, and aliases do not resolve
    /// across accounts.
    pub kms_key_arn: String,
}

/// An [`ArtifactStore`] on S3 buckets, one per region.
pub struct S3ArtifactStore {
    config: SdkConfig,
    buckets: HashMap<String, ArtifactBucket>,
    /// Shared with the views over pipelines' own buckets.
    clients: Arc<Mutex<HashMap<String, Client>>>,
    copy_threshold: u64,
    copy_part: u64,
    /// The names (IAM wildcards) of the buckets pipelines may declare as their stores; `None`
    /// keeps every pipeline's artifacts in this store's own buckets.
    declared: Option<String>,
}

impl fmt::Debug for S3ArtifactStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3ArtifactStore").field("buckets", &self.buckets).finish_non_exhaustive()
    }
}

/// What goes wrong inside the adapter; reaches callers as [`ArtifactError::Unavailable`].
#[derive(Debug, thiserror::Error)]
enum S3Error {
    #[error("S3 {operation} failed")]
    Sdk {
        operation: &'static str,
        #[source]
        source: BoxError,
    },
    #[error("reading or writing a local file failed")]
    Io(#[from] std::io::Error),
    #[error("the file is {size} bytes; {parts} parts of {part} bytes exceed S3's 10,000")]
    TooManyParts { size: u64, part: u64, parts: u64 },
    #[error("S3 answered {operation} without {what}")]
    Incomplete { operation: &'static str, what: &'static str },
    #[error("the download of {key} stopped after {got} of {expected} bytes")]
    Truncated { key: String, got: u64, expected: u64 },
    #[error("invalid artifact key component {0:?}")]
    InvalidKey(String),
}

impl From<S3Error> for ArtifactError {
    fn from(e: S3Error) -> Self {
        ArtifactError::Unavailable(Box::new(e))
    }
}

/// Maps an SDK error once, keeping it as the source.
fn sdk_error<E: std::error::Error + Send + Sync + 'static>(
    operation: &'static str,
) -> impl FnOnce(E) -> ArtifactError {
    move |e| S3Error::Sdk { operation, source: Box::new(e) }.into()
}

impl S3ArtifactStore {
    /// A store over `buckets` (region → bucket and key), with clients made from `config` in
    /// each region when first needed.
    pub fn new(config: SdkConfig, buckets: HashMap<String, ArtifactBucket>) -> Self {
        Self {
            config,
            buckets,
            clients: Arc::new(Mutex::new(HashMap::new())),
            copy_threshold: COPY_OBJECT_MAX_BYTES,
            copy_part: COPY_PART_BYTES,
            declared: None,
        }
    }

    /// Keeps the artifacts of pipelines that declare stores in buckets named like `pattern`
    /// (IAM wildcards `*` and `?`) in those stores; an empty pattern keeps every pipeline's
    /// artifacts here.
    pub fn with_declared_buckets(mut self, pattern: &str) -> Self {
        self.declared = Some(pattern.trim()).filter(|p| !p.is_empty()).map(str::to_owned);
        self
    }

    /// The declared stores as this store's buckets, or why they cannot be.
    fn declared_buckets(
        &self,
        pattern: &str,
        declared: &[DeclaredStore],
    ) -> Result<HashMap<String, ArtifactBucket>, Vec<String>> {
        let mut buckets = self.buckets.clone();
        let mut refusals = Vec::new();
        for d in declared {
            let ours = self.buckets.get(&d.region);
            let allowed =
                ours.is_some_and(|b| b.bucket == d.bucket) || wildcard_match(pattern, &d.bucket);
            if !allowed {
                refusals.push(format!(
                    "the artifact store {} in {} is not one this deployment may use: its \
                     DeclaredArtifactBuckets are {pattern:?}",
                    d.bucket, d.region
                ));
                continue;
            }
            let key = d.kms_key.clone().or_else(|| ours.map(|b| b.kms_key_arn.clone()));
            match key {
                Some(kms_key_arn) => {
                    buckets.insert(
                        d.region.clone(),
                        ArtifactBucket { bucket: d.bucket.clone(), kms_key_arn },
                    );
                }
                None => refusals.push(format!(
                    "the artifact store {} in {} names no encryptionKey, and this deployment \
                     has no key of its own in {}",
                    d.bucket, d.region, d.region
                )),
            }
        }
        if refusals.is_empty() { Ok(buckets) } else { Err(refusals) }
    }

    /// Copies objects larger than `threshold` bytes across regions with `UploadPartCopy` in
    /// parts of `part` bytes (S3 wants at least 5 MiB per part). The defaults are S3's limit
    /// and [`COPY_PART_BYTES`]; tests lower them to exercise the multipart path.
    pub fn with_multipart_copy(mut self, threshold: u64, part: u64) -> Self {
        self.copy_threshold = threshold;
        self.copy_part = part.max(1);
        self
    }

    /// The bucket of `region`, or `NotFound` when the store has none there.
    fn bucket(&self, region: &str) -> Result<&ArtifactBucket, ArtifactError> {
        self.buckets
            .get(region)
            .ok_or_else(|| ArtifactError::NotFound(format!("(no artifact bucket in {region})")))
    }

    /// The S3 client of `region`, made once.
    fn client(&self, region: &str) -> Client {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients
            .entry(region.to_owned())
            .or_insert_with(|| {
                sdk::s3(&self.config.to_builder().region(Region::new(region.to_owned())).build())
            })
            .clone()
    }

    async fn put_single(
        &self,
        client: &Client,
        bucket: &ArtifactBucket,
        key: &str,
        source: &Path,
    ) -> Result<(), ArtifactError> {
        let body = ByteStream::from_path(source).await.map_err(sdk_error("PutObject"))?;
        client
            .put_object()
            .bucket(&bucket.bucket)
            .key(key)
            .body(body)
            .content_type(CONTENT_TYPE)
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&bucket.kms_key_arn)
            .send()
            .await
            .map_err(sdk_error("PutObject"))?;
        Ok(())
    }

    async fn put_multipart(
        &self,
        client: &Client,
        bucket: &ArtifactBucket,
        key: &str,
        source: &Path,
        size: u64,
    ) -> Result<(), ArtifactError> {
        let parts = size.div_ceil(PART_BYTES);
        if parts > MAX_PARTS {
            return Err(S3Error::TooManyParts { size, part: PART_BYTES, parts }.into());
        }
        let upload_id = create_upload(client, bucket, key, Some(ChecksumAlgorithm::Crc32)).await?;
        let uploaded = async {
            let mut completed = Vec::with_capacity(parts as usize);
            // Part numbers start at 1; there are at most 10,000, so they fit an i32.
            for (number, index) in (1_i32..).zip(0..parts) {
                let offset = index * PART_BYTES;
                let length = PART_BYTES.min(size - offset);
                // Streamed from the file: memory holds a buffer, never the part.
                let body = ByteStream::read_from()
                    .path(source)
                    .offset(offset)
                    .length(Length::Exact(length))
                    .build()
                    .await
                    .map_err(sdk_error("UploadPart"))?;
                let part = client
                    .upload_part()
                    .bucket(&bucket.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .checksum_algorithm(ChecksumAlgorithm::Crc32)
                    .body(body)
                    .send()
                    .await
                    .map_err(sdk_error("UploadPart"))?;
                completed.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(part.e_tag().map(str::to_owned))
                        .set_checksum_crc32(part.checksum_crc32().map(str::to_owned))
                        .build(),
                );
            }
            Ok(completed)
        }
        .await;
        finish_upload(client, &bucket.bucket, key, &upload_id, uploaded).await
    }

    async fn copy_multipart(
        &self,
        client: &Client,
        to: &ArtifactBucket,
        key: &str,
        copy_source: &str,
        size: u64,
    ) -> Result<(), ArtifactError> {
        let part_size = self.copy_part.max(size.div_ceil(MAX_PARTS));
        let parts = size.div_ceil(part_size).max(1);
        let upload_id = create_upload(client, to, key, None).await?;
        let copied = async {
            let mut completed = Vec::with_capacity(parts as usize);
            for (number, index) in (1_i32..).zip(0..parts) {
                let first = index * part_size;
                let last = (first + part_size).min(size).saturating_sub(1);
                let part = client
                    .upload_part_copy()
                    .bucket(&to.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .part_number(number)
                    .copy_source(copy_source)
                    .copy_source_range(format!("bytes={first}-{last}"))
                    .send()
                    .await
                    .map_err(sdk_error("UploadPartCopy"))?;
                let e_tag = part.copy_part_result().and_then(|r| r.e_tag()).map(str::to_owned);
                completed
                    .push(CompletedPart::builder().part_number(number).set_e_tag(e_tag).build());
            }
            Ok(completed)
        }
        .await;
        finish_upload(client, &to.bucket, key, &upload_id, copied).await
    }
}

/// Starts a multipart upload into `to`, encrypted with its region's key; returns the upload id.
async fn create_upload(
    client: &Client,
    to: &ArtifactBucket,
    key: &str,
    checksum: Option<ChecksumAlgorithm>,
) -> Result<String, ArtifactError> {
    let created = client
        .create_multipart_upload()
        .bucket(&to.bucket)
        .key(key)
        .content_type(CONTENT_TYPE)
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(&to.kms_key_arn)
        .set_checksum_algorithm(checksum)
        .send()
        .await
        .map_err(sdk_error("CreateMultipartUpload"))?;
    let upload_id = created
        .upload_id()
        .ok_or(S3Error::Incomplete { operation: "CreateMultipartUpload", what: "an upload id" })?;
    Ok(upload_id.to_owned())
}

/// Completes the upload with its parts, or aborts it (so no parts are left billed) when sending
/// the parts or completing failed.
async fn finish_upload(
    client: &Client,
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: Result<Vec<CompletedPart>, ArtifactError>,
) -> Result<(), ArtifactError> {
    let finished = match parts {
        Ok(completed) => client
            .complete_multipart_upload()
            .bucket(bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder().set_parts(Some(completed)).build(),
            )
            .send()
            .await
            .map(drop)
            .map_err(sdk_error("CompleteMultipartUpload")),
        Err(e) => Err(e),
    };
    if finished.is_err() {
        abort(client, bucket, key, upload_id).await;
    }
    finished
}

impl S3ArtifactStore {
    /// `GetObject` of an artifact of `region`'s bucket, checked to be encrypted with that
    /// bucket's key, with its declared length.
    async fn get_checked(
        &self,
        region: &str,
        location: &ArtifactLocation,
    ) -> Result<(GetObjectOutput, Option<u64>), ArtifactError> {
        let bucket = self.bucket(region)?;
        if location.bucket != bucket.bucket {
            return Err(ArtifactError::NotFound(location.key.clone()));
        }
        let object = self
            .client(region)
            .get_object()
            .bucket(&bucket.bucket)
            .key(&location.key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(GetObjectError::NoSuchKey(_)) => ArtifactError::NotFound(location.key.clone()),
                _ if is_not_found(e.code()) => ArtifactError::NotFound(location.key.clone()),
                _ => sdk_error("GetObject")(e),
            })?;
        check_encryption(
            &location.key,
            bucket,
            object.server_side_encryption(),
            object.ssekms_key_id(),
        )?;
        let expected = object.content_length().and_then(|n| u64::try_from(n).ok());
        Ok((object, expected))
    }
}

/// Streams an object's `body` to `dest`, which appears only whole and of the `expected` length.
async fn write_body(
    mut body: ByteStream,
    expected: Option<u64>,
    location: &ArtifactLocation,
    dest: &Path,
) -> Result<(), ArtifactError> {
    let (staged, mut file) = Staged::create(dest).await?;
    let mut written: u64 = 0;
    while let Some(chunk) = body.try_next().await.map_err(sdk_error("GetObject"))? {
        file.write_all(&chunk).await.map_err(S3Error::Io)?;
        written += chunk.len() as u64;
    }
    whole(location, written, expected)?;
    staged.commit(file, dest).await
}

/// Refuses a body cut short (or overlong): `got` bytes where the response declared `expected`.
fn whole(location: &ArtifactLocation, got: u64, expected: Option<u64>) -> Result<(), S3Error> {
    match expected {
        Some(expected) if expected != got => {
            Err(S3Error::Truncated { key: location.key.clone(), got, expected })
        }
        _ => Ok(()),
    }
}

#[async_trait]
impl ArtifactStore for S3ArtifactStore {
    fn for_pipeline(
        &self,
        declared: &[DeclaredStore],
    ) -> Result<Option<Arc<dyn ArtifactStore>>, ArtifactError> {
        let Some(pattern) = self.declared.as_deref().filter(|_| !declared.is_empty()) else {
            return Ok(None);
        };
        let buckets = self
            .declared_buckets(pattern, declared)
            .map_err(|r| ArtifactError::Refused(r.join("; ")))?;
        Ok(Some(Arc::new(Self {
            config: self.config.clone(),
            buckets,
            clients: self.clients.clone(),
            copy_threshold: self.copy_threshold,
            copy_part: self.copy_part,
            declared: None,
        })))
    }

    async fn refusals(&self, declared: &[DeclaredStore]) -> Vec<String> {
        let Some(pattern) = self.declared.as_deref().filter(|_| !declared.is_empty()) else {
            return Vec::new();
        };
        if let Err(refusals) = self.declared_buckets(pattern, declared) {
            return refusals;
        }
        let mut refusals = Vec::new();
        for d in declared {
            if self.buckets.get(&d.region).is_some_and(|b| b.bucket == d.bucket) {
                continue;
            }
            // The bucket's region comes back even from a bucket in another region.
            let found = self.client(&d.region).head_bucket().bucket(&d.bucket).send().await;
            match found {
                Ok(head) => match head.bucket_region() {
                    Some(actual) if actual != d.region => refusals.push(format!(
                        "the artifact store {} is in {actual}, not in {} where it is declared",
                        d.bucket, d.region
                    )),
                    _ => {}
                },
                Err(e) => refusals.push(format!(
                    "the artifact store {} in {} cannot be reached by this deployment ({})",
                    d.bucket,
                    d.region,
                    e.code().unwrap_or("no answer")
                )),
            }
        }
        refusals
    }

    async fn put(
        &self,
        region: &str,
        key: &ArtifactKey,
        source: &Path,
    ) -> Result<ArtifactLocation, ArtifactError> {
        let bucket = self.bucket(region)?;
        let object_key = object_key(key)?;
        let size = tokio::fs::metadata(source).await.map_err(S3Error::Io)?.len();
        let client = self.client(region);
        if size > PART_BYTES {
            self.put_multipart(&client, bucket, &object_key, source, size).await?;
        } else {
            self.put_single(&client, bucket, &object_key, source).await?;
        }
        Ok(ArtifactLocation { bucket: bucket.bucket.clone(), key: object_key })
    }

    async fn get(
        &self,
        region: &str,
        location: &ArtifactLocation,
        dest: &Path,
    ) -> Result<(), ArtifactError> {
        let (object, expected) = self.get_checked(region, location).await?;
        write_body(object.body, expected, location, dest).await
    }

    async fn get_or_hold(
        &self,
        region: &str,
        location: &ArtifactLocation,
        dest: &Path,
    ) -> Result<Option<Vec<u8>>, ArtifactError> {
        let (object, expected) = self.get_checked(region, location).await?;
        match expected {
            Some(n) if n <= SMALL_FILE_BYTES => {
                let body = object.body.collect().await.map_err(sdk_error("GetObject"))?;
                let bytes = body.to_vec();
                whole(location, bytes.len() as u64, expected)?;
                Ok(Some(bytes))
            }
            _ => write_body(object.body, expected, location, dest).await.map(|()| None),
        }
    }

    async fn copy_to_region(
        &self,
        from_region: &str,
        location: &ArtifactLocation,
        to_region: &str,
    ) -> Result<ArtifactLocation, ArtifactError> {
        let from = self.bucket(from_region)?;
        if location.bucket != from.bucket {
            return Err(ArtifactError::NotFound(location.key.clone()));
        }
        let to = self.bucket(to_region)?;
        let destination = ArtifactLocation { bucket: to.bucket.clone(), key: location.key.clone() };
        if from_region == to_region {
            return Ok(destination);
        }
        // Checked before copying: a copy would re-encrypt a foreign object under our key and
        // launder it into a trusted one.
        let head = self
            .client(from_region)
            .head_object()
            .bucket(&from.bucket)
            .key(&location.key)
            .send()
            .await
            .map_err(|e| match e.as_service_error() {
                Some(HeadObjectError::NotFound(_)) => ArtifactError::NotFound(location.key.clone()),
                _ if is_not_found(e.code()) => ArtifactError::NotFound(location.key.clone()),
                _ => sdk_error("HeadObject")(e),
            })?;
        check_encryption(&location.key, from, head.server_side_encryption(), head.ssekms_key_id())?;
        let size = head
            .content_length()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or(S3Error::Incomplete { operation: "HeadObject", what: "a content length" })?;
        let copy_source = copy_source(&from.bucket, &location.key);
        let client = self.client(to_region);
        if size > self.copy_threshold {
            self.copy_multipart(&client, to, &location.key, &copy_source, size).await?;
        } else {
            client
                .copy_object()
                .bucket(&to.bucket)
                .key(&location.key)
                .copy_source(&copy_source)
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(&to.kms_key_arn)
                .send()
                .await
                .map_err(|e| {
                    if is_not_found(e.code()) {
                        ArtifactError::NotFound(location.key.clone())
                    } else {
                        sdk_error("CopyObject")(e)
                    }
                })?;
        }
        Ok(destination)
    }

    fn region_of(&self, location: &ArtifactLocation) -> Option<String> {
        self.buckets
            .iter()
            .find(|(_, b)| b.bucket == location.bucket)
            .map(|(region, _)| region.clone())
    }

    fn in_place(&self, region: &str, key: &ArtifactKey) -> Option<InPlace> {
        let bucket = self.buckets.get(region)?;
        Some(InPlace {
            location: ArtifactLocation {
                bucket: bucket.bucket.clone(),
                key: object_key(key).ok()?,
            },
            kms_key_arn: bucket.kms_key_arn.clone(),
        })
    }
}

/// Aborts a multipart upload after a failure; S3 keeps (and bills) the parts otherwise. A
/// failed abort is only logged: the bucket's lifecycle rule for incomplete uploads is the net.
async fn abort(client: &Client, bucket: &str, key: &str, upload_id: &str) {
    let aborted =
        client.abort_multipart_upload().bucket(bucket).key(key).upload_id(upload_id).send().await;
    if let Err(e) = aborted {
        warn!(bucket, key, error = %DisplayErrorContext(&e), "AbortMultipartUpload failed");
    }
}

/// Refuses an object not encrypted with the bucket's key.
fn check_encryption(
    key: &str,
    bucket: &ArtifactBucket,
    encryption: Option<&ServerSideEncryption>,
    kms_key: Option<&str>,
) -> Result<(), ArtifactError> {
    // An alias cannot be compared with the key ARN S3 reports (see the module's docs).
    let alias = bucket.kms_key_arn.starts_with("alias/") || bucket.kms_key_arn.contains(":alias/");
    let ours = encryption == Some(&ServerSideEncryption::AwsKms)
        && (alias || kms_key.is_some_and(|k| same_kms_key(&bucket.kms_key_arn, k)));
    if ours {
        Ok(())
    } else {
        warn!(
            key,
            bucket = bucket.bucket,
            reported_key = kms_key.unwrap_or("(none)"),
            "artifact not encrypted with the region's key"
        );
        Err(ArtifactError::Tampered(key.to_owned()))
    }
}

/// Whether two references name the same KMS key: equal, or one is a key ARN whose
/// `key/<id>` suffix is the other (S3 reports ARNs; configuration may hold a bare id).
pub fn same_kms_key(a: &str, b: &str) -> bool {
    let id = |k: &str| -> String {
        match k.rsplit_once(":key/") {
            Some((_, id)) => id.to_owned(),
            None => k.to_owned(),
        }
    };
    a == b || (!(a.contains(':') && b.contains(':')) && id(a) == id(b))
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters and `?` for
/// one, as in IAM resource names.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Greedy with one backtrack point: the last `*` seen and where it started matching.
    let (mut i, mut j, mut star, mut from) = (0, 0, None, 0);
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            from = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            from += 1;
            j = from;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

fn is_not_found(code: Option<&str>) -> bool {
    matches!(code, Some("NoSuchKey" | "NotFound" | "NoSuchBucket"))
}

/// `<pipeline>/<execution_id>/<artifact>/<attempt>.zip`, refusing components that would
/// change the layout.
fn object_key(key: &ArtifactKey) -> Result<String, ArtifactError> {
    for component in [&key.pipeline, &key.execution_id, &key.artifact] {
        let bad = component.is_empty()
            || component == "."
            || component.contains("..")
            || component.contains(['/', '\\', '\0']);
        if bad {
            return Err(S3Error::InvalidKey(component.clone()).into());
        }
    }
    Ok(format!("{}/{}/{}/{}.zip", key.pipeline, key.execution_id, key.artifact, key.attempt))
}

/// `bucket/key` for `x-amz-copy-source`, percent-encoded except for `/`.
fn copy_source(bucket: &str, key: &str) -> String {
    let mut out = String::with_capacity(bucket.len() + key.len() + 1);
    for b in format!("{bucket}/{key}").bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A temporary file next to its final name, removed on drop unless committed.
struct Staged {
    path: PathBuf,
    committed: bool,
}

impl Staged {
    async fn create(dest: &Path) -> Result<(Self, tokio::fs::File), ArtifactError> {
        let dir = match dest.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let name = dest.file_name().ok_or_else(|| {
            S3Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} names no file", dest.display()),
            ))
        })?;
        let mut suffix = [0u8; 8];
        getrandom::fill(&mut suffix)
            .map_err(|e| S3Error::Io(std::io::Error::other(format!("no randomness: {e}"))))?;
        let mut file_name = std::ffi::OsString::from(".");
        file_name.push(name);
        file_name.push(format!(".{}.tmp", hex::encode(suffix)));
        let path = dir.join(file_name);
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await
            .map_err(S3Error::Io)?;
        Ok((Self { path, committed: false }, file))
    }

    /// Flushes `file` to disk and renames it to `dest`.
    async fn commit(mut self, mut file: tokio::fs::File, dest: &Path) -> Result<(), ArtifactError> {
        file.flush().await.map_err(S3Error::Io)?;
        file.sync_all().await.map_err(S3Error::Io)?;
        drop(file);
        tokio::fs::rename(&self.path, dest).await.map_err(S3Error::Io)?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_arn_and_its_id_are_the_same_key() {
        let arn = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        assert!(same_kms_key(arn, arn));
        assert!(same_kms_key("1234abcd-12ab-34cd-56ef-1234567890ab", arn));
        assert!(same_kms_key(arn, "1234abcd-12ab-34cd-56ef-1234567890ab"));
        let other_account = arn.replace("123456789012", "222222222222");
        assert!(!same_kms_key(arn, &other_account));
        assert!(!same_kms_key(arn, "ffff"));
    }

    #[test]
    fn bucket_patterns_match_as_iam_wildcards() {
        assert!(wildcard_match("codepipeline-*", "codepipeline-us-east-1-123"));
        assert!(wildcard_match("*", "anything"));
        assert!(wildcard_match("team-?-artifacts", "team-a-artifacts"));
        assert!(wildcard_match("a*b*c", "aXXbYYc"));
        assert!(!wildcard_match("a*b*c", "aXXbYY"));
        assert!(!wildcard_match("codepipeline-*", "my-codepipeline-bucket"));
        assert!(!wildcard_match("team-?-artifacts", "team-ab-artifacts"));
        assert!(!wildcard_match("exact", "exactly"));
    }

    #[test]
    fn copy_sources_are_percent_encoded_except_slashes() {
        assert_eq!(copy_source("b", "p/e/a b/1.zip"), "b/p/e/a%20b/1.zip");
        assert_eq!(copy_source("b", "p@x/1.zip"), "b/p%40x/1.zip");
    }

    #[test]
    fn keys_with_separators_are_refused() {
        let key = |artifact: &str| ArtifactKey {
            pipeline: "p".into(),
            execution_id: "e".into(),
            artifact: artifact.into(),
            attempt: 2,
        };
        assert_eq!(object_key(&key("out")).ok().as_deref(), Some("p/e/out/2.zip"));
        assert!(object_key(&key("a/b")).is_err());
        assert!(object_key(&key("..")).is_err());
        assert!(object_key(&key("")).is_err());
    }
}
