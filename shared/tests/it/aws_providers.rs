//! The AWS providers against moto, and against fakes where moto cannot fail.
//!
//! On moto: a CloudFormation deploy through an assumed role into account 222222222222 (the
//! stack lands there, not in the pipeline account), its no-op update, change sets and
//! deletion; S3 deploys extracted and not; the S3 source; a CodeBuild build; the session name
//! STS records. With a fake [`StackApi`]: rollbacks, failed creations replaced, timeouts and
//! refusals, since moto's CloudFormation never fails a stack.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketVersioningStatus, ServerSideEncryption, VersioningConfiguration};
use aws_sdk_sts::config::ProvideCredentials;
use baton::adapters::aws::sdk;
use baton::adapters::aws::sts_roles::RoleAssumer;
use baton::core::engine::{ActionRequest, ArtifactLocation, RuleRequest, SourceRevision};
use baton::core::plan::ActionType;
use baton::core::rules::Verdict;
use baton::ports::provider::ProviderRegistry;
use baton::ports::provider::{
    ActionProvider, InPlaceArtifacts, Job, JobResult, LocalArtifact, ProviderError, RuleCheck,
    RuleProvider,
};
use baton::providers::aws::appconfig::{
    AppConfigApi, AppConfigProvider, Deployment as AppConfigDeployment, SdkAppConfig,
    Target as AppConfigTarget,
};
use baton::providers::aws::beanstalk::{
    BeanstalkApi, BeanstalkProvider, Environment, SdkBeanstalk,
};
use baton::providers::aws::cfn_templates::{S3Templates, TemplateStore, template_key};
use baton::providers::aws::cloudformation::{
    CfnError, ChangeSet, CloudFormationProvider, Stack, StackApi, StackInput, Update,
};
use baton::providers::aws::codebuild::CodeBuildProvider;
use baton::providers::aws::codecommit_source::{
    CodeCommitSourceProvider, CommitInfo, FolderListing, RepoError, RepositoryApi,
};
use baton::providers::aws::commands::{CommandsProvider, CommandsRule};
use baton::providers::aws::connection_source::{
    CodeConnections, Connection, ConnectionSourceProvider, Connections,
};
use baton::providers::aws::ecs_deploy::EcsDeployProvider;
use baton::providers::aws::lambda_deploy::{
    AlarmStates, Handle as LambdaHandle, LambdaDeployProvider,
};
use baton::providers::aws::s3_deploy::S3DeployProvider;
use baton::providers::aws::s3_source::S3SourceProvider;
use baton::providers::aws::stack_sets::{Handle, StackSetProvider};
use baton::providers::aws::step_functions::StepFunctionsProvider;
use baton::providers::aws::{Backoff, register, register_commands};
use baton::providers::{Stop, archive};
use tempfile::TempDir;

use crate::aws_artifacts::{bucket, kms_keys};
use crate::aws_support::{sdk_config, unique};
use crate::lambda_invoke::{read_request, response};

const PIPELINE_REGION: &str = "us-east-1";
const DEPLOY_REGION: &str = "eu-west-1";
const DEPLOY_ROLE: &str = "arn:aws:iam::222222222222:role/Deploy";
const FAST: Backoff =
    Backoff { first: Duration::from_millis(5), longest: Duration::from_millis(20) };

// ---------------------------------------------------------------------------------------------
// Fixtures

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

fn request(
    category: &str,
    provider: &str,
    config: &[(&str, &str)],
    outputs: &[&str],
) -> ActionRequest {
    ActionRequest {
        pipeline: "release".into(),
        pipeline_version: 1,
        execution_id: "0c5c7a4e-1111-2222-3333-444455556666".into(),
        stage: "Deploy".into(),
        action: "Act".into(),
        attempt: 1,
        action_type: ActionType {
            category: category.into(),
            owner: "AWS".into(),
            provider: provider.into(),
            version: "1".into(),
        },
        configuration: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        commands: Vec::new(),
        input_artifacts: Vec::new(),
        input_revisions: Vec::new(),
        source_revision: None,
        output_artifacts: outputs.iter().map(|s| s.to_string()).collect(),
        region: DEPLOY_REGION.into(),
        role_arn: None,
        pipeline_role_arn: None,
        artifact_stores: Vec::new(),
        deadline: now_ms() + 120_000,
        token: None,
        output_artifact_files: Vec::new(),
        output_variables: Vec::new(),
        environment_variables: Vec::new(),
        announce: Default::default(),
    }
}

/// A job in a fresh folder, with `inputs` as (artifact name, zip path).
fn job(dir: &TempDir, request: ActionRequest, inputs: &[(&str, &Path)]) -> Job {
    let work_dir = dir.path().join(unique("work"));
    std::fs::create_dir_all(&work_dir).unwrap();
    Job {
        request,
        inputs: inputs
            .iter()
            .map(|(name, path)| LocalArtifact::file(name.to_string(), path.to_path_buf()))
            .collect(),
        log_path: work_dir.join("action.log"),
        work_dir,
        in_place: None,
        input_places: Vec::new(),
    }
}

/// Zips `files` (relative path, contents) into `dir/<name>.zip`.
fn zip_of(dir: &TempDir, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let src = dir.path().join(unique(name));
    for (path, contents) in files {
        let path = src.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
    let zip = dir.path().join(format!("{}.zip", unique(name)));
    archive::zip_dir(&src, &zip).unwrap();
    zip
}

fn zip_entry(zip: &Path, name: &str) -> String {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    let mut text = String::new();
    archive.by_name(name).unwrap().read_to_string(&mut text).unwrap();
    text
}

fn succeeded(result: JobResult) -> (Vec<LocalArtifact>, BTreeMap<String, String>, Option<String>) {
    match result {
        JobResult::Succeeded { output_artifacts, output_variables, external_id, .. } => {
            (output_artifacts, output_variables, external_id)
        }
        JobResult::Failed { code, message } => panic!("the action failed: {code}: {message}"),
        running @ JobResult::Running { .. } => panic!("the action did not end: {running:?}"),
    }
}

fn failed(result: JobResult) -> (String, String) {
    match result {
        JobResult::Failed { code, message } => (code, message),
        other => panic!("the action did not fail: {other:?}"),
    }
}

async fn roles() -> Arc<RoleAssumer> {
    Arc::new(RoleAssumer::new(sdk_config(PIPELINE_REGION).await))
}

const TOPIC_TEMPLATE: &str = r#"{
  "Parameters": {
    "TopicName": {"Type": "String"},
    "Team": {"Type": "String", "Default": "none"}
  },
  "Resources": {
    "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Ref": "TopicName"}}}
  },
  "Outputs": {
    "TopicArn": {"Value": {"Ref": "Topic"}},
    "Team": {"Value": {"Ref": "Team"}}
  }
}"#;

// ---------------------------------------------------------------------------------------------
// CloudFormation on moto

