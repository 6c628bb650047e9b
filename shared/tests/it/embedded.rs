//! The embedded runtime end to end: a git repository, a buildspec, an approval and S3 deploys in
//! two regions, run by the dispatcher in this process.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use baton::embedded::{Embedded, EmbeddedConfig};
use baton::ports::state::StateStore;
use baton::service::Outcome;
use baton_core::declaration::PipelineDocument;
use baton_core::engine::{ActionStatus, Execution, ExecutionStatus, Input, Trigger};
use tokio::sync::watch;

pub(crate) const PIPELINE: &str = r##"{
  "pipeline": {
    "name": "app",
    "roleArn": "arn:aws:iam::111111111111:role/pipeline",
    "artifactStores": {
      "us-east-1": {"type": "S3", "location": "artifacts-east"},
      "eu-west-1": {"type": "S3", "location": "artifacts-west"}
    },
    "stages": [
      {"name": "Source", "actions": [{"name": "Checkout",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
        "configuration": {"RepositoryName": "app", "BranchName": "main"},
        "outputArtifacts": [{"name": "Src"}], "namespace": "SourceVariables"}]},
      {"name": "Build", "actions": [{"name": "Compile",
        "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
        "configuration": {"ProjectName": "app",
          "EnvironmentVariables": "[{\"name\":\"COMMIT\",\"value\":\"#{SourceVariables.CommitId}\",\"type\":\"PLAINTEXT\"}]"},
        "inputArtifacts": [{"name": "Src"}], "outputArtifacts": [{"name": "Site"}]}]},
      {"name": "Approve", "actions": [{"name": "Gate",
        "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}]},
      {"name": "Deploy", "actions": [
        {"name": "East", "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
         "configuration": {"BucketName": "site-east", "Extract": "true"}, "inputArtifacts": [{"name": "Site"}]},
        {"name": "West", "region": "eu-west-1",
         "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
         "configuration": {"BucketName": "site-west", "Extract": "true"}, "inputArtifacts": [{"name": "Site"}]}]}
    ]
  }
}"##;

const BUILDSPEC: &str = "version: 0.2
phases:
  build:
    commands:
      - mkdir -p dist
      - echo \"hello from $COMMIT\" > dist/index.html
      - FAIL_BUILD_IF_PRESENT
artifacts:
  files: ['**/*']
  base-directory: dist
";

fn git(repo: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

/// A home with the `app` repository whose build fails when `fail` is set.
pub(crate) fn home_with_repo(fail: bool) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let repo = home.path().join("git/app");
    std::fs::create_dir_all(&repo).unwrap();
    let spec = BUILDSPEC.replace("FAIL_BUILD_IF_PRESENT", if fail { "exit 3" } else { "true" });
    std::fs::write(repo.join("buildspec.yml"), spec).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    home
}

pub(crate) struct Running {
    pub(crate) rt: Arc<Embedded>,
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) dispatcher: tokio::task::JoinHandle<()>,
}

async fn start_runtime(home: &Path) -> Running {
    start_runtime_with(EmbeddedConfig {
        home: home.to_path_buf(),
        quiet: true,
        workers: 8,
        ..EmbeddedConfig::default()
    })
    .await
}

pub(crate) async fn start_runtime_with(config: EmbeddedConfig) -> Running {
    start_runtime_for(config, PIPELINE).await
}

pub(crate) async fn start_runtime_for(config: EmbeddedConfig, pipeline: &str) -> Running {
    let rt = Arc::new(Embedded::open(&config).unwrap());
    let doc = PipelineDocument::parse(pipeline).unwrap();
    rt.put_pipeline(&doc, "us-east-1").await.unwrap();
    std::mem::forget(rt.try_lock().expect("no other dispatcher"));
    let (stop, rx) = watch::channel(false);
    let dispatcher = tokio::spawn(Arc::clone(&rt).dispatch(rx));
    Running { rt, stop, dispatcher }
}

/// The runtime with `[aws]` on `endpoint` (a loopback server playing an AWS service), running
/// `pipeline` in a home with the `app` repository; the home outlives the runtime's last file
/// operation.
pub(crate) async fn start_runtime_on_aws(endpoint: &str, pipeline: &str) -> Running {
    use aws_config::{BehaviorVersion, Region};
    use aws_credential_types::Credentials;
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "static"))
        .load()
        .await;
    let home = home_with_repo(false);
    let config = EmbeddedConfig {
        home: home.path().to_path_buf(),
        quiet: true,
        workers: 4,
        aws: Some(sdk),
        ..EmbeddedConfig::default()
    };
    let running = start_runtime_for(config, pipeline).await;
    std::mem::forget(home);
    running
}

