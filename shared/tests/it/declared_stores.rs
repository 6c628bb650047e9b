//! A pipeline's own artifact stores on the AWS host, against moto: where the deployment allows
//! declared buckets, artifacts land in the bucket the declaration names under the key it
//! names (or the region's own key when it names none); a store outside the deployment's
//! pattern, missing, or in another region than declared is refused at create, naming it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use baton::adapters::aws::s3_artifacts::{ArtifactBucket, S3ArtifactStore, same_kms_key};
use baton::adapters::aws::sdk;
use baton::adapters::local::sql_state::SqlStateStore;
use baton::bus_events::PipelineInput;
use baton::ports::artifacts::{ArtifactError, ArtifactKey, ArtifactStore};
use baton::ports::clock::SystemClock;
use baton::ports::provider::{
    ActionProvider, Job, JobResult, LocalArtifact, ProviderError, ProviderRegistry,
};
use baton::ports::state::StateStore;
use baton::service::{ActionWorker, AdminError, PipelineAdmin, StageAdvance};
use baton_core::declaration::PipelineDocument;
use baton_core::engine::{ActionRequest, ArtifactLocation, Input};
use baton_core::plan::DeclaredStore;
use baton_testkit::{KeptEvents, manual_start};

use crate::aws_artifacts::{bucket, kms_keys};
use crate::aws_support::{sdk_config, unique};

const US: &str = "us-east-1";
const EU: &str = "eu-west-1";

/// Baton's own bucket and key in us-east-1, a bucket of the user's (`team-…`) with its own
/// key, and a store that lets pipelines declare `team-*` buckets.
struct Fixture {
    own: ArtifactBucket,
    team_bucket: String,
    team_key: String,
    s3: aws_sdk_s3::Client,
    store: Arc<S3ArtifactStore>,
    dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Self {
        let config = sdk_config(US).await;
        let keys = kms_keys(&config, 2).await;
        let own = ArtifactBucket {
            bucket: bucket(&config, "baton-own").await,
            kms_key_arn: keys[0].clone(),
        };
        let store =
            S3ArtifactStore::new(config.clone(), HashMap::from([(US.to_owned(), own.clone())]))
                .with_declared_buckets("team-*");
        Self {
            own,
            team_bucket: bucket(&config, "team-art").await,
            team_key: keys[1].clone(),
            s3: sdk::s3(&config),
            store: Arc::new(store),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn declared(&self, kms_key: Option<&str>) -> Vec<DeclaredStore> {
        vec![DeclaredStore {
            region: US.into(),
            bucket: self.team_bucket.clone(),
            kms_key: kms_key.map(str::to_owned),
        }]
    }

    fn file(&self, body: &str) -> std::path::PathBuf {
        let path = self.dir.path().join(unique("out"));
        std::fs::write(&path, body).unwrap();
        path
    }

    /// The KMS key S3 recorded for the object at `bucket`/`key`.
    async fn key_of(&self, bucket: &str, key: &str) -> String {
        let head = self.s3.head_object().bucket(bucket).key(key).send().await.unwrap();
        head.ssekms_key_id().unwrap_or_default().to_owned()
    }
}

fn artifact_key(artifact: &str) -> ArtifactKey {
    ArtifactKey {
        pipeline: "app".into(),
        execution_id: unique("e"),
        artifact: artifact.into(),
        attempt: 1,
    }
}

#[tokio::test]
async fn artifacts_land_in_the_declared_bucket_under_the_declared_key() {
    let f = Fixture::new().await;
    let view = f.store.for_pipeline(&f.declared(Some(&f.team_key))).unwrap().expect("a view");
    let location = view.put(US, &artifact_key("Out"), &f.file("built")).await.unwrap();
    assert_eq!(location.bucket, f.team_bucket);
    assert!(same_kms_key(&f.team_key, &f.key_of(&location.bucket, &location.key).await));
    let back = f.dir.path().join("back");
    view.get(US, &location, &back).await.unwrap();
    assert_eq!(std::fs::read_to_string(&back).unwrap(), "built");
    // Nothing went to Baton's own bucket.
    let own = f.s3.list_objects_v2().bucket(&f.own.bucket).send().await.unwrap();
    assert_eq!(own.key_count(), Some(0));
}

#[tokio::test]
async fn a_declared_store_without_a_key_is_encrypted_with_the_regions_own_key() {
    let f = Fixture::new().await;
    let view = f.store.for_pipeline(&f.declared(None)).unwrap().expect("a view");
    let location = view.put(US, &artifact_key("Out"), &f.file("x")).await.unwrap();
    assert_eq!(location.bucket, f.team_bucket);
    assert!(same_kms_key(&f.own.kms_key_arn, &f.key_of(&location.bucket, &location.key).await));
}

#[tokio::test]
async fn in_a_declared_bucket_an_object_under_another_key_is_refused() {
    let f = Fixture::new().await;
    let view = f.store.for_pipeline(&f.declared(Some(&f.team_key))).unwrap().expect("a view");
    let location = view.put(US, &artifact_key("Out"), &f.file("x")).await.unwrap();
    // Written again by someone else, under Baton's key instead of the declared one.
    f.s3.put_object()
        .bucket(&location.bucket)
        .key(&location.key)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"forged"))
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        .ssekms_key_id(&f.own.kms_key_arn)
        .send()
        .await
        .unwrap();
    let got = view.get(US, &location, &f.dir.path().join("forged")).await;
    assert!(matches!(got, Err(ArtifactError::Tampered(_))), "{got:?}");
}