#[tokio::test]
async fn a_stack_deployed_through_an_assumed_role_lands_in_the_other_account() {
    let dir = TempDir::new().unwrap();
    let roles = roles().await;
    let provider = CloudFormationProvider::new(roles.clone()).with_backoff(FAST);
    let stack = unique("baton-topic");
    let topic = unique("topic");
    let source = zip_of(
        &dir,
        "src",
        &[
            ("infra/topic.json", TOPIC_TEMPLATE.as_bytes()),
            (
                "infra/prod.json",
                br#"{"Parameters": {"Team": "payments"}, "Tags": {"app": "baton"}}"#,
            ),
        ],
    );
    let overrides = format!(r#"{{"TopicName": "{topic}"}}"#);
    let config = [
        ("ActionMode", "CREATE_UPDATE"),
        ("StackName", stack.as_str()),
        ("TemplatePath", "Src::infra/topic.json"),
        ("TemplateConfiguration", "Src::infra/prod.json"),
        ("ParameterOverrides", overrides.as_str()),
        ("OutputFileName", "outputs.json"),
    ];
    let mut deploy = request("Deploy", "CloudFormation", &config, &["StackOut"]);
    deploy.role_arn = Some(DEPLOY_ROLE.into());

    let created = provider.run(&job(&dir, deploy.clone(), &[("Src", &source)])).await.unwrap();

    let (artifacts, variables, stack_id) = succeeded(created);
    let topic_arn = format!("arn:aws:sns:{DEPLOY_REGION}:222222222222:{topic}");
    assert_eq!(variables.get("TopicArn"), Some(&topic_arn));
    assert_eq!(variables.get("Team").map(String::as_str), Some("payments"));
    assert!(stack_id.unwrap().contains(":222222222222:stack/"));
    assert_eq!(artifacts.len(), 1);
    assert_eq!(artifacts[0].name, "StackOut");
    let outputs: serde_json::Value =
        serde_json::from_str(&zip_entry(&artifacts[0].path, "outputs.json")).unwrap();
    assert_eq!(outputs["TopicArn"], topic_arn.as_str());
    // Where it landed: the deploy account sees it, the pipeline account does not.
    let assumed = roles.config(Some(DEPLOY_ROLE), DEPLOY_REGION, "check").await.unwrap();
    let there = aws_sdk_cloudformation::Client::new(&assumed);
    let described = there.describe_stacks().stack_name(&stack).send().await.unwrap();
    assert_eq!(described.stacks()[0].stack_status().unwrap().as_str(), "CREATE_COMPLETE");
    let tags: Vec<_> = described.stacks()[0].tags().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(tags, [(Some("app"), Some("baton"))]);
    let here = aws_sdk_cloudformation::Client::new(&sdk_config(DEPLOY_REGION).await);
    assert!(here.describe_stacks().stack_name(&stack).send().await.is_err());

    // The same deploy again changes nothing, which is success.
    let again = provider.run(&job(&dir, deploy.clone(), &[("Src", &source)])).await.unwrap();
    let (_, variables, _) = succeeded(again);
    assert_eq!(variables.get("TopicArn"), Some(&topic_arn));

    let mut delete = request(
        "Deploy",
        "CloudFormation",
        &[("ActionMode", "DELETE_ONLY"), ("StackName", stack.as_str())],
        &[],
    );
    delete.role_arn = Some(DEPLOY_ROLE.into());
    succeeded(provider.run(&job(&dir, delete.clone(), &[])).await.unwrap());
    assert!(there.describe_stacks().stack_name(&stack).send().await.is_err());
    // Deleting what is not there is success too.
    succeeded(provider.run(&job(&dir, delete, &[])).await.unwrap());
}

#[tokio::test]
async fn a_change_set_is_created_then_executed() {
    let dir = TempDir::new().unwrap();
    let provider = CloudFormationProvider::new(roles().await).with_backoff(FAST);
    let stack = unique("baton-cs");
    let topic = unique("topic");
    let source = zip_of(&dir, "src", &[("topic.json", TOPIC_TEMPLATE.as_bytes())]);
    let overrides = format!(r#"{{"TopicName": "{topic}", "Team": 7}}"#);
    let replace = request(
        "Deploy",
        "CloudFormation",
        &[
            ("ActionMode", "CHANGE_SET_REPLACE"),
            ("StackName", stack.as_str()),
            ("ChangeSetName", "release"),
            ("TemplatePath", "Src::topic.json"),
            ("ParameterOverrides", overrides.as_str()),
        ],
        &[],
    );
    let execute = request(
        "Deploy",
        "CloudFormation",
        &[
            ("ActionMode", "CHANGE_SET_EXECUTE"),
            ("StackName", stack.as_str()),
            ("ChangeSetName", "release"),
        ],
        &[],
    );

    let cfn = aws_sdk_cloudformation::Client::new(&sdk_config(DEPLOY_REGION).await);
    let status =
        |stacks: aws_sdk_cloudformation::operation::describe_stacks::DescribeStacksOutput| {
            stacks.stacks()[0].stack_status().unwrap().as_str().to_owned()
        };

    succeeded(provider.run(&job(&dir, replace, &[("Src", &source)])).await.unwrap());
    let pending = cfn.describe_stacks().stack_name(&stack).send().await.unwrap();
    assert_eq!(status(pending), "REVIEW_IN_PROGRESS");
    succeeded(provider.run(&job(&dir, execute, &[])).await.unwrap());

    let executed = cfn.describe_stacks().stack_name(&stack).send().await.unwrap();
    let parameters: BTreeMap<_, _> = executed.stacks()[0]
        .parameters()
        .iter()
        .map(|p| (p.parameter_key().unwrap().to_owned(), p.parameter_value().unwrap().to_owned()))
        .collect();
    assert_eq!(parameters.get("Team").map(String::as_str), Some("7"), "a number, as a string");
    assert_eq!(parameters.get("TopicName"), Some(&topic));
    assert_eq!(status(executed), "CREATE_COMPLETE");
    // Outputs are not asserted: moto does not report a stack's outputs after it executes a
    // change set (AWS does); the direct deploy test covers outputs.
}

#[tokio::test]
async fn a_template_that_is_not_in_the_inputs_is_a_configuration_error() {
    let dir = TempDir::new().unwrap();
    let provider = CloudFormationProvider::new(roles().await).with_backoff(FAST);
    let source = zip_of(&dir, "src", &[("topic.json", TOPIC_TEMPLATE.as_bytes())]);
    let cases = [
        ("Other::topic.json", "not an input"),
        ("Src::missing.json", "has no file missing.json"),
        ("topic.json", "ArtifactName::path"),
    ];
    for (path, expected) in cases {
        let deploy = request(
            "Deploy",
            "CloudFormation",
            &[("ActionMode", "CREATE_UPDATE"), ("StackName", "never"), ("TemplatePath", path)],
            &[],
        );

        let (code, message) =
            failed(provider.run(&job(&dir, deploy, &[("Src", &source)])).await.unwrap());

        assert_eq!(code, "ConfigurationError", "{message}");
        assert!(message.contains(expected), "{path}: {message}");
    }
}

// ---------------------------------------------------------------------------------------------
// CloudFormation failure paths, on a fake (moto never fails a stack)

/// Scripted CloudFormation: each `describe_stack` pops the next answer (the last one stays),
/// other calls are recorded and answered from fixed results.
#[derive(Default)]
struct FakeStacks {
    answers: Mutex<VecDeque<Option<Stack>>>,
    calls: Mutex<Vec<String>>,
    update: Mutex<Option<Result<Update, CfnError>>>,
    create: Mutex<Option<CfnError>>,
    /// What each create, update or change set sent.
    inputs: Mutex<Vec<StackInput>>,
}

impl FakeStacks {
    fn answering(answers: &[Option<(&str, Option<&str>)>]) -> Arc<Self> {
        let fake = Self::default();
        *fake.answers.lock().unwrap() = answers
            .iter()
            .map(|a| {
                a.map(|(status, reason)| Stack {
                    id: "arn:aws:cloudformation:eu-west-1:222222222222:stack/app/1".into(),
                    status: status.into(),
                    reason: reason.map(str::to_owned),
                    outputs: BTreeMap::from([("Url".to_owned(), "https://x".to_owned())]),
                })
            })
            .collect();
        Arc::new(fake)
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, call: &str) {
        self.calls.lock().unwrap().push(call.to_owned());
    }
}

#[async_trait]
impl StackApi for FakeStacks {
    async fn describe_stack(&self, _stack: &str) -> Result<Option<Stack>, CfnError> {
        let mut answers = self.answers.lock().unwrap();
        let answer = if answers.len() > 1 { answers.pop_front() } else { answers.front().cloned() };
        Ok(answer.flatten())
    }

    async fn create_stack(&self, input: &StackInput) -> Result<String, CfnError> {
        self.record("create");
        self.inputs.lock().unwrap().push(input.clone());
        match self.create.lock().unwrap().take() {
            Some(e) => Err(e),
            None => Ok("arn:aws:cloudformation:eu-west-1:222222222222:stack/app/2".into()),
        }
    }

    async fn update_stack(&self, _input: &StackInput) -> Result<Update, CfnError> {
        self.record("update");
        self.update.lock().unwrap().take().unwrap_or(Ok(Update::Started))
    }

    async fn delete_stack(&self, _stack: &str, _role: Option<&str>) -> Result<(), CfnError> {
        self.record("delete");
        Ok(())
    }

    async fn create_change_set(&self, _: &StackInput, _: &str, _: bool) -> Result<(), CfnError> {
        self.record("create_change_set");
        Ok(())
    }

    async fn describe_change_set(&self, _: &str, _: &str) -> Result<Option<ChangeSet>, CfnError> {
        Ok(None)
    }

    async fn delete_change_set(&self, _: &str, _: &str) -> Result<(), CfnError> {
        self.record("delete_change_set");
        Ok(())
    }

    async fn execute_change_set(&self, _: &str, _: &str) -> Result<(), CfnError> {
        self.record("execute_change_set");
        Ok(())
    }
}

async fn run_fake(
    fake: &Arc<FakeStacks>,
    mode: &str,
    deadline_ms: i64,
) -> Result<JobResult, ProviderError> {
    let dir = TempDir::new().unwrap();
    let source = zip_of(&dir, "src", &[("t.json", b"{\"Resources\": {}}")]);
    let provider = CloudFormationProvider::with_api(fake.clone()).with_backoff(FAST);
    let mut deploy = request(
        "Deploy",
        "CloudFormation",
        &[("ActionMode", mode), ("StackName", "app"), ("TemplatePath", "Src::t.json")],
        &[],
    );
    deploy.deadline = now_ms() + deadline_ms;
    provider.run(&job(&dir, deploy, &[("Src", &source)])).await
}

/// A template of `bytes` bytes: one topic, padded with metadata, as generated templates are.
fn large_template(bytes: usize) -> Vec<u8> {
    let head = r#"{"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Metadata": {"Pad": ""#;
    let mut t = head.as_bytes().to_vec();
    t.resize(bytes - 3, b'x');
    t.extend_from_slice(br#""}}"#);
    t
}

/// Keeps templates in memory and gives a URL naming the attempt.
#[derive(Default)]
struct KeptTemplates(Mutex<Vec<Vec<u8>>>);

#[async_trait]
impl TemplateStore for KeptTemplates {
    async fn url(&self, request: &ActionRequest, template: Vec<u8>) -> Result<String, Stop> {
        self.0.lock().unwrap().push(template);
        Ok(format!("https://templates.example/{}", template_key(request)))
    }

    async fn artifact_url(&self, _: &ActionRequest, at: &ArtifactLocation) -> Result<String, Stop> {
        Ok(format!("https://signed.example/{}/{}", at.bucket, at.key))
    }
}

#[tokio::test]
async fn get_artifact_att_gives_where_an_input_lies_in_the_store() {
    let dir = TempDir::new().unwrap();
    let source = zip_of(&dir, "src", &[("t.json", b"{\"Resources\": {}}")]);
    let overrides = r#"{"Bucket": {"Fn::GetArtifactAtt": ["Src", "BucketName"]},
        "Key": {"Fn::GetArtifactAtt": ["Src", "ObjectKey"]},
        "Url": {"Fn::GetArtifactAtt": ["Src", "URL"]}}"#;
    let config = [
        ("ActionMode", "CREATE_UPDATE"),
        ("StackName", "app"),
        ("TemplatePath", "Src::t.json"),
        ("ParameterOverrides", overrides),
    ];
    let deploy = request("Deploy", "CloudFormation", &config, &[]);
    let fake = FakeStacks::answering(&[None, Some(("CREATE_COMPLETE", None))]);
    let provider = CloudFormationProvider::with_api(fake.clone())
        .with_backoff(FAST)
        .with_templates(Arc::new(KeptTemplates::default()));
    assert!(provider.wants_input_places(&deploy), "the worker is asked for the places");
    let mut attempt = job(&dir, deploy.clone(), &[("Src", &source)]);
    attempt.input_places = vec![(
        "Src".into(),
        ArtifactLocation { bucket: "artifacts-eu".into(), key: "release/e/Src/ab12.zip".into() },
    )];

    succeeded(provider.run(&attempt).await.unwrap());
    let sent = fake.inputs.lock().unwrap()[0].parameters.clone();
    assert_eq!(sent["Bucket"], "artifacts-eu");
    assert_eq!(sent["Key"], "release/e/Src/ab12.zip");
    assert_eq!(sent["Url"], "https://signed.example/artifacts-eu/release/e/Src/ab12.zip");

    // Artifacts in local files (one machine): refused, saying so.
    let local = job(&dir, deploy, &[("Src", &source)]);
    let (code, message) = failed(provider.run(&local).await.unwrap());
    assert_eq!(code, "ConfigurationError");
    assert!(message.contains("ParameterOverrides") && message.contains("local files"), "{message}");
}

#[tokio::test]
async fn a_template_over_the_request_limit_is_read_by_cloudformation_from_the_store() {
    let dir = TempDir::new().unwrap();
    let big = large_template(60_000);
    let source = zip_of(&dir, "src", &[("t.json", &big)]);
    let config =
        [("ActionMode", "CREATE_UPDATE"), ("StackName", "app"), ("TemplatePath", "Src::t.json")];
    let deploy = request("Deploy", "CloudFormation", &config, &[]);
    let fake = FakeStacks::answering(&[None, Some(("CREATE_COMPLETE", None))]);
    let store = Arc::new(KeptTemplates::default());
    let provider = CloudFormationProvider::with_api(fake.clone())
        .with_backoff(FAST)
        .with_templates(store.clone());

    succeeded(provider.run(&job(&dir, deploy.clone(), &[("Src", &source)])).await.unwrap());
    let sent = fake.inputs.lock().unwrap()[0].clone();
    assert_eq!(sent.template_body, "", "not in the request");
    let url = sent.template_url.expect("a URL CloudFormation reads");
    assert_eq!(url, format!("https://templates.example/{}", template_key(&deploy)));
    assert_eq!(store.0.lock().unwrap().as_slice(), [big], "the template itself, unchanged");

    // Without a store (one machine), such a template is refused, naming the limit.
    let local = CloudFormationProvider::with_api(fake).with_backoff(FAST);
    let (code, message) = failed(local.run(&job(&dir, deploy, &[("Src", &source)])).await.unwrap());
    assert_eq!(code, "ConfigurationError");
    assert!(message.contains("60000 bytes") && message.contains("51200"), "{message}");
}

#[tokio::test]
async fn a_large_template_is_kept_encrypted_in_the_regions_bucket_behind_a_presigned_url() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = sdk_config(DEPLOY_REGION).await;
    let s3 = sdk::s3(&config);
    let name = bucket(&config, "baton-templates").await;
    let key = kms_keys(&config, 1).await.remove(0);
    let buckets = BTreeMap::from([(DEPLOY_REGION.to_owned(), (name.clone(), key.clone()))]);
    let store = S3Templates::new(roles().await, buckets);
    let deploy = request("Deploy", "CloudFormation", &[], &[]);
    let big = large_template(70_000);

    let url = store.url(&deploy, big.clone()).await.unwrap();
    let object = template_key(&deploy);
    assert!(url.contains(&format!("/{name}/{object}?")), "{url}");
    assert!(url.contains("X-Amz-Signature=") && url.contains("X-Amz-Expires=900"), "{url}");
    let head = s3.head_object().bucket(&name).key(&object).send().await.unwrap();
    assert_eq!(head.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
    assert_eq!(head.ssekms_key_id(), Some(key.as_str()));

    // Fetched as CloudFormation fetches it: a plain GET of the URL.
    let rest = url.split_once("://").unwrap().1;
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let get = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(get.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer[..80]));
    assert!(answer.ends_with(&big), "the template comes back whole");

    // A region without a bucket says so.
    let mut elsewhere = deploy;
    elsewhere.region = "ap-south-1".into();
    match store.url(&elsewhere, big).await {
        Err(Stop::Failed(f)) => {
            assert!(f.message.contains("has none in ap-south-1"), "{}", f.message)
        }
        other => panic!("a region without a bucket was not refused: {other:?}"),
    }
}

#[tokio::test]
async fn an_update_that_rolls_back_fails_with_the_stacks_reason() {
    let fake = FakeStacks::answering(&[
        Some(("UPDATE_COMPLETE", None)),
        Some(("UPDATE_IN_PROGRESS", None)),
        Some(("UPDATE_ROLLBACK_IN_PROGRESS", Some("Resource Topic failed: name taken"))),
        Some(("UPDATE_ROLLBACK_COMPLETE", Some("Resource Topic failed: name taken"))),
    ]);

    let (code, message) = failed(run_fake(&fake, "CREATE_UPDATE", 60_000).await.unwrap());

    assert_eq!(code, "JobFailed");
    assert!(message.contains("UPDATE_ROLLBACK_COMPLETE"), "{message}");
    assert!(message.contains("Resource Topic failed: name taken"), "{message}");
    assert_eq!(fake.calls(), ["update"]);
}

#[tokio::test]
async fn a_creation_that_rolls_back_fails() {
    let fake = FakeStacks::answering(&[
        None,
        Some(("CREATE_IN_PROGRESS", None)),
        Some(("ROLLBACK_IN_PROGRESS", None)),
        Some(("ROLLBACK_COMPLETE", Some("The following resource(s) failed to create: [Topic]."))),
    ]);

    let (code, message) = failed(run_fake(&fake, "CREATE_UPDATE", 60_000).await.unwrap());

    assert_eq!(code, "JobFailed");
    assert!(message.contains("ROLLBACK_COMPLETE"), "{message}");
    assert!(message.contains("failed to create: [Topic]"), "{message}");
    assert_eq!(fake.calls(), ["create"]);
}

#[tokio::test]
async fn replace_on_failure_deletes_a_failed_stack_and_creates_it_again() {
    let fake = FakeStacks::answering(&[
        Some(("ROLLBACK_COMPLETE", None)),
        Some(("DELETE_IN_PROGRESS", None)),
        Some(("DELETE_COMPLETE", None)),
        Some(("CREATE_IN_PROGRESS", None)),
        Some(("CREATE_COMPLETE", None)),
    ]);

    let (_, variables, _) = succeeded(run_fake(&fake, "REPLACE_ON_FAILURE", 60_000).await.unwrap());

    assert_eq!(fake.calls(), ["delete", "create"]);
    assert_eq!(variables.get("Url").map(String::as_str), Some("https://x"));
}

#[tokio::test]
async fn create_update_leaves_a_failed_stack_to_cloudformation() {
    let fake = FakeStacks::answering(&[Some(("ROLLBACK_COMPLETE", None))]);
    *fake.update.lock().unwrap() = Some(Err(CfnError::Refused {
        code: "ValidationError".into(),
        message: "Stack:app is in ROLLBACK_COMPLETE state and can not be updated.".into(),
    }));

    let (code, message) = failed(run_fake(&fake, "CREATE_UPDATE", 60_000).await.unwrap());

    assert_eq!(code, "JobFailed");
    assert!(message.contains("UpdateStack failed: ValidationError"), "{message}");
    assert_eq!(fake.calls(), ["update"]);
}

#[tokio::test]
async fn a_stack_still_in_progress_at_the_deadline_times_out() {
    let fake = FakeStacks::answering(&[None, Some(("CREATE_IN_PROGRESS", None))]);

    let (code, message) = failed(run_fake(&fake, "CREATE_UPDATE", 100).await.unwrap());

    assert_eq!(code, "TimedOut");
    assert!(message.contains("CREATE_IN_PROGRESS"), "{message}");
}

#[tokio::test]
async fn a_stack_that_outlasts_the_worker_is_handed_over_and_followed_until_it_settles() {
    let fake = FakeStacks::answering(&[
        None,
        Some(("CREATE_IN_PROGRESS", None)),
        Some(("CREATE_IN_PROGRESS", None)),
        Some(("CREATE_COMPLETE", None)),
    ]);
    let dir = TempDir::new().unwrap();
    let source = zip_of(&dir, "src", &[("t.json", b"{\"Resources\": {}}")]);
    let provider = CloudFormationProvider::with_api(fake.clone())
        .with_backoff(FAST)
        .with_wait_in_worker(Duration::ZERO);
    let deploy = request(
        "Deploy",
        "CloudFormation",
        &[
            ("ActionMode", "CREATE_UPDATE"),
            ("StackName", "app"),
            ("TemplatePath", "Src::t.json"),
            ("OutputFileName", "outputs.json"),
        ],
        &["Outputs"],
    );

    // The worker starts the creation and hands it over instead of waiting.
    let started = provider.run(&job(&dir, deploy.clone(), &[("Src", &source)])).await.unwrap();
    let JobResult::Running { external_id: stack, external_url } = started else {
        panic!("the creation was not handed over: {started:?}");
    };
    assert!(stack.ends_with(":stack/app/1"), "{stack}");
    assert!(external_url.unwrap().contains("cloudformation"));

    // Later looks need no inputs: still creating, then created with its outputs.
    let again = provider.resume(&job(&dir, deploy.clone(), &[]), &stack).await.unwrap();
    assert!(matches!(again, JobResult::Running { .. }), "{again:?}");
    let (artifacts, variables, id) =
        succeeded(provider.resume(&job(&dir, deploy, &[]), &stack).await.unwrap());
    assert_eq!(id.as_deref(), Some(stack.as_str()));
    assert_eq!(variables.get("Url").map(String::as_str), Some("https://x"));
    assert!(zip_entry(&artifacts[0].path, "outputs.json").contains("https://x"));
    assert_eq!(fake.calls(), ["create"], "the stack was created once");
}

#[tokio::test]
async fn a_handed_over_stack_still_in_progress_past_the_deadline_times_out() {
    let fake = FakeStacks::answering(&[Some(("UPDATE_IN_PROGRESS", None))]);
    let dir = TempDir::new().unwrap();
    let provider = CloudFormationProvider::with_api(fake.clone()).with_backoff(FAST);
    let mut deploy = request(
        "Deploy",
        "CloudFormation",
        &[("ActionMode", "CREATE_UPDATE"), ("StackName", "app"), ("TemplatePath", "Src::t.json")],
        &[],
    );
    deploy.deadline = now_ms() - 1;

    let stack = "arn:aws:cloudformation:eu-west-1:222222222222:stack/app/1";
    let (code, message) = failed(provider.resume(&job(&dir, deploy, &[]), stack).await.unwrap());

    assert_eq!(code, "TimedOut");
    assert!(message.contains("UPDATE_IN_PROGRESS"), "{message}");
}

#[tokio::test]
async fn a_stack_in_progress_is_waited_for_before_acting() {
    let fake = FakeStacks::answering(&[
        Some(("UPDATE_IN_PROGRESS", None)),
        Some(("UPDATE_COMPLETE", None)),
        Some(("UPDATE_IN_PROGRESS", None)),
        Some(("UPDATE_COMPLETE", None)),
    ]);

    succeeded(run_fake(&fake, "CREATE_UPDATE", 60_000).await.unwrap());

    assert_eq!(fake.calls(), ["update"]);
}

#[tokio::test]
async fn throttling_is_retryable_and_a_refusal_is_not() {
    let fake = FakeStacks::answering(&[None]);
    *fake.create.lock().unwrap() = Some(CfnError::Unavailable("throttled".into()));
    let throttled = run_fake(&fake, "CREATE_UPDATE", 60_000).await;
    assert!(matches!(throttled, Err(ProviderError::Unavailable(_))), "{throttled:?}");

    *fake.create.lock().unwrap() = Some(CfnError::Refused {
        code: "InsufficientCapabilitiesException".into(),
        message: "Requires capabilities : [CAPABILITY_IAM]".into(),
    });
    let (code, message) = failed(run_fake(&fake, "CREATE_UPDATE", 60_000).await.unwrap());
    assert_eq!(code, "JobFailed");
    assert!(message.contains("CAPABILITY_IAM"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// S3 and CodeBuild on moto

#[tokio::test]
async fn an_extracting_s3_deploy_writes_every_file_under_the_prefix() {
    let dir = TempDir::new().unwrap();
    let config = sdk_config(DEPLOY_REGION).await;
    let s3 = sdk::s3(&config);
    let site = bucket(&config, "baton-site").await;
    let key = kms_keys(&config, 1).await.remove(0);
    let artifact = zip_of(
        &dir,
        "site",
        &[("index.html", b"<h1>hi</h1>"), ("assets/app.js", b"go()"), ("assets/raw.bin", b"\0")],
    );
    let deploy = request(
        "Deploy",
        "S3",
        &[
            ("BucketName", site.as_str()),
            ("Extract", "true"),
            ("ObjectKey", "v1/"),
            ("KMSEncryptionKeyARN", key.as_str()),
            ("CacheControl", "max-age=60"),
            ("CannedACL", "private"),
        ],
        &[],
    );
    let provider = S3DeployProvider::new(roles().await);

    succeeded(provider.run(&job(&dir, deploy, &[("Site", &artifact)])).await.unwrap());

    let listed = s3.list_objects_v2().bucket(&site).send().await.unwrap();
    let mut keys: Vec<_> = listed.contents().iter().map(|o| o.key().unwrap().to_owned()).collect();
    keys.sort();
    assert_eq!(keys, ["v1/assets/app.js", "v1/assets/raw.bin", "v1/index.html"]);
    for (key_name, content_type) in
        [("v1/index.html", "text/html"), ("v1/assets/app.js", "application/javascript")]
    {
        let head = s3.head_object().bucket(&site).key(key_name).send().await.unwrap();
        assert_eq!(head.content_type(), Some(content_type));
        assert_eq!(head.cache_control(), Some("max-age=60"));
        assert_eq!(head.server_side_encryption(), Some(&ServerSideEncryption::AwsKms));
        assert_eq!(head.ssekms_key_id(), Some(key.as_str()));
    }
    let page = s3.get_object().bucket(&site).key("v1/index.html").send().await.unwrap();
    assert_eq!(page.body.collect().await.unwrap().into_bytes().as_ref(), b"<h1>hi</h1>");
}

#[tokio::test]
async fn a_non_extracting_s3_deploy_uploads_the_zip_as_one_object() {
    let dir = TempDir::new().unwrap();
    let config = sdk_config(DEPLOY_REGION).await;
    let s3 = sdk::s3(&config);
    let target = bucket(&config, "baton-drop").await;
    let artifact = zip_of(&dir, "build", &[("app.jar", b"jar bytes")]);
    let deploy = request(
        "Deploy",
        "S3",
        &[("BucketName", target.as_str()), ("Extract", "false"), ("ObjectKey", "builds/app.zip")],
        &[],
    );
    let provider = S3DeployProvider::new(roles().await);

    succeeded(provider.run(&job(&dir, deploy, &[("Build", &artifact)])).await.unwrap());

    let object = s3.get_object().bucket(&target).key("builds/app.zip").send().await.unwrap();
    assert_eq!(object.content_type(), Some("application/zip"));
    let bytes = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(bytes.as_ref(), std::fs::read(&artifact).unwrap().as_slice());
    let missing_key =
        request("Deploy", "S3", &[("BucketName", target.as_str()), ("Extract", "false")], &[]);
    let (code, _) =
        failed(provider.run(&job(&dir, missing_key, &[("Build", &artifact)])).await.unwrap());
    assert_eq!(code, "ConfigurationError");
}

/// A bucket named after `prefix` that keeps object versions, as source buckets do.
async fn versioned_bucket(config: &aws_config::SdkConfig, prefix: &str) -> String {
    let name = bucket(config, prefix).await;
    sdk::s3(config)
        .put_bucket_versioning()
        .bucket(&name)
        .versioning_configuration(
            VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build(),
        )
        .send()
        .await
        .unwrap();
    name
}

/// The polled action `provider` of `config`, in the deploy region.
fn polled(provider: &str, config: &[(&str, &str)]) -> baton::core::plan::ActionPlan {
    let r = request("Source", provider, config, &["Src"]);
    baton::core::plan::ActionPlan {
        name: "Poll".into(),
        action_type: r.action_type,
        run_order: 1,
        configuration: r.configuration,
        commands: Vec::new(),
        input_artifacts: Vec::new(),
        output_artifacts: vec!["Src".into()],
        namespace: None,
        region: DEPLOY_REGION.into(),
        role_arn: None,
        timeout_minutes: 60,
        output_artifact_files: Vec::new(),
        output_variables: Vec::new(),
        environment_variables: Vec::new(),
    }
}

#[tokio::test]
async fn a_polled_s3_or_codecommit_source_tells_its_latest_revision() {
    let config = sdk_config(DEPLOY_REGION).await;
    let name = versioned_bucket(&config, "baton-polled").await;
    let s3 = sdk::s3(&config);
    let provider = S3SourceProvider::new(roles().await);
    let action = polled("S3", &[("S3Bucket", name.as_str()), ("S3ObjectKey", "app.zip")]);
    assert_eq!(provider.latest_revision(&action).await, None, "no object yet");
    let put = |body: &'static [u8]| {
        s3.put_object().bucket(&name).key("app.zip").body(ByteStream::from_static(body)).send()
    };
    let first = put(b"one").await.unwrap().version_id.unwrap();
    let seen = provider.latest_revision(&action).await.unwrap();
    assert_eq!(
        (seen.revision_type.as_str(), seen.value.as_str()),
        ("S3_OBJECT_VERSION_ID", first.as_str())
    );
    let second = put(b"two").await.unwrap().version_id.unwrap();
    assert_eq!(provider.latest_revision(&action).await.unwrap().value, second);

    let repo = CodeCommitSourceProvider::with_api(Arc::new(FakeRepository {
        files: vec![],
        unavailable: false,
    }));
    let head = repo
        .latest_revision(&polled(
            "CodeCommit",
            &[("RepositoryName", "app"), ("BranchName", "main")],
        ))
        .await;
    assert_eq!(
        head.map(|h| (h.revision_type, h.value)),
        Some(("COMMIT_ID".to_owned(), HEAD.to_owned()))
    );
    let none = repo
        .latest_revision(&polled(
            "CodeCommit",
            &[("RepositoryName", "app"), ("BranchName", "gone")],
        ))
        .await;
    assert_eq!(none, None, "a missing branch has no revision to start");
}

/// The upload that started an execution (or `sourceRevisions`) is what it runs, though the
/// object changed since.
#[tokio::test]
async fn an_s3_source_fetches_the_pinned_version_or_key() {
    let dir = TempDir::new().unwrap();
    let config = sdk_config(PIPELINE_REGION).await;
    let s3 = sdk::s3(&config);
    let sources = versioned_bucket(&config, "baton-pinned").await;
    let put = |key: &'static str, zip: std::path::PathBuf| {
        let s3 = s3.clone();
        let bucket = sources.clone();
        async move {
            let body = ByteStream::from_path(&zip).await.unwrap();
            s3.put_object().bucket(bucket).key(key).body(body).send().await.unwrap()
        }
    };
    let first = zip_of(&dir, "one", &[("v.txt", b"1")]);
    let second = zip_of(&dir, "two", &[("v.txt", b"2")]);
    let v1 = put("app.zip", first.clone()).await.version_id().unwrap().to_owned();
    put("app.zip", second.clone()).await;
    put("other.zip", second.clone()).await;
    let provider = S3SourceProvider::new(roles().await);
    let fetch = |kind: &str, value: &str| {
        let mut r = request(
            "Source",
            "S3",
            &[("S3Bucket", sources.as_str()), ("S3ObjectKey", "app.zip")],
            &["Src"],
        );
        r.region = PIPELINE_REGION.into();
        r.source_revision = Some(baton_core::engine::SourceRevision {
            revision_type: kind.into(),
            value: value.into(),
            branch: None,
        });
        r
    };
    let (artifacts, variables, _) =
        succeeded(provider.run(&job(&dir, fetch("S3_OBJECT_VERSION_ID", &v1), &[])).await.unwrap());
    assert_eq!(std::fs::read(&artifacts[0].path).unwrap(), std::fs::read(&first).unwrap());
    assert_eq!(variables["VersionId"], v1);
    let (artifacts, _, _) = succeeded(
        provider.run(&job(&dir, fetch("S3_OBJECT_KEY", "other.zip"), &[])).await.unwrap(),
    );
    assert_eq!(std::fs::read(&artifacts[0].path).unwrap(), std::fs::read(&second).unwrap());
}

#[tokio::test]
async fn an_s3_source_fetches_the_zip_with_its_etag_and_version() {
    let dir = TempDir::new().unwrap();
    let config = sdk_config(PIPELINE_REGION).await;
    let s3 = sdk::s3(&config);
    let sources = versioned_bucket(&config, "baton-src").await;
    let zip = zip_of(&dir, "app", &[("README.md", b"hello")]);
    let put = s3
        .put_object()
        .bucket(&sources)
        .key("app/source.zip")
        .body(ByteStream::from_path(&zip).await.unwrap())
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket(&sources)
        .key("app/notes.txt")
        .body(ByteStream::from_static(b"not a zip"))
        .send()
        .await
        .unwrap();
    let provider = S3SourceProvider::new(roles().await);
    let fetch = |key: &str| {
        let mut r = request(
            "Source",
            "S3",
            &[("S3Bucket", sources.as_str()), ("S3ObjectKey", key)],
            &["SourceArtifact"],
        );
        r.region = PIPELINE_REGION.into();
        r
    };

    let (artifacts, variables, _) =
        succeeded(provider.run(&job(&dir, fetch("app/source.zip"), &[])).await.unwrap());

    assert_eq!(artifacts[0].name, "SourceArtifact");
    assert_eq!(std::fs::read(&artifacts[0].path).unwrap(), std::fs::read(&zip).unwrap());
    assert_eq!(
        variables.get("ETag").map(String::as_str),
        Some(put.e_tag().unwrap().trim_matches('"'))
    );
    assert_eq!(variables.get("VersionId").map(String::as_str), put.version_id());
    let (code, message) =
        failed(provider.run(&job(&dir, fetch("app/notes.txt"), &[])).await.unwrap());
    assert_eq!(code, "JobFailed");
    assert!(message.contains("not a zip"), "{message}");
    let (code, _) = failed(provider.run(&job(&dir, fetch("app/missing.zip"), &[])).await.unwrap());
    assert_eq!(code, "ConfigurationError");
}

/// A CodeBuild project named `project` on moto (whose builds always succeed).
async fn codebuild_project(project: &str) {
    use aws_sdk_codebuild::types::{
        ArtifactsType, ComputeType, EnvironmentType, ProjectArtifacts, ProjectEnvironment,
        ProjectSource, SourceType,
    };
    let codebuild = aws_sdk_codebuild::Client::new(&sdk_config(DEPLOY_REGION).await);
    codebuild
        .create_project()
        .name(project)
        .source(
            ProjectSource::builder()
                .r#type(SourceType::S3)
                .location("bucket/source.zip")
                .build()
                .unwrap(),
        )
        .artifacts(ProjectArtifacts::builder().r#type(ArtifactsType::NoArtifacts).build().unwrap())
        .environment(
            ProjectEnvironment::builder()
                .r#type(EnvironmentType::LinuxContainer)
                .image("aws/codebuild/standard:7.0")
                .compute_type(ComputeType::BuildGeneral1Small)
                .build()
                .unwrap(),
        )
        .service_role("arn:aws:iam::123456789012:role/Build")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_codebuild_build_is_started_then_followed_to_its_end() {
    let dir = TempDir::new().unwrap();
    let project = unique("baton-build");
    codebuild_project(&project).await;
    let provider = CodeBuildProvider::new(roles().await);
    let build = request(
        "Build",
        "CodeBuild",
        &[
            ("ProjectName", project.as_str()),
            ("EnvironmentVariables", r#"[{"name":"STAGE","value":"prod","type":"PLAINTEXT"}]"#),
        ],
        &[],
    );

    // Starting answers at once with the build to follow; it is not waited for.
    let started = provider.run(&job(&dir, build.clone(), &[])).await.unwrap();
    let JobResult::Running { external_id: id, external_url } = started else {
        panic!("the build was not left running: {started:?}");
    };
    assert!(id.starts_with(&format!("{project}:")), "{id}");
    assert!(external_url.unwrap().contains(&format!("/codebuild/projects/{project}/")));

    // Looking again (moto's builds end at the first look) gives the verdict.
    let result = provider.resume(&job(&dir, build.clone(), &[]), &id).await.unwrap();
    let JobResult::Succeeded { external_id, external_url, summary, .. } = result else {
        panic!("the build failed: {result:?}");
    };
    assert_eq!(external_id.as_deref(), Some(id.as_str()));
    assert!(external_url.unwrap().contains("/codebuild/projects/"));
    assert_eq!(summary, Some(format!("Build {id} succeeded")));

    // A build that is not there fails the attempt with its id, not the worker.
    let gone = format!("{project}:00000000-0000-0000-0000-000000000000");
    match provider.resume(&job(&dir, build, &[]), &gone).await.unwrap() {
        JobResult::Failed { code, message } => {
            assert_eq!(code, "JobFailed");
            assert!(message.contains(&gone), "{message}");
        }
        other => panic!("a missing build did not fail: {other:?}"),
    }
}

#[tokio::test]
async fn commands_run_as_a_build_of_the_commands_project_on_the_artifacts_in_place() {
    let dir = TempDir::new().unwrap();
    let project = unique("baton-commands");
    codebuild_project(&project).await;
    let provider = CommandsProvider::new(CodeBuildProvider::new(roles().await), project.clone());
    let mut commands = request("Compute", "Commands", &[], &["Site"]);
    commands.commands = vec!["npm ci".into(), "npm run build".into()];
    commands.output_artifact_files = vec![("Site".into(), vec!["dist/**/*".into()])];
    let place = |key: &str| ArtifactLocation { bucket: "artifacts".into(), key: key.into() };
    let mut attempt = job(&dir, commands.clone(), &[]);
    attempt.in_place = Some(InPlaceArtifacts {
        inputs: vec![("Source".into(), place("release/e/Source/1.zip"))],
        outputs: vec![("Site".into(), place("release/e/Site/1.zip"))],
        kms_key_arn: "arn:aws:kms:us-east-1:123456789012:key/k".into(),
    });

    let started = provider.run(&attempt).await.unwrap();
    let JobResult::Running { external_id: id, .. } = started else {
        panic!("the commands' build was not left running: {started:?}");
    };
    assert!(id.starts_with(&format!("{project}:")), "a build of the Commands project: {id}");
    let result = provider.resume(&attempt, &id).await.unwrap();
    assert!(matches!(result, JobResult::Succeeded { .. }), "{result:?}");

    // Without commands nothing starts, and the action says why.
    commands.commands.clear();
    match provider.run(&job(&dir, commands, &[])).await.unwrap() {
        JobResult::Failed { code, message } => {
            assert_eq!(code, "ConfigurationError");
            assert!(message.contains("at least one command"), "{message}");
        }
        other => panic!("commandless action did not fail: {other:?}"),
    }
}

#[tokio::test]
async fn a_commands_rule_starts_its_build_once_then_follows_it_to_its_verdict() {
    let dir = TempDir::new().unwrap();
    let project = unique("baton-rule-commands");
    codebuild_project(&project).await;
    let rule = CommandsRule::new(CodeBuildProvider::new(roles().await), project.clone());
    let mut request: RuleRequest = serde_json::from_value(serde_json::json!({
        "pipeline": "release", "pipeline_version": 1, "execution_id": "e", "stage": "Deploy",
        "condition": "OnSuccess", "rule": "Smoke", "request": 1, "provider": "Commands",
        "configuration": {}, "commands": ["curl -f https://example.com/health"],
        "input_artifacts": [], "region": DEPLOY_REGION, "role_arn": null,
        "started_at": now_ms(), "deadline": now_ms() + 600_000
    }))
    .unwrap();
    let check = |request: RuleRequest| RuleCheck {
        request,
        inputs: Vec::new(),
        work_dir: dir.path().to_path_buf(),
        log_path: dir.path().join("rule.log"),
        now: now_ms(),
        in_place: Some(InPlaceArtifacts {
            inputs: vec![(
                "Bundle".into(),
                ArtifactLocation {
                    bucket: "artifacts".into(),
                    key: "release/e/Bundle/1.zip".into(),
                },
            )],
            outputs: Vec::new(),
            kms_key_arn: "arn:aws:kms:us-east-1:123456789012:key/k".into(),
        }),
    };

    let (first, held) = rule.evaluate_held(&check(request.clone())).await.unwrap();
    let build = held.expect("the build's id, for the next evaluation");
    assert!(build.starts_with(&format!("{project}:")), "{build}");
    assert_eq!(first, Verdict::Wait(format!("Build {build} is running")));

    request.request = 2;
    request.handle = Some(build.clone());
    let (second, held) = rule.evaluate_held(&check(request)).await.unwrap();
    assert_eq!(second, Verdict::Pass(format!("Build {build} succeeded")), "moto's builds succeed");
    assert_eq!(held, None);
}

// ---------------------------------------------------------------------------------------------
// Elastic Beanstalk: a fake for deployments (moto has no CreateApplicationVersion or
// UpdateEnvironment), moto for reading environments

/// Scripted Elastic Beanstalk: each look pops the next environment (the last one stays) and
/// the errors logged so far; calls are recorded.
#[derive(Default)]
struct FakeBeanstalk {
    environments: Mutex<VecDeque<Option<(&'static str, &'static str)>>>,
    errors: Mutex<Vec<String>>,
    calls: Mutex<Vec<String>>,
}

impl FakeBeanstalk {
    fn answering(looks: &[Option<(&'static str, &'static str)>]) -> Arc<Self> {
        let fake = Self::default();
        *fake.environments.lock().unwrap() = looks.iter().copied().collect();
        Arc::new(fake)
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl BeanstalkApi for FakeBeanstalk {
    async fn create_version(
        &self,
        app: &str,
        label: &str,
        (bucket, key): (&str, &str),
        _: &str,
    ) -> Result<(), Stop> {
        self.calls.lock().unwrap().push(format!("version {app} {label} s3://{bucket}/{key}"));
        Ok(())
    }

    async fn update_environment(&self, _: &str, env: &str, label: &str) -> Result<(), Stop> {
        self.calls.lock().unwrap().push(format!("update {env} {label}"));
        Ok(())
    }

    async fn environment(&self, _: &str, _: &str) -> Result<Option<Environment>, Stop> {
        let mut looks = self.environments.lock().unwrap();
        let look = if looks.len() > 1 { looks.pop_front() } else { looks.front().copied() };
        Ok(look.flatten().map(|(status, version)| Environment {
            status: status.into(),
            version_label: Some(
                version.replace("LABEL", "baton-0c5c7a4e-1111-2222-3333-444455556666-1"),
            ),
            health: Some("Green".into()),
        }))
    }

    async fn errors_since(&self, _: &str, _: &str, _: i64) -> Result<Vec<String>, Stop> {
        Ok(self.errors.lock().unwrap().clone())
    }

    async fn abort(&self, env: &str) {
        self.calls.lock().unwrap().push(format!("abort {env}"));
    }
}

fn beanstalk_job(dir: &TempDir, deadline_in_ms: i64) -> Job {
    let config = [("ApplicationName", "shop"), ("EnvironmentName", "shop-prod")];
    let mut deploy = request("Deploy", "ElasticBeanstalk", &config, &[]);
    deploy.deadline = now_ms() + deadline_in_ms;
    let mut attempt = job(dir, deploy, &[]);
    attempt.in_place = Some(InPlaceArtifacts {
        inputs: vec![(
            "App".into(),
            ArtifactLocation { bucket: "artifacts".into(), key: "release/e/App/1.zip".into() },
        )],
        outputs: Vec::new(),
        kms_key_arn: String::new(),
    });
    attempt
}

/// Runs the deployment, then looks until it ends.
async fn deploy_to_end(provider: &BeanstalkProvider, job: &Job) -> JobResult {
    let mut result = provider.run(job).await.unwrap();
    while let JobResult::Running { external_id, .. } = &result {
        result = provider.resume(job, external_id).await.unwrap();
    }
    result
}

#[tokio::test]
async fn a_beanstalk_deploy_makes_a_version_of_the_artifact_and_waits_for_the_environment() {
    let dir = TempDir::new().unwrap();
    let fake = FakeBeanstalk::answering(&[
        Some(("Ready", "v0")),
        Some(("Updating", "v0")),
        Some(("Updating", "LABEL")),
        Some(("Ready", "LABEL")),
    ]);
    let provider = BeanstalkProvider::with_api(fake.clone());
    let label = "baton-0c5c7a4e-1111-2222-3333-444455556666-1";

    let result = deploy_to_end(&provider, &beanstalk_job(&dir, 60_000)).await;
    let (_, _, revision) = succeeded(result);
    assert_eq!(revision.as_deref(), Some(label));
    assert_eq!(
        fake.calls(),
        [
            format!("version shop {label} s3://artifacts/release/e/App/1.zip"),
            format!("update shop-prod {label}"),
        ]
    );
}

#[tokio::test]
async fn a_beanstalk_deploy_rolled_back_or_late_fails_saying_why() {
    let dir = TempDir::new().unwrap();
    // Elastic Beanstalk put the old version back, and logged why.
    let fake = FakeBeanstalk::answering(&[Some(("Ready", "v0")), Some(("Ready", "v0"))]);
    fake.errors.lock().unwrap().push("Failed to deploy application.".into());
    let provider = BeanstalkProvider::with_api(fake);
    let (code, message) = failed(deploy_to_end(&provider, &beanstalk_job(&dir, 60_000)).await);
    assert_eq!(code, "JobFailed");
    assert!(
        message.contains("back on version v0") && message.contains("Failed to deploy"),
        "{message}"
    );

    // Still updating at the time-out: aborted.
    let fake = FakeBeanstalk::answering(&[Some(("Ready", "v0")), Some(("Updating", "v0"))]);
    let provider = BeanstalkProvider::with_api(fake.clone());
    let (code, _) = failed(deploy_to_end(&provider, &beanstalk_job(&dir, -1)).await);
    assert_eq!(code, "TimedOut");
    assert_eq!(fake.calls().last().map(String::as_str), Some("abort shop-prod"));

    // No such environment: nothing is made.
    let fake = FakeBeanstalk::answering(&[None]);
    let provider = BeanstalkProvider::with_api(fake.clone());
    let (code, message) = failed(provider.run(&beanstalk_job(&dir, 60_000)).await.unwrap());
    assert_eq!(code, "ConfigurationError");
    assert!(message.contains("shop-prod of shop does not exist"), "{message}");
    assert!(fake.calls().is_empty());

    // Artifacts in local files (one machine): said so.
    let mut local = beanstalk_job(&dir, 60_000);
    local.in_place = None;
    let (code, message) = failed(provider.run(&local).await.unwrap());
    assert_eq!(code, "ConfigurationError");
    assert!(message.contains("reads the application version from S3"), "{message}");
}

#[tokio::test]
async fn the_sdk_reads_a_beanstalk_environment_and_knows_a_missing_one() {
    let eb = aws_sdk_elasticbeanstalk::Client::new(&sdk_config(DEPLOY_REGION).await);
    let app = unique("shop");
    eb.create_application().application_name(&app).send().await.unwrap();
    eb.create_environment()
        .application_name(&app)
        .environment_name("prod")
        .solution_stack_name("64bit Amazon Linux 2023 v4.0.0 running Python 3.11")
        .send()
        .await
        .unwrap();
    let api = SdkBeanstalk::new(eb);
    let env = api.environment(&app, "prod").await.unwrap().expect("the environment");
    assert_eq!(env.status, "Ready");
    assert!(api.environment(&app, "staging").await.unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// Lambda deploys on moto, alarms from a fake (moto's CloudWatch does not speak the current SDK)

/// Alarms: the names listed are in ALARM.
#[derive(Default)]
struct Firing(Mutex<Vec<String>>);

#[async_trait]
impl AlarmStates for Firing {
    async fn firing(&self, _: &ActionRequest, names: &[String]) -> Result<Vec<String>, Stop> {
        Ok(self.0.lock().unwrap().iter().filter(|n| names.contains(n)).cloned().collect())
    }
}

/// A role Lambda may run functions as, made through moto's CloudFormation.
async fn lambda_role(config: &aws_config::SdkConfig) -> String {
    let cfn = aws_sdk_cloudformation::Client::new(config);
    let stack = unique("lambda-role");
    let template = serde_json::json!({"Resources": {"Role": {"Type": "AWS::IAM::Role",
        "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
             "Action": "sts:AssumeRole"}]}}}},
        "Outputs": {"Arn": {"Value": {"Fn::GetAtt": ["Role", "Arn"]}}}});
    cfn.create_stack().stack_name(&stack).template_body(template.to_string()).send().await.unwrap();
    let described = cfn.describe_stacks().stack_name(&stack).send().await.unwrap();
    described.stacks()[0].outputs()[0].output_value().unwrap().to_owned()
}

/// The alias's version and its extra weights.
async fn alias_of(lambda: &aws_sdk_lambda::Client, function: &str) -> (String, Vec<(String, f64)>) {
    let alias = lambda.get_alias().function_name(function).name("live").send().await.unwrap();
    let mut weights: Vec<(String, f64)> = alias
        .routing_config()
        .and_then(|r| r.additional_version_weights())
        .map(|w| w.iter().map(|(k, v)| (k.clone(), *v)).collect())
        .unwrap_or_default();
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    (alias.function_version().unwrap().to_owned(), weights)
}

#[tokio::test]
async fn a_lambda_deploy_shifts_the_alias_by_its_canary_and_rolls_back_on_an_alarm() {
    let dir = TempDir::new().unwrap();
    // The function lives in the target account, deployed through its deploy role.
    let config = roles().await.config(Some(DEPLOY_ROLE), DEPLOY_REGION, "check").await.unwrap();
    let lambda = aws_sdk_lambda::Client::new(&config);
    let function = unique("orders");
    let code = |version: &str| {
        zip_of(&dir, "code", &[("index.py", format!("V = {version}\n").as_bytes())])
    };
    lambda
        .create_function()
        .function_name(&function)
        .runtime(aws_sdk_lambda::types::Runtime::Python312)
        .handler("index.handler")
        .role(lambda_role(&config).await)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(std::fs::read(code("1")).unwrap()))
                .build(),
        )
        .publish(true)
        .send()
        .await
        .unwrap();
    lambda
        .create_alias()
        .function_name(&function)
        .name("live")
        .function_version("1")
        .send()
        .await
        .unwrap();
    let alarms = Arc::new(Firing::default());
    let provider = LambdaDeployProvider::new(roles().await).with_alarms(alarms.clone());
    let deploy = |strategy: &str| {
        let mut r = request(
            "Deploy",
            "Lambda",
            &[
                ("FunctionName", function.as_str()),
                ("FunctionAlias", "live"),
                ("DeployStrategy", strategy),
                ("Alarms", "orders-errors"),
            ],
            &[],
        );
        r.role_arn = Some(DEPLOY_ROLE.into());
        r
    };

    // A canary: the new version takes 10 percent, the alias stays on the old one.
    let attempt = job(&dir, deploy("Canary10Percent5Minutes"), &[("Code", &code("2"))]);
    let JobResult::Running { external_id, .. } = provider.run(&attempt).await.unwrap() else {
        panic!("the canary did not wait");
    };
    let mut handle: LambdaHandle = serde_json::from_str(&external_id).unwrap();
    assert_eq!((handle.original.as_str(), handle.version.as_str()), ("1", "2"));
    assert_eq!(alias_of(&lambda, &function).await, ("1".to_owned(), vec![("2".to_owned(), 0.1)]));
    // Looked at before its five minutes are up: nothing moves.
    let again = provider.resume(&attempt, &external_id).await.unwrap();
    assert!(matches!(again, JobResult::Running { .. }), "{again:?}");
    // Its time is up: all traffic on the new version.
    handle.next_ms = 0;
    let done = provider.resume(&attempt, &serde_json::to_string(&handle).unwrap()).await.unwrap();
    let (_, variables, _) = succeeded(done);
    assert_eq!(variables["FunctionVersion"], "2");
    assert_eq!(alias_of(&lambda, &function).await, ("2".to_owned(), vec![]));

    // The next canary meets a firing alarm: back on version 2, and the action fails.
    let attempt = job(&dir, deploy("Linear50PercentEvery1Minute"), &[("Code", &code("3"))]);
    let JobResult::Running { external_id, .. } = provider.run(&attempt).await.unwrap() else {
        panic!("the linear shift did not wait");
    };
    assert_eq!(alias_of(&lambda, &function).await, ("2".to_owned(), vec![("3".to_owned(), 0.5)]));
    alarms.0.lock().unwrap().push("orders-errors".into());
    let (code_, message) = failed(provider.resume(&attempt, &external_id).await.unwrap());
    assert_eq!(code_, "JobFailed");
    assert!(
        message.contains("orders-errors is in ALARM") && message.contains("version 2"),
        "{message}"
    );
    assert_eq!(alias_of(&lambda, &function).await, ("2".to_owned(), vec![]));

    // Without an alias: the code becomes a new version, and that is all.
    let mut publish = request("Deploy", "Lambda", &[("FunctionName", function.as_str())], &[]);
    publish.role_arn = Some(DEPLOY_ROLE.into());
    let (_, variables, _) =
        succeeded(provider.run(&job(&dir, publish, &[("Code", &code("4"))])).await.unwrap());
    assert_eq!(variables["FunctionVersion"], "4");
}

// ---------------------------------------------------------------------------------------------
// AppConfig: moto for the profile and its hosted versions, a fake for deployments (moto has
// neither environments nor deployments)

/// Scripted AppConfig: a profile at `location`, deployments answering the states in turn (the
/// last one stays); calls are recorded.
struct FakeAppConfig {
    location: &'static str,
    states: Mutex<VecDeque<&'static str>>,
    calls: Mutex<Vec<String>>,
}

impl FakeAppConfig {
    fn new(location: &'static str, states: &[&'static str]) -> Arc<Self> {
        Arc::new(Self {
            location,
            states: Mutex::new(states.iter().copied().collect()),
            calls: Mutex::default(),
        })
    }
}

#[async_trait]
impl AppConfigApi for FakeAppConfig {
    async fn profile_location(&self, _: AppConfigTarget<'_>) -> Result<String, Stop> {
        Ok(self.location.into())
    }

    async fn create_hosted_version(
        &self,
        t: AppConfigTarget<'_>,
        content: Vec<u8>,
        content_type: &str,
    ) -> Result<String, Stop> {
        let text = String::from_utf8(content).unwrap();
        self.calls.lock().unwrap().push(format!("version {} {content_type} {text}", t.profile));
        Ok("7".into())
    }

    async fn start_deployment(
        &self,
        t: AppConfigTarget<'_>,
        strategy: &str,
        version: &str,
        _: &str,
    ) -> Result<i32, Stop> {
        self.calls.lock().unwrap().push(format!("deploy {} {strategy} {version}", t.environment));
        Ok(3)
    }

    async fn deployment(
        &self,
        _: AppConfigTarget<'_>,
        _: i32,
    ) -> Result<AppConfigDeployment, Stop> {
        let mut states = self.states.lock().unwrap();
        let state = if states.len() > 1 { states.pop_front() } else { states.front().copied() };
        Ok(AppConfigDeployment {
            state: state.unwrap_or("DEPLOYING").into(),
            events: vec!["Alarm flags-errors went into ALARM".into()],
        })
    }

    async fn stop_deployment(&self, _: AppConfigTarget<'_>, number: i32) {
        self.calls.lock().unwrap().push(format!("stop {number}"));
    }
}

fn appconfig_job(dir: &TempDir, strategy: Option<&str>, deadline_in_ms: i64) -> Job {
    let mut config = vec![
        ("Application", "app1"),
        ("Environment", "env1"),
        ("ConfigurationProfile", "prof1"),
        ("InputArtifactConfigurationPath", "conf/flags.json"),
    ];
    config.extend(strategy.map(|s| ("DeploymentStrategy", s)));
    let mut deploy = request("Deploy", "AppConfig", &config, &[]);
    deploy.deadline = now_ms() + deadline_in_ms;
    let zip = zip_of(dir, "conf", &[("conf/flags.json", br#"{"dark": true}"#)]);
    job(dir, deploy, &[("Conf", &zip)])
}

#[tokio::test]
async fn an_appconfig_deploy_writes_a_hosted_version_and_follows_its_deployment() {
    let dir = TempDir::new().unwrap();
    let fake = FakeAppConfig::new("hosted", &["DEPLOYING", "BAKING", "COMPLETE"]);
    let provider = AppConfigProvider::with_api(fake.clone());
    let attempt = appconfig_job(&dir, Some("Canary10Percent20Minutes"), 60_000);
    let mut result = provider.run(&attempt).await.unwrap();
    while let JobResult::Running { external_id, .. } = &result {
        result = provider.resume(&attempt, external_id).await.unwrap();
    }
    let (_, _, id) = succeeded(result);
    assert_eq!(id.as_deref(), Some("3"));
    assert_eq!(
        *fake.calls.lock().unwrap(),
        [
            r#"version prof1 application/json {"dark": true}"#.to_owned(),
            "deploy env1 Canary10Percent20Minutes 7".to_owned(),
        ]
    );

    // Rolled back by AppConfig: the action fails with its newest event.
    let fake = FakeAppConfig::new("hosted", &["ROLLED_BACK"]);
    let provider = AppConfigProvider::with_api(fake.clone());
    let attempt = appconfig_job(&dir, None, 60_000);
    let JobResult::Running { external_id, .. } = provider.run(&attempt).await.unwrap() else {
        panic!("the deployment did not start");
    };
    assert_eq!(fake.calls.lock().unwrap()[1], "deploy env1 AppConfig.AllAtOnce 7");
    let (code, message) = failed(provider.resume(&attempt, &external_id).await.unwrap());
    assert_eq!(code, "JobFailed");
    assert!(message.contains("was rolled back: Alarm flags-errors went into ALARM"), "{message}");

    // Late: stopped.
    let fake = FakeAppConfig::new("hosted", &["DEPLOYING"]);
    let provider = AppConfigProvider::with_api(fake.clone());
    let attempt = appconfig_job(&dir, None, -1);
    let JobResult::Running { external_id, .. } = provider.run(&attempt).await.unwrap() else {
        panic!("the deployment did not start");
    };
    let (code, _) = failed(provider.resume(&attempt, &external_id).await.unwrap());
    assert_eq!(code, "TimedOut");
    assert_eq!(fake.calls.lock().unwrap().last().map(String::as_str), Some("stop 3"));

    // A profile AppConfig reads from CodePipeline itself: refused, saying what to use.
    let fake = FakeAppConfig::new("codepipeline://release", &[]);
    let provider = AppConfigProvider::with_api(fake.clone());
    let (code, message) = failed(provider.run(&appconfig_job(&dir, None, 60_000)).await.unwrap());
    assert_eq!(code, "ConfigurationError");
    assert!(
        message.contains("codepipeline://release") && message.contains("\"hosted\""),
        "{message}"
    );
    assert!(fake.calls.lock().unwrap().is_empty(), "nothing written or deployed");
}

#[tokio::test]
async fn the_sdk_reads_an_appconfig_profile_and_writes_hosted_versions() {
    let appconfig = aws_sdk_appconfig::Client::new(&sdk_config(DEPLOY_REGION).await);
    let app = appconfig.create_application().name(unique("flags")).send().await.unwrap();
    let app = app.id().unwrap().to_owned();
    let profile = appconfig
        .create_configuration_profile()
        .application_id(&app)
        .name("flags")
        .location_uri("hosted")
        .send()
        .await
        .unwrap();
    let profile = profile.id().unwrap().to_owned();
    let api = SdkAppConfig::new(appconfig);
    let t = AppConfigTarget { application: &app, environment: "unused", profile: &profile };
    assert_eq!(api.profile_location(t).await.unwrap(), "hosted");
    let first = api.create_hosted_version(t, b"{}".to_vec(), "application/json").await.unwrap();
    let second = api.create_hosted_version(t, b"{\"a\":1}".to_vec(), "application/json").await;
    assert_eq!((first.as_str(), second.unwrap().as_str()), ("1", "2"));
}

// ---------------------------------------------------------------------------------------------
// Stack sets on moto (whose operations end at once)

/// Runs `provider` on `job` and follows each operation it hands over to the end.
async fn run_to_end(provider: &StackSetProvider, job: &Job) -> (JobResult, Vec<Handle>) {
    let mut handles = Vec::new();
    let mut result = provider.run(job).await.unwrap();
    while let JobResult::Running { external_id, .. } = &result {
        handles.push(serde_json::from_str(external_id).unwrap());
        result = provider.resume(job, external_id).await.unwrap();
    }
    (result, handles)
}

#[tokio::test]
async fn a_stack_set_is_created_with_its_instances_then_updated_through_new_ones() {
    let dir = TempDir::new().unwrap();
    // Administered from the target account, through its deploy role.
    let assumed = roles().await.config(Some(DEPLOY_ROLE), DEPLOY_REGION, "check").await.unwrap();
    let cfn = aws_sdk_cloudformation::Client::new(&assumed);
    let set = unique("baton-set");
    let v1 = zip_of(&dir, "v1", &[("set.json", TOPIC_TEMPLATE.as_bytes())]);
    let config = |targets: &str| {
        vec![
            ("StackSetName", set.clone()),
            ("TemplatePath", "Src::set.json".to_owned()),
            (
                "Parameters",
                "ParameterKey=TopicName,ParameterValue=orders ParameterKey=Team,ParameterValue=ops"
                    .to_owned(),
            ),
            ("DeploymentTargets", targets.to_owned()),
            ("Regions", "us-east-1, eu-west-1".to_owned()),
            ("FailureTolerancePercentage", "10".to_owned()),
            ("MaxConcurrentPercentage", "50".to_owned()),
        ]
    };
    let deploy = |targets: &str| {
        let config = config(targets);
        let pairs: Vec<(&str, &str)> = config.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut r = request("Deploy", "CloudFormationStackSet", &pairs, &[]);
        r.role_arn = Some(DEPLOY_ROLE.into());
        r
    };
    let provider = StackSetProvider::stack_set(roles().await);

    // First run: the stack set, then its instances in each target and region.
    let (result, handles) =
        run_to_end(&provider, &job(&dir, deploy("111111111111"), &[("Src", &v1)])).await;
    let (_, variables, _) = succeeded(result);
    assert_eq!(handles.len(), 1, "one operation: the instances");
    assert!(variables["StackSetId"].starts_with(&format!("{set}:")), "{variables:?}");
    assert_eq!(variables["OperationId"], handles[0].op);
    let described = cfn.describe_stack_set().stack_set_name(&set).send().await.unwrap();
    let described = described.stack_set().unwrap();
    let parameters: BTreeMap<_, _> = described
        .parameters()
        .iter()
        .map(|p| (p.parameter_key().unwrap(), p.parameter_value().unwrap()))
        .collect();
    assert_eq!(parameters, BTreeMap::from([("Team", "ops"), ("TopicName", "orders")]));
    let instances = |cfn: aws_sdk_cloudformation::Client, set: String| async move {
        let listed = cfn.list_stack_instances().stack_set_name(&set).send().await.unwrap();
        let mut found: Vec<(String, String)> = listed
            .summaries()
            .iter()
            .map(|i| (i.account().unwrap().to_owned(), i.region().unwrap().to_owned()))
            .collect();
        found.sort();
        found
    };
    let first = instances(cfn.clone(), set.clone()).await;
    assert_eq!(
        first,
        [
            ("111111111111".to_owned(), "eu-west-1".to_owned()),
            ("111111111111".into(), "us-east-1".into())
        ]
    );

    // Second run with another account: its instances first, then the update of the set.
    let v2_template = TOPIC_TEMPLATE.replace("\"none\"", "\"platform\"");
    let v2 = zip_of(&dir, "v2", &[("set.json", v2_template.as_bytes())]);
    let (result, handles) =
        run_to_end(&provider, &job(&dir, deploy("111111111111,222222222222"), &[("Src", &v2)]))
            .await;
    succeeded(result);
    assert_eq!(handles.len(), 2, "the new instances, then the update");
    assert!(handles[0].then_update && !handles[1].then_update, "{handles:?}");
    assert_eq!(instances(cfn.clone(), set.clone()).await.len(), 4);
    let described = cfn.describe_stack_set().stack_set_name(&set).send().await.unwrap();
    assert!(described.stack_set().unwrap().template_body().unwrap().contains("platform"));

    // The instances action adds a third account with its own parameter.
    let mut more = request(
        "Deploy",
        "CloudFormationStackInstances",
        &[
            ("StackSetName", set.as_str()),
            ("DeploymentTargets", "333333333333"),
            ("Regions", "us-east-1"),
            // moto deploys overrides as the whole parameter set, so both are given here.
            (
                "ParameterOverrides",
                "ParameterKey=TopicName,ParameterValue=payments ParameterKey=Team,ParameterValue=pay",
            ),
        ],
        &[],
    );
    more.role_arn = Some(DEPLOY_ROLE.into());
    let instances_action = StackSetProvider::stack_instances(roles().await);
    let (result, _) = run_to_end(&instances_action, &job(&dir, more, &[])).await;
    let (_, variables, _) = succeeded(result);
    assert!(variables.contains_key("OperationId"));
    assert_eq!(instances(cfn, set.clone()).await.len(), 5);

    // Targets without regions say what is missing before anything is called.
    let mut half = deploy("111111111111");
    half.configuration.shift_remove("Regions");
    let (code, message) = failed(provider.run(&job(&dir, half, &[("Src", &v1)])).await.unwrap());
    assert_eq!(code, "ConfigurationError");
    assert!(message.contains("DeploymentTargets and Regions go together"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// Connection sources: a build of the project clones through the connection

/// Connections that are all `provider`, in `status`.
struct FakeConnections(&'static str, &'static str);

#[async_trait]
impl Connections for FakeConnections {
    async fn connection(&self, _: &ActionRequest, _: &str) -> Result<Connection, Stop> {
        Ok(Connection { provider: self.0.into(), status: self.1.into(), endpoint: None })
    }
}

/// The moto build `id` as BatchGetBuilds gives it.
async fn moto_build(id: &str) -> aws_sdk_codebuild::types::Build {
    let codebuild = aws_sdk_codebuild::Client::new(&sdk_config(DEPLOY_REGION).await);
    let builds = codebuild.batch_get_builds().ids(id).send().await.unwrap();
    builds.builds()[0].clone()
}

#[tokio::test]
async fn a_connection_source_is_a_build_that_clones_the_branch_or_the_pinned_commit() {
    let dir = TempDir::new().unwrap();
    let project = unique("baton-fetch");
    codebuild_project(&project).await;
    let provider = ConnectionSourceProvider::new(
        CodeBuildProvider::new(roles().await),
        project.clone(),
        Arc::new(FakeConnections("GitHub", "AVAILABLE")),
    );
    let arn = "arn:aws:codeconnections:eu-west-1:111111111111:connection/1a2b";
    let config = [("ConnectionArn", arn), ("FullRepositoryId", "acme/app"), ("BranchName", "main")];
    let source = request("Source", "CodeStarSourceConnection", &config, &["Src"]);
    let output = ArtifactLocation { bucket: "artifacts".into(), key: "release/e/Src/1.zip".into() };
    let attempt = |request: ActionRequest| {
        let mut attempt = job(&dir, request, &[]);
        attempt.in_place = Some(InPlaceArtifacts {
            inputs: Vec::new(),
            outputs: vec![("Src".into(), output.clone())],
            kms_key_arn: "arn:aws:kms:eu-west-1:123456789012:key/k".into(),
        });
        attempt
    };

    // The branch's head: a build of the project on version `main`, its zip in the store.
    let head = attempt(source.clone());
    let JobResult::Running { external_id: id, .. } = provider.run(&head).await.unwrap() else {
        panic!("the fetch did not start a build");
    };
    assert!(id.starts_with(&format!("{project}:")), "{id}");
    let build = moto_build(&id).await;
    assert_eq!(build.source_version(), Some("main"));
    let artifacts = build.artifacts().expect("the output's place");
    assert_eq!(artifacts.location(), Some("artifacts"), "the artifact store's bucket");
    // moto's builds export nothing: with no commit named, the fetch is not called a success.
    let (code, message) = failed(provider.resume(&head, &id).await.unwrap());
    assert_eq!(code, "JobFailed");
    assert!(message.contains("did not say which commit"), "{message}");

    // A pinned commit (a webhook's, `sourceRevisions`) is the version built, and the revision.
    let mut pinned = source.clone();
    pinned.source_revision = Some(SourceRevision {
        revision_type: "COMMIT_ID".into(),
        value: "9f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c".into(),
        branch: None,
    });
    let pinned = attempt(pinned);
    let JobResult::Running { external_id: id, .. } = provider.run(&pinned).await.unwrap() else {
        panic!("the pinned fetch did not start a build");
    };
    let build = moto_build(&id).await;
    assert_eq!(build.source_version(), Some("9f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c"));
    let (_, variables, revision) = succeeded(provider.resume(&pinned, &id).await.unwrap());
    assert_eq!(revision.as_deref(), Some("9f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c"));
    assert_eq!(variables["FullRepositoryName"], "acme/app");
    assert_eq!(variables["ConnectionArn"], arn);
    assert_eq!(variables["BranchName"], "main");

    // A connection not yet set up starts nothing and says what to do.
    let pending = ConnectionSourceProvider::new(
        CodeBuildProvider::new(roles().await),
        project,
        Arc::new(FakeConnections("GitHub", "PENDING")),
    );
    let (code, message) = failed(pending.run(&attempt(source)).await.unwrap());
    assert_eq!(code, "ConfigurationError");
    assert!(message.contains("is PENDING: finish setting it up"), "{message}");
}

/// A loopback CodeConnections that knows one connection to a self-managed GitLab host; every
/// operation it was asked is kept.
async fn code_connections() -> (String, Arc<Mutex<Vec<String>>>) {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let asked = Arc::new(Mutex::new(Vec::new()));
    let kept = asked.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let asked = asked.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut read = tokio::io::BufReader::new(read);
                while let Some((_, _, headers, body)) = read_request(&mut read, &mut write).await {
                    let target = headers
                        .iter()
                        .find(|(n, _)| n == "x-amz-target")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    let operation = target.rsplit('.').next().unwrap_or_default().to_owned();
                    let input: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    asked.lock().unwrap().push(operation.clone());
                    let json = [("content-type".into(), "application/x-amz-json-1.0".into())];
                    let reply = match (operation.as_str(), input["ConnectionArn"].as_str()) {
                        ("GetConnection", Some(arn)) if arn.ends_with("/known") => {
                            let body = serde_json::json!({"Connection": {
                                "ConnectionArn": arn, "ConnectionName": "gitlab",
                                "ProviderType": "GitLabSelfManaged", "ConnectionStatus": "AVAILABLE",
                                "HostArn": "arn:aws:codeconnections:eu-west-1:111111111111:host/h-1"}});
                            response(200, &json, body.to_string().as_bytes())
                        }
                        ("GetConnection", _) => {
                            let h =
                                [("x-amzn-errortype".into(), "ResourceNotFoundException".into())];
                            response(400, &h, br#"{"Message":"Connection not found"}"#)
                        }
                        ("GetHost", _) => {
                            let body = serde_json::json!({"Name": "gitlab", "Status": "AVAILABLE",
                                "ProviderType": "GitLabSelfManaged",
                                "ProviderEndpoint": "https://gitlab.acme.internal"});
                            response(200, &json, body.to_string().as_bytes())
                        }
                        _ => response(400, &[], b"{}"),
                    };
                    if write.write_all(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, kept)
}

#[tokio::test]
async fn codeconnections_names_the_connections_host_and_a_missing_one_is_a_configuration_error() {
    let (url, asked) = code_connections().await;
    let config = sdk_config(DEPLOY_REGION).await.into_builder().endpoint_url(url).build();
    let connections = CodeConnections::new(Arc::new(RoleAssumer::new(config)));
    let source = request("Source", "CodeStarSourceConnection", &[], &["Src"]);

    let known = "arn:aws:codeconnections:eu-west-1:111111111111:connection/known";
    let connection = connections.connection(&source, known).await.unwrap();
    assert_eq!(
        connection,
        Connection {
            provider: "GitLabSelfManaged".into(),
            status: "AVAILABLE".into(),
            endpoint: Some("https://gitlab.acme.internal".into()),
        }
    );
    assert_eq!(*asked.lock().unwrap(), ["GetConnection", "GetHost"]);

    let missing = "arn:aws:codeconnections:eu-west-1:111111111111:connection/gone";
    match connections.connection(&source, missing).await {
        Err(Stop::Failed(failure)) => {
            assert_eq!(failure.code, "ConfigurationError");
            assert!(failure.message.contains("does not exist"), "{}", failure.message);
        }
        other => panic!("a missing connection was not refused: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// STS

#[tokio::test]
async fn an_assumed_session_is_named_after_the_execution_and_reused() {
    let roles = roles().await;
    let execution = "6f1d2c3b-aaaa-bbbb-cccc-0123456789ab";

    let assumed = roles.config(Some(DEPLOY_ROLE), DEPLOY_REGION, execution).await.unwrap();
    let again = roles.config(Some(DEPLOY_ROLE), DEPLOY_REGION, "another-execution").await.unwrap();
    let own = roles.config(None, DEPLOY_REGION, execution).await.unwrap();

    let identity = aws_sdk_sts::Client::new(&assumed).get_caller_identity().send().await.unwrap();
    assert_eq!(identity.account(), Some("222222222222"));
    let arn = identity.arn().unwrap();
    assert!(arn.ends_with(&format!("assumed-role/Deploy/baton-{execution}")), "{arn}");
    assert_eq!(assumed.region().unwrap().as_ref(), DEPLOY_REGION);
    let key = |c: &aws_config::SdkConfig| {
        let provider = c.credentials_provider().unwrap();
        async move { provider.provide_credentials().await.unwrap().access_key_id().to_owned() }
    };
    assert_eq!(key(&assumed).await, key(&again).await, "cached for the role and region");
    let own_identity = aws_sdk_sts::Client::new(&own).get_caller_identity().send().await.unwrap();
    assert_eq!(own_identity.account(), Some("123456789012"));
    assert_eq!(own.region().unwrap().as_ref(), DEPLOY_REGION);
}

#[tokio::test]
async fn every_aws_provider_is_registered_under_codepipelines_names() {
    let mut registry = ProviderRegistry::default();
    register(&mut registry, roles().await);
    let names: HashMap<(&str, &str), bool> = [
        ("Deploy", "CloudFormation"),
        ("Deploy", "S3"),
        ("Source", "S3"),
        ("Build", "CodeBuild"),
        ("Test", "CodeBuild"),
        ("Invoke", "StepFunctions"),
        ("Deploy", "CodeDeploy"),
        ("Source", "ECR"),
        ("Deploy", "CodeDeployToECS"),
        ("Deploy", "CloudFormationStackSet"),
        ("Deploy", "CloudFormationStackInstances"),
        ("Deploy", "ElasticBeanstalk"),
        ("Deploy", "Lambda"),
        ("Deploy", "AppConfig"),
    ]
    .into_iter()
    .map(|(category, provider)| {
        let t = ActionType {
            category: category.into(),
            owner: "AWS".into(),
            provider: provider.into(),
            version: "1".into(),
        };
        ((category, provider), registry.get(&t).is_some())
    })
    .collect();
    assert!(names.values().all(|&found| found), "{names:?}");

    // With the deployment's build project, commands and connection sources run as its builds.
    let connection = ActionType {
        category: "Source".into(),
        owner: "AWS".into(),
        provider: "CodeStarSourceConnection".into(),
        version: "1".into(),
    };
    assert!(registry.get(&connection).is_none(), "no project, no connection source");
    register_commands(&mut registry, roles().await, "baton-commands");
    assert!(registry.get(&connection).is_some_and(|p| p.works_in_place()));
}

// ---------------------------------------------------------------------------------------------
// CodeCommit source, against a fake repository (moto's CodeCommit has no branches or trees)

/// A repository with one branch, `main`, whose head has `files` (path, content, executable).
struct FakeRepository {
    files: Vec<(&'static str, &'static str, bool)>,
    unavailable: bool,
}

const HEAD: &str = "4c1d0e3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d";

#[async_trait]
impl RepositoryApi for FakeRepository {
    async fn branch_head(&self, repository: &str, branch: &str) -> Result<String, RepoError> {
        if self.unavailable {
            return Err(RepoError::Unavailable("connection reset".into()));
        }
        match (repository, branch) {
            ("app", "main") => Ok(HEAD.into()),
            _ => Err(RepoError::Missing(format!(
                "The branch {branch} of repository {repository} does not exist."
            ))),
        }
    }

    async fn commit(&self, _: &str, commit: &str) -> Result<CommitInfo, RepoError> {
        assert_eq!(commit, HEAD);
        Ok(CommitInfo {
            message: "Ship the new page\n\nLonger text.".into(),
            author_date: "1795000000 +0000".into(),
            committer_date: "1795000100 +0000".into(),
        })
    }

    async fn folder(&self, _: &str, commit: &str, path: &str) -> Result<FolderListing, RepoError> {
        assert_eq!(commit, HEAD, "the tree is read at the commit the branch pointed to");
        let prefix = if path == "/" { "/".to_owned() } else { format!("{path}/") };
        let mut listing = FolderListing::default();
        for (file, _, executable) in &self.files {
            let Some(rest) = file.strip_prefix(&prefix) else { continue };
            match rest.split_once('/') {
                None => listing.files.push((file.to_string(), file.to_string(), *executable)),
                Some((dir, _)) => {
                    let sub = format!("{prefix}{dir}");
                    if !listing.folders.contains(&sub) {
                        listing.folders.push(sub);
                    }
                }
            }
        }
        Ok(listing)
    }

    async fn blob(&self, _: &str, blob: &str) -> Result<Vec<u8>, RepoError> {
        let (_, content, _) = self.files.iter().find(|(f, _, _)| *f == blob).unwrap();
        Ok(content.as_bytes().to_vec())
    }
}

async fn run_codecommit(
    repo: FakeRepository,
    branch: &str,
) -> (TempDir, Result<JobResult, ProviderError>) {
    let dir = TempDir::new().unwrap();
    let provider = CodeCommitSourceProvider::with_api(Arc::new(repo));
    let request = request(
        "Source",
        "CodeCommit",
        &[("RepositoryName", "app"), ("BranchName", branch)],
        &["Src"],
    );
    let job = job(&dir, request, &[]);
    let result = provider.run(&job).await;
    (dir, result)
}

#[tokio::test]
async fn a_codecommit_source_zips_the_branch_head_with_codepipelines_variables() {
    let repo = FakeRepository {
        files: vec![
            ("/README.md", "hello", false),
            ("/bin/deploy.sh", "#!/bin/sh\necho ok", true),
            ("/src/lib/page.html", "<p>page</p>", false),
        ],
        unavailable: false,
    };
    let (_dir, result) = run_codecommit(repo, "main").await;
    let JobResult::Succeeded { output_artifacts, output_variables, summary, external_id, .. } =
        result.unwrap()
    else {
        panic!("the source failed")
    };
    assert_eq!(output_variables["CommitId"], HEAD);
    assert_eq!(output_variables["BranchName"], "main");
    assert_eq!(output_variables["RepositoryName"], "app");
    assert_eq!(output_variables["CommitMessage"], "Ship the new page\n\nLonger text.");
    assert_eq!(output_variables["AuthorDate"], "1795000000 +0000");
    assert_eq!(output_variables["CommitterDate"], "1795000100 +0000");
    assert_eq!(summary.as_deref(), Some("Ship the new page (3 files)"));
    assert_eq!(external_id.as_deref(), Some(HEAD));
    let mut zip =
        zip::ZipArchive::new(std::fs::File::open(&output_artifacts[0].path).unwrap()).unwrap();
    let mut names: Vec<String> = zip.file_names().map(str::to_owned).collect();
    names.sort();
    assert_eq!(names, vec!["README.md", "bin/deploy.sh", "src/lib/page.html"]);
    let mut page = String::new();
    zip.by_name("src/lib/page.html").unwrap().read_to_string(&mut page).unwrap();
    assert_eq!(page, "<p>page</p>");
    let mode = zip.by_name("bin/deploy.sh").unwrap().unix_mode().unwrap();
    assert_eq!(mode & 0o111, 0o111, "executables stay executable: {mode:o}");
    assert_eq!(zip.by_name("README.md").unwrap().unix_mode().unwrap() & 0o111, 0);
}

#[tokio::test]
async fn a_missing_branch_fails_as_a_configuration_error_and_an_outage_is_retryable() {
    let repo = FakeRepository { files: vec![], unavailable: false };
    let (_dir, result) = run_codecommit(repo, "release").await;
    let (code, message) = failed(result.unwrap());
    assert_eq!(code, "ConfigurationError");
    assert_eq!(message, "The branch release of repository app does not exist.");

    let down = FakeRepository { files: vec![], unavailable: true };
    let (_dir, result) = run_codecommit(down, "main").await;
    assert!(matches!(result, Err(ProviderError::Unavailable(_))), "{result:?}");
}

#[tokio::test]
async fn a_tree_entry_that_climbs_out_of_the_zip_fails_the_action() {
    let repo =
        FakeRepository { files: vec![("/../../etc/cron.d/x", "evil", false)], unavailable: false };
    let (_dir, result) = run_codecommit(repo, "main").await;
    let (code, message) = failed(result.unwrap());
    assert_eq!(code, "JobFailed");
    assert!(message.contains("unusable path"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// ECS

/// A cluster with a service running `<family>:1` (container `app` on `nginx:1` beside a `log`
/// sidecar) in `region`; the ECS client. The family is the cluster's own, so revisions count
/// from 1 whatever else the emulator has seen.
async fn ecs_service(region: &str, cluster: &str) -> aws_sdk_ecs::Client {
    use aws_sdk_ecs::types::ContainerDefinition;
    let ecs = aws_sdk_ecs::Client::new(&sdk_config(region).await);
    ecs.create_cluster().cluster_name(cluster).send().await.unwrap();
    let container = |name: &str, image: &str| {
        ContainerDefinition::builder().name(name).image(image).memory(128).essential(true).build()
    };
    ecs.register_task_definition()
        .family(cluster)
        .container_definitions(container("app", "nginx:1"))
        .container_definitions(container("log", "fluent:1"))
        .send()
        .await
        .unwrap();
    ecs.create_service()
        .cluster(cluster)
        .service_name("site")
        .task_definition(cluster)
        .desired_count(1)
        .send()
        .await
        .unwrap();
    ecs
}

#[tokio::test]
async fn an_ecs_deploy_puts_the_artifacts_images_into_a_new_task_definition_revision() {
    let dir = TempDir::new().unwrap();
    let cluster = unique("baton-ecs");
    let ecs = ecs_service(DEPLOY_REGION, &cluster).await;
    let provider = EcsDeployProvider::new(roles().await);
    let deploy = |definitions: &str| {
        let zip = zip_of(&dir, "images", &[("imagedefinitions.json", definitions.as_bytes())]);
        let request = request(
            "Deploy",
            "ECS",
            &[("ClusterName", cluster.as_str()), ("ServiceName", "site")],
            &[],
        );
        (request, zip)
    };

    let (req, zip) = deploy(
        r#"[{"name": "app", "imageUri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:2"}]"#,
    );
    let j = job(&dir, req, &[("Images", &zip)]);
    // moto starts no tasks, so the service never becomes stable there: the deployment is
    // followed (its judgement is unit-tested on the service's shapes).
    let result = provider.run(&j).await.unwrap();
    let JobResult::Running { external_id, .. } = &result else {
        panic!("the deploy is not followed: {result:?}")
    };
    let service = ecs.describe_services().cluster(&cluster).services("site").send().await.unwrap();
    let running = service.services()[0].task_definition().unwrap().to_owned();
    assert!(running.ends_with(&format!("{cluster}:2")), "a new revision: {running}");
    assert!(external_id.contains(&running), "{external_id}");
    let again = provider.resume(&j, external_id).await.unwrap();
    assert!(matches!(again, JobResult::Running { .. }), "{again:?}");
    // Past DeploymentTimeout, the action times out.
    let late = format!("{cluster}|site|{running}|0");
    let (code, message) = failed(provider.resume(&j, &late).await.unwrap());
    assert_eq!(code, "TimedOut");
    assert!(message.contains("did not become stable"), "{message}");
    let task = ecs.describe_task_definition().task_definition(&running).send().await.unwrap();
    let images: Vec<(String, String)> = task
        .task_definition()
        .unwrap()
        .container_definitions()
        .iter()
        .map(|c| (c.name().unwrap().to_owned(), c.image().unwrap().to_owned()))
        .collect();
    assert_eq!(
        images,
        [
            ("app".to_string(), "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:2".to_string()),
            ("log".to_string(), "fluent:1".to_string())
        ],
        "the named container's image changed, the other's did not"
    );

    // A container the task definition lacks, and a file that is not image definitions.
    let (req, zip) = deploy(r#"[{"name": "worker", "imageUri": "x:1"}]"#);
    let (code, message) = failed(provider.run(&job(&dir, req, &[("Images", &zip)])).await.unwrap());
    assert_eq!(code, "ConfigurationError");
    assert!(message.contains("worker"), "{message}");
    let (req, zip) = deploy(r#"{"app": "x:1"}"#);
    let (code, _) = failed(provider.run(&job(&dir, req, &[("Images", &zip)])).await.unwrap());
    assert_eq!(code, "ConfigurationError");
}

// ---------------------------------------------------------------------------------------------
// Step Functions on moto, which runs Pass and Fail states for real once told to

async fn state_machine(sfn: &aws_sdk_sfn::Client, definition: &str) -> String {
    sfn.create_state_machine()
        .name(unique("baton-sm"))
        .definition(definition)
        .role_arn("arn:aws:iam::123456789012:role/StepFunctions")
        .send()
        .await
        .unwrap()
        .state_machine_arn
}

async fn followed(provider: &StepFunctionsProvider, job: &Job) -> JobResult {
    let started = provider.run(job).await.unwrap();
    let JobResult::Running { external_id, .. } = started else {
        panic!("the execution was not left running: {started:?}");
    };
    for _ in 0..100 {
        match provider.resume(job, &external_id).await.unwrap() {
            JobResult::Running { .. } => tokio::time::sleep(Duration::from_millis(100)).await,
            done => return done,
        }
    }
    panic!("the execution never ended");
}

#[tokio::test]
async fn a_state_machine_runs_with_the_artifacts_input_and_gives_its_output() {
    crate::aws_support::moto_config(r#"{"stepfunctions": {"execute_state_machine": true}}"#).await;
    let dir = TempDir::new().unwrap();
    let sfn = aws_sdk_sfn::Client::new(&sdk_config(DEPLOY_REGION).await);
    let machine = state_machine(
        &sfn,
        r#"{"StartAt": "Tag", "States": {"Tag": {"Type": "Pass", "Result": "done", "ResultPath": "$.result", "End": true}}}"#,
    )
    .await;
    let provider = StepFunctionsProvider::new(roles().await);
    let input = zip_of(&dir, "jobinput", &[("assets/input.json", br#"{"release": 7}"#)]);
    let r = request(
        "Invoke",
        "StepFunctions",
        &[
            ("StateMachineArn", machine.as_str()),
            ("ExecutionNamePrefix", "release"),
            ("InputType", "FilePath"),
            ("Input", "assets/input.json"),
        ],
        &["JobOutput"],
    );
    let (outputs, variables, external_id) =
        succeeded(followed(&provider, &job(&dir, r.clone(), &[("JobInput", &input)])).await);
    let arn = external_id.unwrap();
    assert!(arn.contains(":execution:") && arn.contains(":release-"), "{arn}");
    assert_eq!(variables["ExecutionArn"], arn);
    assert_eq!(variables["StateMachineArn"], machine);
    let output: serde_json::Value =
        serde_json::from_str(&zip_entry(&outputs[0].path, "output.json")).unwrap();
    assert_eq!(output, serde_json::json!({"release": 7, "result": "done"}));

    // The same attempt started again finds its execution instead of failing.
    let again = provider.run(&job(&dir, r, &[("JobInput", &input)])).await.unwrap();
    assert!(matches!(again, JobResult::Running { external_id, .. } if external_id == arn));
}

#[tokio::test]
async fn a_failed_execution_fails_the_action_with_its_error_and_cause() {
    crate::aws_support::moto_config(r#"{"stepfunctions": {"execute_state_machine": true}}"#).await;
    let dir = TempDir::new().unwrap();
    let sfn = aws_sdk_sfn::Client::new(&sdk_config(DEPLOY_REGION).await);
    let machine = state_machine(
        &sfn,
        r#"{"StartAt": "Boom", "States": {"Boom": {"Type": "Fail", "Error": "MigrationFailed", "Cause": "table locked"}}}"#,
    )
    .await;
    let provider = StepFunctionsProvider::new(roles().await);
    let r = request(
        "Invoke",
        "StepFunctions",
        &[("StateMachineArn", machine.as_str()), ("Input", r#"{"a": 1}"#)],
        &[],
    );
    let (code, message) = failed(followed(&provider, &job(&dir, r, &[])).await);
    assert_eq!(code, "JobFailed");
    assert!(message.contains("FAILED: MigrationFailed: table locked"), "{message}");

    // A file that is not in the artifact is the configuration's fault.
    let empty = zip_of(&dir, "empty", &[("other.json", b"{}")]);
    let r = request(
        "Invoke",
        "StepFunctions",
        &[("StateMachineArn", machine.as_str()), ("InputType", "FilePath"), ("Input", "in.json")],
        &[],
    );
    let (code, _) = failed(provider.run(&job(&dir, r, &[("In", &empty)])).await.unwrap());
    assert_eq!(code, "ConfigurationError");
}

// ---------------------------------------------------------------------------------------------
// Job artifacts on AWS: credentials cut from the job role for the job's own objects

#[tokio::test]
async fn a_jobs_artifacts_are_lent_in_place_with_credentials_from_the_job_role() {
    use baton::adapters::aws::sts_job_grants::StsJobGrants;
    use baton::core::engine::ArtifactLocation;
    use baton::ports::job_artifacts::JobArtifacts;
    use baton::ports::provider::InPlaceArtifacts;
    let dir = TempDir::new().unwrap();
    let config = sdk_config(PIPELINE_REGION).await;
    let grants =
        StsJobGrants::new(&config, "arn:aws:iam::123456789012:role/baton-job-artifacts".into());
    let mut j = job(&dir, request("Build", "Jenkins", &[], &["Out"]), &[]);
    let input = ArtifactLocation { bucket: "artifacts".into(), key: "release/Src/1.zip".into() };
    let output = ArtifactLocation { bucket: "artifacts".into(), key: "release/Out/1.zip".into() };
    j.in_place = Some(InPlaceArtifacts {
        inputs: vec![("Src".into(), input)],
        outputs: vec![("Out".into(), output)],
        kms_key_arn: "arn:aws:kms:us-east-1:123456789012:key/k".into(),
    });
    let grant = grants.grant("0f0e0d0c-job", &j, now_ms() + 600_000).await.unwrap();
    assert_eq!(grant.inputs[0].1.object_key, "release/Src/1.zip");
    assert_eq!(grant.outputs[0].1.object_key, "release/Out/1.zip");
    assert_eq!(grant.encryption_key.as_deref(), Some("arn:aws:kms:us-east-1:123456789012:key/k"));
    assert!(grant.credentials.access_key_id.starts_with("ASIA"), "{:?}", grant.credentials);
    assert!(!grant.credentials.session_token.is_empty());
    // Written in place, the outputs need no collecting.
    assert!(grants.collect("0f0e0d0c-job", &j).await.unwrap().is_empty());

    // Without places (a store that cannot tell), nothing is lent.
    j.in_place = None;
    assert!(grants.grant("other", &j, now_ms() + 600_000).await.is_err());
}

// ---------------------------------------------------------------------------------------------
// CodeDeploy on moto (whose deployments never leave Created: the judgement is unit-tested)

#[tokio::test]
async fn a_codedeploy_deployment_takes_the_artifact_in_place_as_its_revision() {
    use baton::core::engine::ArtifactLocation;
    use baton::ports::provider::InPlaceArtifacts;
    use baton::providers::aws::codedeploy::CodeDeployProvider;
    let dir = TempDir::new().unwrap();
    let codedeploy = aws_sdk_codedeploy::Client::new(&sdk_config(DEPLOY_REGION).await);
    let application = unique("baton-app");
    codedeploy.create_application().application_name(&application).send().await.unwrap();
    codedeploy
        .create_deployment_group()
        .application_name(&application)
        .deployment_group_name("fleet")
        .service_role_arn("arn:aws:iam::123456789012:role/CodeDeploy")
        .send()
        .await
        .unwrap();
    let provider = CodeDeployProvider::new(roles().await);
    let r = request(
        "Deploy",
        "CodeDeploy",
        &[("ApplicationName", application.as_str()), ("DeploymentGroupName", "fleet")],
        &[],
    );
    let mut j = job(&dir, r.clone(), &[]);
    j.in_place = Some(InPlaceArtifacts {
        inputs: vec![(
            "Bundle".into(),
            ArtifactLocation {
                bucket: "artifacts-west".into(),
                key: "release/Bundle/1.zip".into(),
            },
        )],
        outputs: Vec::new(),
        kms_key_arn: "arn:aws:kms:eu-west-1:123456789012:key/k".into(),
    });
    let started = provider.run(&j).await.unwrap();
    let JobResult::Running { external_id: id, external_url } = started else {
        panic!("the deployment was not left running: {started:?}");
    };
    assert!(external_url.unwrap().contains(&format!("/codedeploy/deployments/{id}")));
    let info = codedeploy.get_deployment().deployment_id(&id).send().await.unwrap();
    let info = info.deployment_info.unwrap();
    assert_eq!(info.application_name.as_deref(), Some(application.as_str()));
    assert_eq!(info.deployment_group_name.as_deref(), Some("fleet"));
    let s3 = info.revision.unwrap().s3_location.unwrap();
    assert_eq!(
        (s3.bucket.as_deref(), s3.key.as_deref()),
        (Some("artifacts-west"), Some("release/Bundle/1.zip"))
    );
    // Still Created on moto: followed, not ended.
    assert!(matches!(provider.resume(&j, &id).await.unwrap(), JobResult::Running { .. }));

    // Without the artifact in S3 (a local store), the action says where it can run.
    let (code, message) = failed(provider.run(&job(&dir, r, &[])).await.unwrap());
    assert_eq!(code, "ConfigurationError");
    assert!(message.contains("deployment on AWS"), "{message}");
}

/// Every action's SDK configuration, pointed at one endpoint (a fake of a call moto lacks).
#[derive(Debug)]
struct AtEndpoint(aws_config::SdkConfig);

#[async_trait::async_trait]
impl baton::providers::aws::credentials::RoleCredentials for AtEndpoint {
    async fn config(
        &self,
        _: Option<&str>,
        _: &str,
        _: &str,
    ) -> Result<aws_config::SdkConfig, baton::providers::aws::credentials::RoleError> {
        Ok(self.0.clone())
    }
}

#[tokio::test]
async fn an_ended_deployments_targets_are_read_page_by_page_with_their_lifecycle_events() {
    use baton::providers::aws::codedeploy::CodeDeployProvider;
    use baton::providers::aws::ecs_blue_green::EcsBlueGreenProvider;
    let dir = TempDir::new().unwrap();
    let (endpoint, calls) = crate::fake_codedeploy::serve("d-FAKE", 30).await;
    let config = sdk_config(DEPLOY_REGION).await.into_builder().endpoint_url(endpoint).build();
    let roles: Arc<dyn baton::providers::aws::credentials::RoleCredentials> =
        Arc::new(AtEndpoint(config));
    let provider = CodeDeployProvider::new(roles.clone());
    let r = request(
        "Deploy",
        "CodeDeploy",
        &[("ApplicationName", "app"), ("DeploymentGroupName", "fleet")],
        &[],
    );
    let j = job(&dir, r, &[]);

    let targets = provider.targets(&j, "d-FAKE").await;
    assert_eq!(targets.len(), 30);
    assert_eq!(targets[0].id, "i-00000");
    assert_eq!(targets[29].id, "i-00029");
    // Two pages of ids; details 25 at a time (CodeDeploy's limit), for the one deployment.
    let asked: Vec<(String, usize)> = calls
        .lock()
        .unwrap()
        .iter()
        .map(|(op, body)| (op.clone(), body["targetIds"].as_array().map_or(0, Vec::len)))
        .collect();
    assert_eq!(
        asked,
        [
            ("ListDeploymentTargets".to_owned(), 0),
            ("ListDeploymentTargets".to_owned(), 0),
            ("BatchGetDeploymentTargets".to_owned(), 25),
            ("BatchGetDeploymentTargets".to_owned(), 5),
        ]
    );
    let failed = &targets[3];
    assert_eq!((failed.kind.as_str(), failed.status.as_str()), ("InstanceTarget", "Failed"));
    // The target's times are its events': the first start, the last end.
    assert_eq!(
        (failed.started_at, failed.ended_at),
        (Some(1_700_000_000_000), Some(1_700_000_042_500))
    );
    let events: Vec<_> =
        failed.events.iter().map(|e| (e.name.as_str(), e.status.as_str())).collect();
    assert_eq!(events, [("BeforeInstall", "Succeeded"), ("ApplicationStart", "Failed")]);
    assert_eq!(
        failed.events[1].message.as_deref(),
        Some(
            "ScriptFailed (scripts/start.sh): Script at specified location: scripts/start.sh run as user root failed with exit code 1"
        )
    );
    assert_eq!(failed.events[0].message, None, "an event without diagnostics says nothing");
    assert_eq!(targets[0].status, "Succeeded");

    // ECS blue/green deployments are read the same way.
    calls.lock().unwrap().clear();
    let ecs = EcsBlueGreenProvider::new(roles).targets(&j, "d-FAKE").await;
    assert_eq!(ecs.len(), 30);

    // A deployment CodeDeploy does not know: no targets, and the action's outcome stands.
    assert!(provider.targets(&j, "d-OTHER").await.is_empty());
}

// ---------------------------------------------------------------------------------------------
// GitHub (v1) source, against a loopback GitHub

#[tokio::test]
async fn a_github_v1_source_fetches_the_commit_through_githubs_api_with_the_files_at_the_root() {
    use crate::fake_github::{HEAD, OLDER, TOKEN};
    use baton::core::engine::SourceRevision;
    use baton::providers::aws::github_source::GitHubSourceProvider;
    let dir = TempDir::new().unwrap();
    let (api, archive_auth) = crate::fake_github::serve().await;
    let provider =
        GitHubSourceProvider::new(Arc::new(baton::adapters::github::GitHubApi::new(&api)));
    let config = |token: &str, branch: &str| {
        [("Owner", "octo"), ("Repo", "app"), ("Branch", branch), ("OAuthToken", token)]
            .map(|(k, v)| (k, v.to_owned()))
    };
    let ask = |token: &str, branch: &str| {
        let c = config(token, branch);
        let pairs: Vec<(&str, &str)> = c.iter().map(|(k, v)| (*k, v.as_str())).collect();
        request("Source", "GitHub", &pairs, &["Src"])
    };

    let done = provider.run(&job(&dir, ask(TOKEN, "main"), &[])).await.unwrap();
    let JobResult::Succeeded { output_artifacts, output_variables, summary, external_url, .. } =
        done
    else {
        panic!("the source did not succeed: {done:?}");
    };
    let zip_path = &output_artifacts[0].path;
    assert_eq!(output_artifacts[0].name, "Src");
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip_path).unwrap()).unwrap();
    let mut names: Vec<String> = archive.file_names().map(str::to_owned).collect();
    names.sort();
    assert_eq!(
        names,
        ["README.md", "scripts/", "scripts/run.sh"],
        "at the root, not under GitHub's folder"
    );
    let mut readme = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("README.md").unwrap(), &mut readme).unwrap();
    assert_eq!(readme, "the new page\n");
    assert_eq!(
        archive.by_name("scripts/run.sh").unwrap().unix_mode().map(|m| m & 0o777),
        Some(0o755)
    );
    let expected = [
        ("AuthorDate", "2026-12-01T10:00:00Z"),
        ("BranchName", "main"),
        ("CommitId", HEAD),
        ("CommitMessage", "Serve the new page\n\nAnd say why."),
        ("CommitterDate", "2026-12-02T11:00:00Z"),
        ("CommitUrl", &format!("https://github.com/octo/app/commit/{HEAD}")),
        ("RepositoryName", "app"),
    ];
    let expected: BTreeMap<String, String> =
        expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(output_variables, expected);
    assert_eq!(summary.as_deref(), Some("Serve the new page (2 files)"));
    assert_eq!(external_url, Some(format!("https://github.com/octo/app/commit/{HEAD}")));
    // The token went to the API only, never to the host the archive was sent on to.
    assert_eq!(*archive_auth.lock().unwrap(), [None]);

    // A webhook's or sourceRevisions' commit is the one fetched.
    let mut pinned = ask(TOKEN, "main");
    pinned.source_revision = Some(SourceRevision {
        revision_type: "COMMIT_ID".into(),
        value: OLDER.into(),
        branch: None,
    });
    let JobResult::Succeeded { output_artifacts, output_variables, .. } =
        provider.run(&job(&dir, pinned, &[])).await.unwrap()
    else {
        panic!("the pinned commit was not fetched");
    };
    assert_eq!(output_variables["CommitId"], OLDER);
    let mut archive =
        zip::ZipArchive::new(std::fs::File::open(&output_artifacts[0].path).unwrap()).unwrap();
    let mut readme = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("README.md").unwrap(), &mut readme).unwrap();
    assert_eq!(readme, "the first page\n");

    // GitHub's refusals, in its words, as the declaration's to fix.
    let (code, message) =
        failed(provider.run(&job(&dir, ask("stale", "main"), &[])).await.unwrap());
    assert_eq!(code, "ConfigurationError");
    assert!(message.contains("OAuthToken") && message.contains("Bad credentials"), "{message}");
    let (code, message) = failed(provider.run(&job(&dir, ask(TOKEN, "nope"), &[])).await.unwrap());
    assert_eq!(code, "ConfigurationError");
    assert!(message.contains("no nope in octo/app"), "{message}");

    // Polling reads the branch's head.
    let mut plan =
        baton_core::plan::ActionPlan::new("Checkout", "Source", "ThirdParty", "GitHub", 1);
    plan.configuration =
        config(TOKEN, "main").iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let latest = provider.latest_revision(&plan).await.unwrap();
    assert_eq!((latest.revision_type.as_str(), latest.value.as_str()), ("COMMIT_ID", HEAD));
    plan.configuration.shift_remove("OAuthToken");
    let refused = provider.check(&plan).await.unwrap_err();
    assert!(refused.contains("OAuthToken"), "{refused}");
}

// ---------------------------------------------------------------------------------------------
// ECR source on moto

#[tokio::test]
async fn an_ecr_source_gives_the_tagged_or_pinned_image_as_image_detail() {
    use baton::core::engine::SourceRevision;
    use baton::providers::aws::ecr_source::EcrSourceProvider;
    let dir = TempDir::new().unwrap();
    let ecr = aws_sdk_ecr::Client::new(&sdk_config(DEPLOY_REGION).await);
    let repository = unique("baton-web");
    ecr.create_repository().repository_name(&repository).send().await.unwrap();
    let push = |layer: &'static str, tag: &'static str| {
        let ecr = ecr.clone();
        let repository = repository.clone();
        async move {
            let manifest = serde_json::json!({"schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 1, "digest": format!("sha256:{layer}")},
                "layers": []});
            let out = ecr
                .put_image()
                .repository_name(&repository)
                .image_manifest(manifest.to_string())
                // moto digests the manifest as empty: each push names its own.
                .image_digest(format!("sha256:{layer}"))
                .image_tag(tag)
                .send()
                .await
                .unwrap();
            out.image.unwrap().image_id.unwrap().image_digest.unwrap()
        }
    };
    // moto drops an image whose only tag moves, where ECR keeps it untagged: the first push
    // keeps a tag of its own.
    let first =
        push("1111111111111111111111111111111111111111111111111111111111111111", "v1").await;
    let second =
        push("2222222222222222222222222222222222222222222222222222222222222222", "latest").await;
    assert_ne!(first, second);
    let provider = EcrSourceProvider::new(roles().await);
    let r = request("Source", "ECR", &[("RepositoryName", repository.as_str())], &["Image"]);

    // The tag's image now: the second push.
    let (outputs, variables, _) =
        succeeded(provider.run(&job(&dir, r.clone(), &[])).await.unwrap());
    assert_eq!(variables["ImageDigest"], second);
    assert_eq!(variables["RepositoryName"], repository);
    assert_eq!(variables["ImageTag"], "latest");
    let uri = format!(".dkr.ecr.{DEPLOY_REGION}.amazonaws.com/{repository}@{second}");
    assert!(variables["ImageURI"].ends_with(&uri), "{}", variables["ImageURI"]);
    let detail: serde_json::Value =
        serde_json::from_str(&zip_entry(&outputs[0].path, "imageDetail.json")).unwrap();
    assert_eq!(detail["ImageURI"], variables["ImageURI"]);

    // A start pinned to the first push's digest gets that image, whatever the tag says now.
    let mut pinned = r.clone();
    pinned.source_revision = Some(SourceRevision {
        revision_type: "IMAGE_DIGEST".into(),
        value: first.clone(),
        branch: None,
    });
    let (_, variables, _) = succeeded(provider.run(&job(&dir, pinned, &[])).await.unwrap());
    assert_eq!(variables["ImageDigest"], first);

    // A tag nobody pushed is the configuration's fault.
    let r = request(
        "Source",
        "ECR",
        &[("RepositoryName", repository.as_str()), ("ImageTag", "v9")],
        &["Image"],
    );
    let (code, message) = failed(provider.run(&job(&dir, r, &[])).await.unwrap());
    assert_eq!(code, "ConfigurationError");
    assert!(message.contains("v9"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// ECS blue/green through CodeDeploy on moto

#[tokio::test]
async fn a_blue_green_deploy_registers_the_images_task_definition_and_deploys_its_appspec() {
    use baton::providers::aws::ecs_blue_green::EcsBlueGreenProvider;
    let dir = TempDir::new().unwrap();
    let config = sdk_config(DEPLOY_REGION).await;
    let codedeploy = aws_sdk_codedeploy::Client::new(&config);
    let ecs = aws_sdk_ecs::Client::new(&config);
    let application = unique("baton-bg");
    let family = unique("web");
    codedeploy
        .create_application()
        .application_name(&application)
        .compute_platform(aws_sdk_codedeploy::types::ComputePlatform::Ecs)
        .send()
        .await
        .unwrap();
    codedeploy
        .create_deployment_group()
        .application_name(&application)
        .deployment_group_name("web")
        .service_role_arn("arn:aws:iam::123456789012:role/CodeDeploy")
        .send()
        .await
        .unwrap();
    let taskdef = format!(
        r#"{{"family": "{family}", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
            "cpu": "256", "memory": "512",
            "containerDefinitions": [{{"name": "web", "image": "<IMAGE1_NAME>", "essential": true,
              "portMappings": [{{"containerPort": 80}}]}}]}}"#
    );
    let appspec = "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n        TaskDefinition: <TASK_DEFINITION>\n        LoadBalancerInfo:\n          ContainerName: web\n          ContainerPort: 80\n";
    let defs = zip_of(
        &dir,
        "defs",
        &[("taskdef.json", taskdef.as_bytes()), ("appspec.yaml", appspec.as_bytes())],
    );
    let uri = "111122223333.dkr.ecr.eu-west-1.amazonaws.com/web@sha256:abc";
    let image = zip_of(
        &dir,
        "image",
        &[("imageDetail.json", format!(r#"{{"ImageURI": "{uri}"}}"#).as_bytes())],
    );
    let config = [
        ("ApplicationName", application.as_str()),
        ("DeploymentGroupName", "web"),
        ("TaskDefinitionTemplateArtifact", "Defs"),
        ("AppSpecTemplateArtifact", "Defs"),
        ("Image1ArtifactName", "Image"),
        ("Image1ContainerName", "IMAGE1_NAME"),
    ];
    let r = request("Deploy", "CodeDeployToECS", &config, &[]);
    let provider = EcsBlueGreenProvider::new(roles().await);
    let started =
        provider.run(&job(&dir, r.clone(), &[("Defs", &defs), ("Image", &image)])).await.unwrap();
    let JobResult::Running { external_id: id, .. } = started else {
        panic!("the deployment was not left running: {started:?}");
    };

    // The deployment's AppSpec names the new revision, which runs the artifact's image.
    let info = codedeploy.get_deployment().deployment_id(&id).send().await.unwrap();
    let revision = info.deployment_info.unwrap().revision.unwrap();
    let content = revision.app_spec_content.unwrap().content.unwrap();
    let arn = content
        .lines()
        .find_map(|l| l.trim().strip_prefix("TaskDefinition: "))
        .unwrap_or_else(|| panic!("no task definition in {content}"))
        .to_owned();
    assert!(arn.contains(&format!("task-definition/{family}:")), "{arn}");
    let registered = ecs.describe_task_definition().task_definition(&arn).send().await.unwrap();
    let containers = registered.task_definition.unwrap().container_definitions.unwrap();
    assert_eq!(containers[0].image.as_deref(), Some(uri));
    // Followed as CodeDeploy deployments are (moto's stays Created).
    assert!(matches!(
        provider.resume(&job(&dir, r.clone(), &[]), &id).await.unwrap(),
        JobResult::Running { .. }
    ));

    // A placeholder the task definition lacks is the configuration's fault, before anything.
    let mut wrong = r;
    wrong.configuration.insert("Image1ContainerName".into(), "OTHER".into());
    let (code, message) = failed(
        provider.run(&job(&dir, wrong, &[("Defs", &defs), ("Image", &image)])).await.unwrap(),
    );
    assert_eq!(code, "ConfigurationError");
    assert!(message.contains("<OTHER>"), "{message}");
}
