//! The S3 artifact store against moto: buckets and KMS keys in us-east-1 and eu-west-1, made
//! per test. Round trips (single and multipart), the region's key on every object, copies into
//! the other region under its key, and refusals: a missing object, an object under another key.
//!
//! moto's S3 never calls KMS (it records the key id it is given), so these tests prove which
//! key S3 was asked to use and that the store refuses the wrong one, not that KMS encrypted.

use std::collections::HashMap;
use std::path::Path;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, ServerSideEncryption,
};
use baton::adapters::aws::s3_artifacts::{ArtifactBucket, S3ArtifactStore, same_kms_key};
use baton::adapters::aws::sdk;
use baton::core::engine::ArtifactLocation;
use baton::ports::artifacts::{ArtifactError, ArtifactKey, ArtifactStore};
use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::aws_support::{sdk_config, unique};

const US: &str = "us-east-1";
const EU: &str = "eu-west-1";
const MIB: usize = 1024 * 1024;

/// `count` KMS keys in `config`'s account and region, as ARNs. Made through CloudFormation
/// because `aws-sdk-kms` is not a dependency of this crate, and moto's CloudFormation creates
/// real moto KMS keys.
pub(crate) async fn kms_keys(config: &aws_config::SdkConfig, count: usize) -> Vec<String> {
    let cfn = aws_sdk_cloudformation::Client::new(config);
    let mut resources = serde_json::Map::new();
    let mut outputs = serde_json::Map::new();
    for i in 0..count {
        resources.insert(
            format!("Key{i}"),
            serde_json::json!({
                "Type": "AWS::KMS::Key",
                "Properties": {
                    "Description": format!("baton test key {i}"),
                    "KeyPolicy": {
                        "Version": "2012-10-17",
                        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                       "Action": "kms:*", "Resource": "*"}]
                    }
                }
            }),
        );
        outputs.insert(
            format!("Key{i}"),
            serde_json::json!({ "Value": { "Fn::GetAtt": [format!("Key{i}"), "Arn"] } }),
        );
    }
    let template = serde_json::json!({ "Resources": resources, "Outputs": outputs });
    let stack = unique("baton-keys");
    cfn.create_stack().stack_name(&stack).template_body(template.to_string()).send().await.unwrap();
    let described = cfn.describe_stacks().stack_name(&stack).send().await.unwrap();
    let outputs: HashMap<String, String> = described.stacks()[0]
        .outputs()
        .iter()
        .map(|o| (o.output_key().unwrap().to_owned(), o.output_value().unwrap().to_owned()))
        .collect();
    (0..count).map(|i| outputs[&format!("Key{i}")].clone()).collect()
}