#[tokio::test]
async fn stores_the_deployment_cannot_use_are_refused_naming_them() {
    let f = Fixture::new().await;
    let eu_bucket = bucket(&sdk_config(EU).await, "team-eu").await;
    let declared = |bucket: &str| {
        vec![DeclaredStore { region: US.into(), bucket: bucket.into(), kms_key: None }]
    };
    let outside = f.store.refusals(&declared("someone-elses")).await;
    assert_eq!(
        outside,
        [format!(
            "the artifact store someone-elses in {US} is not one this deployment may use: its \
             DeclaredArtifactBuckets are \"team-*\""
        )]
    );
    let missing = unique("team-missing");
    let refusals = f.store.refusals(&declared(&missing)).await;
    assert_eq!(refusals.len(), 1);
    assert!(
        refusals[0].starts_with(&format!(
            "the artifact store {missing} in {US} cannot be reached by this deployment"
        )),
        "{refusals:?}"
    );
    assert_eq!(
        f.store.refusals(&declared(&eu_bucket)).await,
        [format!("the artifact store {eu_bucket} is in {EU}, not in {US} where it is declared")]
    );
    assert_eq!(f.store.refusals(&f.declared(Some(&f.team_key))).await, Vec::<String>::new());
    // At the first action too, if the deployment's pattern changed since the create.
    let refused = f.store.for_pipeline(&declared("someone-elses"));
    assert!(matches!(refused, Err(ArtifactError::Refused(_))));
}

#[tokio::test]
async fn a_deployment_without_declared_buckets_keeps_artifacts_in_its_own() {
    let f = Fixture::new().await;
    let config = sdk_config(US).await;
    let own_only = S3ArtifactStore::new(config, HashMap::from([(US.to_owned(), f.own.clone())]))
        .with_declared_buckets("");
    assert!(own_only.for_pipeline(&f.declared(None)).unwrap().is_none());
    assert_eq!(own_only.refusals(&f.declared(None)).await, Vec::<String>::new());
}

/// A source that produces one file as its output artifact.
struct Produces(std::path::PathBuf);

#[async_trait]
impl ActionProvider for Produces {
    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        Ok(JobResult::Succeeded {
            output_artifacts: vec![LocalArtifact::file(
                job.request.output_artifacts[0].clone(),
                self.0.clone(),
            )],
            output_variables: BTreeMap::new(),
            summary: None,
            external_id: None,
            external_url: None,
        })
    }
}

fn declaration(name: &str, bucket: &str, key: &str) -> PipelineDocument {
    PipelineDocument::parse(&format!(
        r#"{{"name": "{name}", "roleArn": "arn:aws:iam::111111111111:role/AWSCodePipelineServiceRole-app",
          "artifactStore": {{"type": "S3", "location": "{bucket}",
            "encryptionKey": {{"id": "{key}", "type": "KMS"}}}},
          "stages": [
            {{"name": "Source", "actions": [{{"name": "Src",
              "actionTypeId": {{"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"}},
              "configuration": {{"S3Bucket": "b", "S3ObjectKey": "k"}}, "outputArtifacts": [{{"name": "Out"}}]}}]}},
            {{"name": "Deploy", "actions": [{{"name": "Put",
              "actionTypeId": {{"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"}},
              "configuration": {{"BucketName": "site", "Extract": "true"}}, "inputArtifacts": [{{"name": "Out"}}]}}]}}
          ]}}"#
    ))
    .unwrap()
}