/// Starts `app` through the control API with the pipeline variable `name` set to `value`.
pub(crate) async fn start_with_variable(rt: &Embedded, name: &str, value: &str) -> String {
    let api = rt.control_api("us-east-1", baton::api::Credentials::new());
    let body = serde_json::json!({"name": "app", "variables": [{"name": name, "value": value}]});
    let reply = api
        .call("StartPipelineExecution", body.to_string().as_bytes(), "arn:aws:iam::1:user/t")
        .await;
    reply.json()["pipelineExecutionId"].as_str().unwrap().to_owned()
}

pub(crate) async fn wait_for(
    rt: &Embedded,
    id: &str,
    what: &str,
    done: impl Fn(&Execution) -> bool,
) -> Execution {
    for _ in 0..600 {
        if let Some(e) = rt.store.execution("app", id).await.unwrap()
            && done(&e)
        {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let e = rt.store.execution("app", id).await.unwrap();
    panic!("execution never {what}: {e:#?}");
}

pub(crate) fn waiting_token(e: &Execution) -> Option<String> {
    let gate = &e.stages[2].actions[0];
    (gate.status == ActionStatus::InProgress).then(|| gate.token.clone()).flatten()
}

/// A transition's events are queued for delivery in the transaction that saves its state:
/// nothing waits in the outbox for a second write, and the first action's request is queued
/// the moment the start is applied, with no dispatcher running.
#[tokio::test]
async fn a_transition_queues_its_deliveries_with_its_state() {
    let home = home_with_repo(false);
    let rt = Embedded::open(&EmbeddedConfig {
        home: home.path().to_path_buf(),
        quiet: true,
        ..EmbeddedConfig::default()
    })
    .unwrap();
    rt.put_pipeline(&PipelineDocument::parse(PIPELINE).unwrap(), "us-east-1").await.unwrap();
    assert!(rt.store.relays_outbox());
    let start = Input::Start {
        execution_id: "e-1".into(),
        trigger: Trigger::default(),
        variables: BTreeMap::new(),
        source_revisions: BTreeMap::new(),
    };
    let Outcome::Applied { published } = rt.apply("app", start).await.unwrap() else {
        panic!("the start was not applied");
    };
    assert!(published > 0);
    assert!(rt.store.pending_outbox(i64::MAX, 10).await.unwrap().is_empty());
    let queued = rt.bus.claim(baton_protocol::routing::Target::ActionWorker, 10).unwrap();
    let request = queued[0].event.action_request().unwrap();
    assert_eq!((request.execution_id.as_str(), request.action.as_str()), ("e-1", "Checkout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_runs_from_commit_to_two_regions() {
    let home = home_with_repo(false);
    let running = start_runtime(home.path()).await;
    let rt = &running.rt;
    let trigger =
        Trigger { trigger_type: "StartPipelineExecution".into(), trigger_detail: "test".into() };
    let id = rt.trigger.start("app", trigger, BTreeMap::new()).await.unwrap();

    let waiting = wait_for(rt, &id, "reached the approval", |e| waiting_token(e).is_some()).await;
    let commit = waiting.outputs["SourceVariables"]["CommitId"].clone();
    assert_eq!(commit.len(), 40);
    let decision = Input::ApprovalDecided {
        stage: "Approve".into(),
        action: "Gate".into(),
        token: waiting_token(&waiting).unwrap(),
        approved: true,
        summary: "ship it".into(),
        by: "tester".into(),
    };
    assert!(matches!(rt.apply("app", decision.clone()).await.unwrap(), Outcome::Applied { .. }));
    assert!(
        matches!(rt.apply("app", decision).await.unwrap(), Outcome::Rejected(_)),
        "a token works once"
    );

    let done = wait_for(rt, &id, "ended", |e| e.status().is_ended()).await;
    assert_eq!(done.status(), ExecutionStatus::Succeeded, "{:?}", done.status_summary);
    for bucket in ["site-east", "site-west"] {
        let page = std::fs::read_to_string(home.path().join("s3").join(bucket).join("index.html"))
            .unwrap();
        assert_eq!(page.trim(), format!("hello from {commit}"), "{bucket} got the built page");
    }
    // The artifact was produced in the home region. The eu-west-1 action downloads its input,
    // so it read it there: no copy was made into the eu-west-1 store.
    let site = &done.stages[1].actions[0].outputs[0].location;
    assert_eq!(site.bucket, "baton-local-us-east-1");
    assert!(home.path().join("artifacts/us-east-1").join(&site.key).exists());
    let copy = home.path().join("artifacts/eu-west-1").join(&site.key);
    assert!(!copy.exists(), "a download made a copy in eu-west-1 at {}", copy.display());
    // Public events were journaled, ending with the pipeline's success. They go out once the
    // state that says so is saved, so the state may show the end a moment before they do.
    let journaled = || std::fs::read_to_string(home.path().join("events.jsonl")).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let ended = |j: &str| {
        j.lines().last().is_some_and(|l| {
            l.contains("CodePipeline Pipeline Execution State Change") && l.contains("SUCCEEDED")
        })
    };
    while !ended(&journaled()) && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let journal = journaled();
    let last = journal.lines().last().unwrap();
    assert!(
        last.contains("CodePipeline Pipeline Execution State Change") && last.contains("SUCCEEDED"),
        "{last}"
    );
    // Every action's start and end is there once (the end published by the worker), shaped as
    // CodePipeline's, without the messages that rode on them.
    let actions = journal.lines().filter(|l| l.contains("Action Execution State Change"));
    let states: Vec<String> = actions
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .inspect(|e| {
            let keys = e["detail"].as_object().unwrap().keys();
            assert!(!keys.into_iter().any(|k| k.starts_with("baton-")), "{e}");
        })
        .map(|e| format!("{}/{}", e["detail"]["action"], e["detail"]["state"]))
        .collect();
    let ends = states.iter().filter(|s| s.ends_with("\"SUCCEEDED\"")).count();
    assert_eq!(ends * 2, states.len(), "one start and one end per action: {states:?}");
    let _ = running.stop.send(true);
    running.dispatcher.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_build_fails_the_execution_and_sends_a_notice() {
    let home = home_with_repo(true);
    // As a home made by hand with the usual umask would be; Baton takes it back.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let running = start_runtime(home.path()).await;
    let rt = &running.rt;
    let trigger =
        Trigger { trigger_type: "StartPipelineExecution".into(), trigger_detail: "test".into() };
    let id = rt.trigger.start("app", trigger, BTreeMap::new()).await.unwrap();
    let done = wait_for(rt, &id, "ended", |e| e.status().is_ended()).await;
    assert_eq!(done.status(), ExecutionStatus::Failed);
    let build = &done.stages[1].actions[0];
    assert!(
        build.error.as_ref().unwrap().message.contains("exit 3")
            || build.error.as_ref().unwrap().message.contains("exit status 3"),
        "{:?}",
        build.error
    );
    assert_eq!(done.stages[2].status, None, "nothing ran after the failed stage");
    // The failure notice went out (written to the notices log on one machine).
    for _ in 0..100 {
        if std::fs::read_to_string(home.path().join("notices.log"))
            .is_ok_and(|t| t.contains("failed in stage Build"))
        {
            // Notices carry approval links: the log and its home are for their owner only.
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode();
            assert_eq!(mode(&home.path().join("notices.log")) & 0o777, 0o600);
            assert_eq!(mode(&home.path().join("baton.db")) & 0o777, 0o600);
            assert_eq!(mode(home.path()) & 0o777, 0o700);
            let _ = running.stop.send(true);
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no failure notice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_event_is_dead_lettered_and_changes_nothing() {
    let home = home_with_repo(false);
    let running = start_runtime(home.path()).await;
    let rt = &running.rt;
    let bad = baton::bus_events::BusEvent {
        source: "baton".into(),
        detail_type: baton::bus_events::ACTION_COMPLETED.into(),
        resources: vec![],
        detail: serde_json::json!({"pipeline": "app", "input": {"type": "ActionCompleted", "nonsense": true}}),
        trace: None,
    };
    rt.bus.enqueue(baton::routing::Target::StageAdvance, &bad).unwrap();
    for _ in 0..100 {
        let dead = rt.bus.dead_letters().unwrap();
        if let Some((target, reason, _)) = dead.first() {
            assert_eq!(target, "stage-advance");
            assert!(reason.contains("malformed"), "{reason}");
            assert!(rt.store.executions("app", 10).await.unwrap().is_empty());
            let _ = running.stop.send(true);
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the malformed event was not dead-lettered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_aws_configured_a_cloudformation_deploy_runs_against_it() {
    use aws_sdk_cloudformation::Client;
    let home = tempfile::tempdir().unwrap();
    // The source: a zip holding a template, in a local bucket folder.
    let bucket = home.path().join("s3/src");
    std::fs::create_dir_all(&bucket).unwrap();
    let file = std::fs::File::create(bucket.join("infra.zip")).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    zip.start_file("template.yaml", zip::write::SimpleFileOptions::default()).unwrap();
    std::io::Write::write_all(
        &mut zip,
        b"Resources:\n  Topic:\n    Type: AWS::SNS::Topic\nOutputs:\n  TopicArn:\n    Value: !Ref Topic\n",
    )
    .unwrap();
    zip.finish().unwrap();
    let stack = crate::aws_support::unique("baton-local-cfn");
    let pipeline = serde_json::json!({"name": "infra", "roleArn": "arn:aws:iam::111111111111:role/p",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [
          {"name": "Source", "actions": [{"name": "Zip",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
            "configuration": {"S3Bucket": "src", "S3ObjectKey": "infra.zip"}, "outputArtifacts": [{"name": "Src"}]}]},
          {"name": "Deploy", "actions": [{"name": "Stack", "namespace": "StackOutputs",
            "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CloudFormation", "version": "1"},
            "configuration": {"ActionMode": "CREATE_UPDATE", "StackName": stack, "TemplatePath": "Src::template.yaml"},
            "inputArtifacts": [{"name": "Src"}]}]}]});
    let sdk = crate::aws_support::sdk_config("us-east-1").await;
    let config = EmbeddedConfig {
        home: home.path().to_path_buf(),
        quiet: true,
        workers: 4,
        aws: Some(sdk.clone()),
        ..EmbeddedConfig::default()
    };
    let rt = Arc::new(Embedded::open(&config).unwrap());
    let doc = PipelineDocument::from_value(pipeline).unwrap();
    rt.put_pipeline(&doc, "us-east-1").await.unwrap();
    std::mem::forget(rt.try_lock().unwrap());
    let (stop, rx) = watch::channel(false);
    tokio::spawn(Arc::clone(&rt).dispatch(rx));
    let trigger =
        Trigger { trigger_type: "StartPipelineExecution".into(), trigger_detail: "test".into() };
    let id = rt.trigger.start("infra", trigger, BTreeMap::new()).await.unwrap();
    let mut done = None;
    for _ in 0..600 {
        if let Some(e) =
            rt.store.execution("infra", &id).await.unwrap().filter(|e| e.status().is_ended())
        {
            done = Some(e);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let done = done.expect("the execution ended");
    assert_eq!(done.status(), ExecutionStatus::Succeeded, "{:?}", done.status_summary);
    let stacks = Client::new(&sdk).describe_stacks().stack_name(&stack).send().await.unwrap();
    assert_eq!(stacks.stacks().len(), 1, "the stack exists on the configured AWS endpoint");
    assert!(
        done.outputs["StackOutputs"]["TopicArn"].starts_with("arn:aws:sns:"),
        "{:?}",
        done.outputs
    );
    let _ = stop.send(true);
}

#[tokio::test]
async fn an_action_this_machine_cannot_run_is_kept_and_its_start_refused_before_the_run() {
    let home = tempfile::tempdir().unwrap();
    let rt = Embedded::open(&EmbeddedConfig {
        home: home.path().to_path_buf(),
        ..EmbeddedConfig::default()
    })
    .unwrap();
    let deploy = |provider: &str| {
        serde_json::json!({"name": "Ship",
            "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": provider, "version": "1"},
            "configuration": {"ClusterName": "c", "ServiceName": "s", "ApplicationName": "a", "DeploymentGroupName": "g", "EnvironmentName": "e", "ActionMode": "CREATE_UPDATE",
                "StackName": "s", "TemplatePath": "Src::t.yaml", "Application": "a", "Environment": "e",
                "ConfigurationProfile": "c", "InputArtifactConfigurationPath": "c.json", "ProductId": "p"},
            "inputArtifacts": [{"name": "Src"}]})
    };
    let doc = |name: &str, provider: &str| {
        PipelineDocument::from_value(serde_json::json!({"name": name,
            "roleArn": "arn:aws:iam::111111111111:role/p",
            "artifactStore": {"type": "S3", "location": "artifacts"},
            "stages": [
              {"name": "Source", "actions": [{"name": "Zip",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"S3Bucket": "src", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Src"}]}]},
              {"name": "Deploy", "actions": [deploy(provider)]}]}))
        .unwrap()
    };
    let start = |name: &'static str| {
        let trigger =
            Trigger { trigger_type: "StartPipelineExecution".into(), trigger_detail: "t".into() };
        rt.trigger.start(name, trigger, Default::default())
    };
    // No provider anywhere: said so, with no build flag or setting that would not help.
    rt.put_pipeline(&doc("ecs", "ServiceCatalog"), "us-east-1").await.unwrap();
    let err = start("ecs").await.unwrap_err().to_string();
    assert_eq!(
        err,
        "ecs cannot run here: stage \"Deploy\", action \"Ship\": Baton has no provider for AWS/Deploy/ServiceCatalog actions yet, so this pipeline can be created and kept here but not run"
    );
    // An AWS provider Baton has: what to configure.
    rt.put_pipeline(&doc("stack", "CloudFormation"), "us-east-1").await.unwrap();
    let err = start("stack").await.unwrap_err().to_string();
    assert!(
        err.contains("AWS/Deploy/CloudFormation runs against AWS: add an [aws] section"),
        "{err}"
    );
    for name in ["ecs", "stack"] {
        assert!(rt.store.executions(name, 10).await.unwrap().is_empty(), "{name} ran half-way");
    }
}

/// `PollForSourceChanges: "true"`: a new commit starts one execution, pinned to it, however
/// often the source is looked at; an unchanged source starts nothing.
#[tokio::test]
async fn a_polled_source_starts_once_per_new_revision() {
    let home = tempfile::tempdir().unwrap();
    let repo = home.path().join("git/app");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["commit", "-q", "--allow-empty", "-m", "one"]);
    let rt = Embedded::open(&EmbeddedConfig {
        home: home.path().to_path_buf(),
        quiet: true,
        ..EmbeddedConfig::default()
    })
    .unwrap();
    let doc = PipelineDocument::from_value(serde_json::json!({"name": "polled",
        "roleArn": "arn:aws:iam::111111111111:role/p",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "stages": [
          {"name": "Source", "actions": [{"name": "Checkout",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
            "configuration": {"RepositoryName": "app", "BranchName": "main", "PollForSourceChanges": "true"},
            "outputArtifacts": [{"name": "Src"}]}]},
          {"name": "Build", "actions": [{"name": "Check",
            "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
            "configuration": {"ProjectName": "p"}, "inputArtifacts": [{"name": "Src"}]}]}]}))
    .unwrap();
    rt.put_pipeline(&doc, "us-east-1").await.unwrap();
    let first = rt.trigger.poll().await.unwrap();
    assert_eq!(first.len(), 1, "a new pipeline runs what its source holds");
    assert!(rt.trigger.poll().await.unwrap().is_empty(), "the same revision again");
    git(&["commit", "-q", "--allow-empty", "-m", "two"]);
    let second = rt.trigger.poll().await.unwrap();
    assert_eq!(second.len(), 1);
    let e = rt.store.execution("polled", &second[0].1).await.unwrap().unwrap();
    assert_eq!(e.trigger.trigger_type, "PollForSourceChanges");
    let commit = git(&["rev-parse", "HEAD"]);
    assert_eq!(e.source_revisions["Checkout"].value, commit, "pinned to the new commit");
    assert!(rt.trigger.poll().await.unwrap().is_empty());
}