/// A bucket in `config`'s region.
pub(crate) async fn bucket(config: &aws_config::SdkConfig, prefix: &str) -> String {
    let name = unique(prefix);
    let region = config.region().unwrap().as_ref().to_owned();
    let mut create = sdk::s3(config).create_bucket().bucket(&name);
    if region != US {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    create.send().await.unwrap();
    name
}

struct Fixture {
    us: ArtifactBucket,
    eu: ArtifactBucket,
    /// A key of the us-east-1 account and region that is not the store's.
    foreign_key: String,
    s3_us: aws_sdk_s3::Client,
    s3_eu: aws_sdk_s3::Client,
    buckets: HashMap<String, ArtifactBucket>,
    us_config: aws_config::SdkConfig,
    dir: TempDir,
}

impl Fixture {
    async fn new() -> Self {
        let us_config = sdk_config(US).await;
        let eu_config = sdk_config(EU).await;
        let us_keys = kms_keys(&us_config, 2).await;
        let eu_keys = kms_keys(&eu_config, 1).await;
        let us = ArtifactBucket {
            bucket: bucket(&us_config, "baton-art-us").await,
            kms_key_arn: us_keys[0].clone(),
        };
        let eu = ArtifactBucket {
            bucket: bucket(&eu_config, "baton-art-eu").await,
            kms_key_arn: eu_keys[0].clone(),
        };
        let buckets = HashMap::from([(US.to_owned(), us.clone()), (EU.to_owned(), eu.clone())]);
        Self {
            us,
            eu,
            foreign_key: us_keys[1].clone(),
            s3_us: sdk::s3(&us_config),
            s3_eu: sdk::s3(&eu_config),
            buckets,
            us_config,
            dir: TempDir::new().unwrap(),
        }
    }

    fn store(&self) -> S3ArtifactStore {
        S3ArtifactStore::new(self.us_config.clone(), self.buckets.clone())
    }

    /// A file of `len` bytes that do not repeat in any short period (so a part sent twice or
    /// out of order would show).
    fn file(&self, name: &str, len: usize) -> std::path::PathBuf {
        let mut bytes = Vec::with_capacity(len);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        while bytes.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes.extend_from_slice(&x.to_le_bytes());
        }
        bytes.truncate(len);
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}

fn key(artifact: &str) -> ArtifactKey {
    ArtifactKey {
        pipeline: "release".into(),
        execution_id: unique("exec"),
        artifact: artifact.into(),
        attempt: 1,
    }
}

fn digest(path: &Path) -> Vec<u8> {
    Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

async fn assert_encrypted_with(s3: &aws_sdk_s3::Client, location: &ArtifactLocation, kms: &str) {
    let head = s3.head_object().bucket(&location.bucket).key(&location.key).send().await.unwrap();
    assert_eq!(head.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
    let reported = head.ssekms_key_id().unwrap();
    assert!(same_kms_key(kms, reported), "encrypted with {reported}, not {kms}");
}

#[tokio::test]
async fn small_and_multipart_artifacts_round_trip_under_the_regions_key() {
    let f = Fixture::new().await;
    let store = f.store();
    for (name, len) in [("small.zip", 1024), ("empty.zip", 0), ("large.zip", 40 * MIB)] {
        let source = f.file(name, len);
        let key = key(name.trim_end_matches(".zip"));

        let location = store.put(US, &key, &source).await.unwrap();

        assert_eq!(location.bucket, f.us.bucket);
        assert_eq!(
            location.key,
            format!("release/{}/{}/1.zip", key.execution_id, key.artifact),
            "{name}"
        );
        assert_encrypted_with(&f.s3_us, &location, &f.us.kms_key_arn).await;
        let dest = f.dir.path().join(format!("back-{name}"));
        store.get(US, &location, &dest).await.unwrap();
        assert_eq!(digest(&dest), digest(&source), "{name}");
        assert_eq!(store.region_of(&location).as_deref(), Some(US));
    }
    let leftovers: Vec<_> = std::fs::read_dir(f.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[tokio::test]
async fn a_copy_lands_in_the_other_regions_bucket_under_its_key() {
    let f = Fixture::new().await;
    let store = f.store();
    let source = f.file("out.zip", 3 * MIB);
    let location = store.put(US, &key("out"), &source).await.unwrap();

    let copied = store.copy_to_region(US, &location, EU).await.unwrap();

    assert_eq!(copied, ArtifactLocation { bucket: f.eu.bucket.clone(), key: location.key.clone() });
    assert_eq!(store.region_of(&copied).as_deref(), Some(EU));
    assert_encrypted_with(&f.s3_eu, &copied, &f.eu.kms_key_arn).await;
    let dest = f.dir.path().join("back.zip");
    store.get(EU, &copied, &dest).await.unwrap();
    assert_eq!(digest(&dest), digest(&source));
    // The source is untouched, still under its own region's key.
    assert_encrypted_with(&f.s3_us, &location, &f.us.kms_key_arn).await;
}

#[tokio::test]
async fn a_large_copy_goes_part_by_part_and_is_re_encrypted() {
    let f = Fixture::new().await;
    // Parts of 5 MiB (S3's minimum) over 12 MiB: three UploadPartCopy calls, the last short.
    let store = f.store().with_multipart_copy(MIB as u64, 5 * MIB as u64);
    let source = f.file("big.zip", 12 * MIB);
    let location = store.put(US, &key("big"), &source).await.unwrap();

    let copied = store.copy_to_region(US, &location, EU).await.unwrap();

    assert_encrypted_with(&f.s3_eu, &copied, &f.eu.kms_key_arn).await;
    let dest = f.dir.path().join("back.zip");
    store.get(EU, &copied, &dest).await.unwrap();
    assert_eq!(digest(&dest), digest(&source));
}

#[tokio::test]
async fn a_missing_artifact_is_not_found() {
    let f = Fixture::new().await;
    let store = f.store();
    let missing =
        ArtifactLocation { bucket: f.us.bucket.clone(), key: "release/x/out/1.zip".into() };
    let dest = f.dir.path().join("never.zip");

    let got = store.get(US, &missing, &dest).await;
    let copied = store.copy_to_region(US, &missing, EU).await;
    let elsewhere = store.get(EU, &missing, &dest).await;

    assert!(matches!(got, Err(ArtifactError::NotFound(_))), "{got:?}");
    assert!(matches!(copied, Err(ArtifactError::NotFound(_))), "{copied:?}");
    assert!(matches!(elsewhere, Err(ArtifactError::NotFound(_))), "{elsewhere:?}");
    assert!(!dest.exists());
}

#[tokio::test]
async fn an_object_under_another_key_or_unencrypted_is_refused_as_tampered() {
    let f = Fixture::new().await;
    let store = f.store();
    let foreign = ArtifactLocation { bucket: f.us.bucket.clone(), key: "release/x/a/1.zip".into() };
    f.s3_us
        .put_object()
        .bucket(&foreign.bucket)
        .key(&foreign.key)
        .body(ByteStream::from_static(b"PK not ours"))
        .server_side_encryption(ServerSideEncryption::AwsKms)
        .ssekms_key_id(&f.foreign_key)
        .send()
        .await
        .unwrap();
    let plain = ArtifactLocation { bucket: f.us.bucket.clone(), key: "release/x/b/1.zip".into() };
    f.s3_us
        .put_object()
        .bucket(&plain.bucket)
        .key(&plain.key)
        .body(ByteStream::from_static(b"PK plain"))
        .send()
        .await
        .unwrap();
    let dest = f.dir.path().join("never.zip");

    for location in [&foreign, &plain] {
        let got = store.get(US, location, &dest).await;
        let held = store.get_or_hold(US, location, &dest).await;
        let copied = store.copy_to_region(US, location, EU).await;

        assert!(matches!(got, Err(ArtifactError::Tampered(_))), "{got:?}");
        assert!(matches!(held, Err(ArtifactError::Tampered(_))), "{held:?}");
        assert!(matches!(copied, Err(ArtifactError::Tampered(_))), "{copied:?}");
    }
    assert!(!dest.exists());
    let in_eu = f.s3_eu.list_objects_v2().bucket(&f.eu.bucket).send().await.unwrap();
    assert_eq!(in_eu.key_count(), Some(0), "nothing may be copied into the trusted bucket");
}

#[tokio::test]
async fn the_s3_store_keeps_the_artifact_store_contract() {
    let f = Fixture::new().await;
    baton_testkit::artifact_store_contract(&f.store(), US, EU, f.dir.path()).await;
}