#[tokio::test]
async fn a_pipelines_action_output_goes_to_its_declared_store_and_a_bad_store_is_refused_at_create()
{
    let f = Fixture::new().await;
    let home = tempfile::tempdir().unwrap();
    let state = Arc::new(SqlStateStore::open(&home.path().join("baton.db")).unwrap());
    let bus = Arc::new(KeptEvents::default());
    let advance = Arc::new(StageAdvance::new(state.clone(), bus.clone(), Arc::new(SystemClock)));
    let admin = PipelineAdmin::new(
        state.clone(),
        advance.clone(),
        baton::embedded::placement("111111111111", US),
        Arc::new(SystemClock),
    )
    .with_store_check(Some(f.store.clone()));

    let refused =
        admin.create(declaration("elsewhere", "someone-elses", &f.team_key).pipeline, vec![]);
    match refused.await {
        Err(AdminError::Invalid(messages)) => assert_eq!(
            messages,
            [format!(
                "pipeline: the artifact store someone-elses in {US} is not one this deployment \
                 may use: its DeclaredArtifactBuckets are \"team-*\""
            )]
        ),
        other => panic!("expected a refusal, got {:?}", other.map(|r| r.plan.name)),
    }
    assert!(state.get_pipeline("elsewhere").await.unwrap().is_none());

    admin.create(declaration("app", &f.team_bucket, &f.team_key).pipeline, vec![]).await.unwrap();
    let start = manual_start("e-1");
    advance.handle(PipelineInput { pipeline: "app".into(), input: start }).await.unwrap();
    let request = bus.0.lock().unwrap().iter().find_map(|e| e.action_request().ok()).unwrap();
    assert_eq!(request.artifact_stores, f.declared(Some(&f.team_key)));

    let seen = Arc::new(AsksWhere::default());
    let mut providers = ProviderRegistry::default();
    providers.register("Source", "AWS", "S3", Arc::new(Produces(f.file("source"))));
    providers.register("Deploy", "AWS", "S3", seen.clone());
    let worker = ActionWorker::new(
        state.clone(),
        bus.clone(),
        f.store.clone(),
        providers,
        state.clone(),
        home.path().to_path_buf(),
    );
    bus.0.lock().unwrap().clear();
    worker.run(request).await.unwrap();
    let completed = bus.0.lock().unwrap().iter().find_map(|e| e.pipeline_input().ok()).unwrap();
    let Input::ActionCompleted { outcome, .. } = completed.input.clone() else {
        panic!("expected a completion, got {:?}", completed.input)
    };
    let baton_core::engine::ActionOutcome::Succeeded { artifacts, .. } = outcome else {
        panic!("expected success, got {outcome:?}")
    };
    assert_eq!(artifacts.len(), 1);
    assert_eq!(artifacts[0].location.bucket, f.team_bucket);
    assert!(same_kms_key(
        &f.team_key,
        &f.key_of(&artifacts[0].location.bucket, &artifacts[0].location.key).await
    ));

    // The next action asks where its input lies (as Fn::GetArtifactAtt does): it is told the
    // place in the store, and still gets the file.
    let produced = artifacts[0].location.clone();
    bus.0.lock().unwrap().clear();
    advance.handle(completed).await.unwrap();
    let deploy = bus.0.lock().unwrap().iter().find_map(|e| e.action_request().ok()).unwrap();
    assert_eq!(deploy.action, "Put");
    worker.run(deploy).await.unwrap();
    let (places, files) = seen.0.lock().unwrap().clone().expect("the deploy ran");
    assert_eq!(places, [("Out".to_owned(), produced)]);
    assert_eq!(files, ["Out"], "downloaded as well");
}

/// The places an attempt was told, and the names of the files it got.
type Told = (Vec<(String, ArtifactLocation)>, Vec<String>);

/// A deploy that asks where its inputs lie, and keeps what it was told.
#[derive(Default)]
struct AsksWhere(std::sync::Mutex<Option<Told>>);

#[async_trait]
impl ActionProvider for AsksWhere {
    fn wants_input_places(&self, _: &ActionRequest) -> bool {
        true
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        let files = job.inputs.iter().map(|i| i.name.clone()).collect();
        *self.0.lock().unwrap() = Some((job.input_places.clone(), files));
        Ok(JobResult::Succeeded {
            output_artifacts: Vec::new(),
            output_variables: BTreeMap::new(),
            summary: None,
            external_id: None,
            external_url: None,
        })
    }
}
