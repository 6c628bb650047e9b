//! The end-to-end proof: a release across accounts and regions on emulated AWS, run by the
//! built function binaries, with a failing variant and injected faults.

// A test binary: its helpers panic on what the tests would.
#![allow(clippy::unwrap_used)]

mod aws_cli;
mod functions;
mod jobs;
mod own_role;
mod providers;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use baton_core::engine::{ActionStatus, Execution, ExecutionStatus};
use baton_e2e::delivery::snapshot;
use baton_e2e::proxy::FOR_ANOTHER_SERVICE;
use baton_e2e::scenario::{RELEASE_IMAGE, Release, describe, ended, stack_placements};
use baton_e2e::stack::{GITHUB_WEBHOOK_SECRET, HOME, TARGET_ACCOUNT};
use baton_e2e::{FaultPlan, Harness, approval, figures};
use serde_json::Value;

const STAGES: [(&str, &[&str]); 4] = [
    ("Source", &["Upload"]),
    ("Build", &["Build"]),
    ("Approve", &["Release"]),
    ("Deploy", &["Stack", "Site", "Service"]),
];

/// Waits up to `patience` for a value `find` picks out of `collected`.
async fn wait_collected<T>(
    collected: &baton_e2e::delivery::Collected,
    patience: Duration,
    find: impl Fn(&[Value]) -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + patience;
    loop {
        if let Some(found) = find(&snapshot(collected)) {
            return Some(found);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What went wrong on the way, for a failing assertion's message.
async fn diagnostics(h: &Harness) -> String {
    let sqs = aws_sdk_sqs::Client::new(&h.stack.sdk(HOME).await);
    let dead = sqs
        .receive_message()
        .queue_url(&h.stack.dead_letter_queue)
        .max_number_of_messages(10)
        .send()
        .await
        .map(|o| o.messages().iter().map(|m| m.body().unwrap_or("").to_owned()).collect::<Vec<_>>())
        .unwrap_or_default();
    format!(
        "function errors: {:?}\ndead letters: {dead:?}\nlogs: target/e2e/{}/logs",
        snapshot(&h.delivery.errors),
        h.stack.name
    )
}

/// Runs the release up to its end: upload, approval notice read and decided, end.
async fn run_release(h: &Harness, release: &Release) -> Execution {
    release.upload_source(&h.stack).await.unwrap();
    finish_release(h, release).await
}

/// Runs an uploaded release up to its end: approval notice read and decided, end.
async fn finish_release(h: &Harness, release: &Release) -> Execution {
    let waiting = release
        .wait_for(&h.stack, "the manual approval", Duration::from_secs(60), |e| {
            ended(e) || e.stages[2].actions[0].status == ActionStatus::InProgress
        })
        .await
        .unwrap();
    if ended(&waiting) {
        return waiting;
    }
    let pipeline = release.pipeline.clone();
    let notice = wait_collected(&h.delivery.approval_notices, Duration::from_secs(20), |n| {
        n.iter().find_map(|n| approval::read(n, &pipeline, "Approve", "Release"))
    })
    .await;
    let Some(notice) = notice else {
        panic!(
            "no notice naming {pipeline} / Approve / Release reached the approvals topic: {:?}\n{}",
            snapshot(&h.delivery.approval_notices),
            diagnostics(h).await
        );
    };
    let state_token =
        waiting.stages[2].actions[0].token.clone().expect("a waiting approval has a token");
    let token = notice.token.as_ref().expect("the notice carries CodePipeline's approval token");
    assert_eq!(token, &state_token, "the notice's token is the one in the execution's state");
    // As a person: the link in the notice, through the approval pages function's URL. A request
    // delivered twice sends a second notice whose links replace the first one's, so the newest
    // notice that opens its page is the one followed.
    let pages = h.pool("approval-pages").unwrap();
    let mut decided = None;
    for _ in 0..40 {
        let notices: Vec<approval::Notice> = snapshot(&h.delivery.approval_notices)
            .iter()
            .filter_map(|n| approval::read(n, &pipeline, "Approve", "Release"))
            .collect();
        for n in notices.iter().rev() {
            if let Ok(page) = approval::decide_by_link(&pages, n, true).await {
                decided = Some((n.clone(), page));
                break;
            }
        }
        if decided.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (notice, page) = decided.expect("no approve link in a notice opened its page");
    assert!(page.contains("e2e (approval link)"), "{page}");
    let done = release.wait_for(&h.stack, "the end", Duration::from_secs(60), ended).await.unwrap();
    if done.status() == ExecutionStatus::Succeeded {
        let gate = &done.stages[2].actions[0];
        assert_eq!(gate.decided_by.as_deref(), Some("e2e (approval link)"));
        let (status, page) =
            h.probe("approval-pages", approval::open_link(&pages, &notice, true)).await.unwrap();
        assert_eq!(status, 409, "a used link must say it was used: {page}");
        assert!(page.contains("e2e (approval link)"), "it names who decided: {page}");
    }
    done
}

fn public_states(events: &[Value], execution: &str) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["detail"]["execution-id"] == execution)
        .map(|e| {
            let d = &e["detail"];
            let what = match (d["stage"].as_str(), d["action"].as_str()) {
                (Some(s), Some(a)) => format!("action {s}/{a}"),
                (Some(s), None) => format!("stage {s}"),
                _ => "pipeline".to_owned(),
            };
            (what, d["state"].as_str().unwrap_or("").to_owned())
        })
        .collect()
}

/// Every action ran exactly once: one attempt in the state, and one provider call each.
fn assert_each_action_ran_once(h: &Harness, e: &Execution, release: &Release) {
    for (i, (_, actions)) in STAGES.iter().enumerate() {
        for (j, name) in actions.iter().enumerate() {
            assert_eq!(e.stages[i].actions[j].attempt, 1, "{name} ran more than one attempt");
        }
    }
    let calls = h.proxy.calls();
    let count = |service: &str, op: &str, path: &str| {
        calls
            .iter()
            .filter(|c| c.service == service && c.operation == op && c.path.contains(path))
            .count()
    };
    assert_eq!(count("s3", "GetObject", &release.source_bucket), 1, "the source was fetched once");
    assert_eq!(count("codebuild", "StartBuild", ""), 1, "one build");
    assert_eq!(count("cloudformation", "CreateStack", ""), 1, "one stack creation");
    // The site is the build's artifact: the source's three files and the build's own, each put
    // once.
    assert_eq!(count("s3", "PutObject", &release.site_bucket), 4, "each site file put once");
    assert_eq!(count("ecs", "RegisterTaskDefinition", ""), 1, "one task definition revision");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_release_runs_across_accounts_and_regions() {
    // IAM enforced (as in every scenario): each function runs as the role template.yaml
    // declares, the deploy as the role of infra/target-account.yaml.
    let h = Harness::start(2, FaultPlan::default()).await.unwrap();
    let release = Release::new(&h.stack, "ok");
    release.prepare(&h.stack, &release.project).await.unwrap();
    h.enforce().await.unwrap();
    let e = run_release(&h, &release).await;
    assert_eq!(
        e.status(),
        ExecutionStatus::Succeeded,
        "{}\n{}",
        describe(Some(&e)),
        diagnostics(&h).await
    );

    // The functions' metrics (CloudWatch's embedded metric format, on their output): the
    // execution's start and success, and each provider's successful attempt with its duration.
    // The execution's end is relayed from the table's stream after it is saved: waited for.
    let expected = [
        ("ExecutionsStarted", "Pipeline", release.pipeline.as_str()),
        ("ExecutionsSucceeded", "Pipeline", release.pipeline.as_str()),
        ("ActionsSucceeded", "Provider", "AWS/Source/S3"),
        ("ActionDuration", "Provider", "AWS/Source/S3"),
        ("ActionDuration", "Provider", "AWS/Build/CodeBuild"),
        ("ActionDuration", "Provider", "AWS/Deploy/ECS"),
    ];
    let mut missing = Vec::new();
    for _ in 0..100 {
        let metrics = h.metric_lines();
        missing = expected
            .iter()
            .filter(|(name, dimension, value)| {
                !metrics.iter().any(|m| m[*dimension] == *value && m[*name].is_number())
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(missing.is_empty(), "no metric line for {missing:?}");

    // The stack exists in the target account and region only.
    let placements = stack_placements(&h.stack, &release.stack_name).await.unwrap();
    assert_eq!(placements, vec![(TARGET_ACCOUNT.to_owned(), "eu-west-1".to_owned())]);

    // The service in the target account runs a new revision, with the source's image.
    let images = release.service_images(&h.stack).await.unwrap();
    assert_eq!(images, [("app".to_owned(), RELEASE_IMAGE.to_owned())]);

    // The eu-west-1 and us-west-2 actions download their inputs, so they read them where they
    // were made: in the home region's bucket, encrypted with its key. A download needs no copy
    // in its own region (only a service working in place there would).
    let calls = h.proxy.calls();
    let copies: Vec<_> = calls.iter().filter(|c| c.operation == "CopyObject").collect();
    assert!(copies.is_empty(), "downloads made copies: {copies:?}");
    let home_bucket = &h.stack.buckets["us-east-1"];
    let artifact_reads: Vec<_> = calls
        .iter()
        .filter(|c| c.function == "action-worker" && c.operation == "GetObject")
        .filter(|c| h.stack.buckets.values().any(|b| c.path.starts_with(&format!("/{b}/"))))
        .collect();
    assert!(artifact_reads.len() >= 3, "three deploys read {artifact_reads:?}");
    for read in &artifact_reads {
        assert!(read.path.starts_with(&format!("/{home_bucket}/")), "{}", read.path);
    }
    let east_s3 = baton_e2e::scenario::s3_client(&h.stack.sdk("us-east-1").await);
    let key = artifact_reads[0].path.trim_start_matches(&format!("/{home_bucket}/")).to_owned();
    let head = east_s3.head_object().bucket(home_bucket).key(&key).send().await.unwrap();
    assert_eq!(head.ssekms_key_id(), Some(h.stack.keys_by_region["us-east-1"].as_str()));
    let west_s3 = baton_e2e::scenario::s3_client(&h.stack.sdk("us-west-2").await);
    let page =
        west_s3.get_object().bucket(&release.site_bucket).key("index.html").send().await.unwrap();
    assert_eq!(page.body.collect().await.unwrap().into_bytes().as_ref(), b"<h1>release</h1>\n");

    // Every public state change was published, once.
    let id = e.id.clone();
    let events = wait_collected(&h.delivery.public_events, Duration::from_secs(10), |events| {
        let states = public_states(events, &id);
        states.contains(&("pipeline".into(), "SUCCEEDED".into())).then_some(states)
    })
    .await
    .expect("the pipeline's SUCCEEDED event was not published");
    let mut expected = vec![
        ("pipeline".to_owned(), "STARTED".to_owned()),
        ("pipeline".into(), "SUCCEEDED".into()),
    ];
    for (stage, actions) in STAGES {
        expected.push((format!("stage {stage}"), "STARTED".into()));
        expected.push((format!("stage {stage}"), "SUCCEEDED".into()));
        for a in actions {
            expected.push((format!("action {stage}/{a}"), "STARTED".into()));
            expected.push((format!("action {stage}/{a}"), "SUCCEEDED".into()));
        }
    }
    let (mut got, mut want) = (events.clone(), expected);
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_each_action_ran_once(&h, &e, &release);
    // Only the worker (results) and stage-advance (the outbox relay) publish: the trigger and
    // the approval pages save, and the stream carries what they saved. Their roles in
    // template.yaml have no events:PutEvents.
    let publishers: BTreeSet<String> = h
        .proxy
        .calls()
        .iter()
        .filter(|c| c.operation == "PutEvents")
        .map(|c| c.function.clone())
        .collect();
    assert!(
        publishers.iter().all(|f| f == "action-worker" || f == "stage-advance"),
        "{publishers:?}"
    );

    // The build was started, left running, and completed when CodeBuild announced its end.
    let records = h.records.lock().unwrap().clone();
    assert!(
        records.iter().any(|r| r.function == "action-worker"
            && r.kind == "CodeBuild Build State Change"
            && r.ok),
        "the build's end never reached the action-worker: {:?}",
        records.iter().map(|r| (&r.function, &r.kind)).collect::<Vec<_>>()
    );
    let build = &e.stages[1].actions[0];
    let build_id = build.external_id.clone().unwrap_or_default();
    assert!(build_id.starts_with(&release.project), "{build:?}");

    // CodeBuild was handed the source artifact in place, and told to write its own artifact
    // into the home bucket with the home key; the us-west-2 site is that artifact.
    let start = h
        .proxy
        .calls()
        .into_iter()
        .find_map(|c| (c.operation == "StartBuild").then_some(c.request).flatten())
        .expect("StartBuild was recorded");
    let home_bucket = &h.stack.buckets[HOME];
    let source = start["sourceLocationOverride"].as_str().unwrap_or_default();
    assert!(source.starts_with(&format!("{home_bucket}/{}/", release.pipeline)), "{start}");
    assert!(source.ends_with("/SourceOutput/1.zip"), "{start}");
    assert_eq!(start["sourceTypeOverride"], "S3");
    assert_eq!(start["artifactsOverride"]["location"].as_str(), Some(home_bucket.as_str()));
    assert_eq!(
        start["encryptionKeyOverride"].as_str(),
        Some(h.stack.keys_by_region[HOME].as_str())
    );
    let built_by = west_s3
        .get_object()
        .bucket(&release.site_bucket)
        .key("built-by.txt")
        .send()
        .await
        .expect("the site holds the build's artifact");
    assert_eq!(built_by.body.collect().await.unwrap().into_bytes().as_ref(), build_id.as_bytes());

    write_figures(&h, 6, &release.site_bucket);

    // A malformed event is dead-lettered by each function that takes events, as its role, and
    // answered: never retried.
    let takers = ["action-worker", "approval", "stage-advance", "trigger"];
    for function in takers {
        let malformed = serde_json::json!({"source": "baton", "detail": {"pipeline": "p"}});
        let answer = h.pool(function).unwrap().invoke(malformed).await.unwrap();
        assert!(answer.is_ok(), "{function} failed on a malformed event: {answer:?}");
    }
    let queue = h.stack.dead_letter_queue.rsplit('/').next().unwrap().to_owned();
    let dead_lettered: BTreeSet<String> = h
        .proxy
        .calls()
        .into_iter()
        .filter(|c| c.operation == "SendMessage" && c.status == 200)
        .filter(|c| c.resource.ends_with(&format!(":{queue}")))
        .map(|c| c.function)
        .collect();
    assert_eq!(dead_lettered, takers.map(str::to_owned).into(), "who dead-lettered");

    // Every statement of the roles is either needed by a call of this release, or by one of
    // another scenario, or said not to be exercised on moto, and why.
    assert_no_call_refused(&h);
    statement_mutation_check(&h.needed_statements());
}

/// With IAM enforced, the roles as declared were enough: moto refused no call.
fn assert_no_call_refused(h: &Harness) {
    let denied = h.denied_calls();
    assert!(denied.is_empty(), "moto refused calls the declared roles should allow: {denied:#?}");
}

/// The statement-mutation check: removing a statement from a role must fail a test. A
/// statement is needed when a call of the release was allowed by it alone (so without it
/// moto refuses the call, and the assertion above fails); the others are listed here with
/// why no scenario on moto exercises them, and a listed statement that is needed fails too,
/// so the list stays true.
fn statement_mutation_check(needed: &BTreeMap<String, Option<String>>) {
    let unexercised: BTreeMap<&str, &str> =
        NOT_EXERCISED_ON_MOTO.iter().chain(EXERCISED_ELSEWHERE).copied().collect();
    let mut wrong = Vec::new();
    for (statement, call) in needed {
        match (call, unexercised.get(statement.as_str())) {
            (Some(call), Some(_)) => wrong.push(format!("{statement} is listed as not exercised, yet only it allowed {call}")),
            (None, None) => wrong.push(format!("{statement}: no call of the release needs it, and it is not listed as not exercised")),
            _ => {}
        }
    }
    for listed in unexercised.keys() {
        if !needed.contains_key(*listed) {
            wrong.push(format!("{listed} is listed but no role declares it"));
        }
    }
    let report: Vec<String> =
        needed.iter().map(|(s, c)| format!("{s}: {}", c.as_deref().unwrap_or("-"))).collect();
    assert!(wrong.is_empty(), "{wrong:#?}\nevery statement: {report:#?}");
}

/// Statements the release does not need and another scenario does, with that scenario's test,
/// which checks with [`assert_needed_here`] that it still needs them.
const EXERCISED_ELSEWHERE: &[(&str, &str)] = &[
    // An action's end the worker could not save itself goes by the bus to stage-advance.
    ("ActionWorkerFunction/PublishResults", FAULTS),
    ("StageAdvanceFunction/ReadAndWriteExecutions", FAULTS),
    ("ApiFunction/ReadAndChangePipelinesAndExecutions", CONSOLE),
    ("ApiFunction/ReadPipelineRolesTrust", CONSOLE),
    ("ApiFunction/FindDeclaredArtifactStores", CONSOLE),
    ("TriggerFunction/PollAsPipelineRoles", CONSOLE),
    ("TriggerFunction/ReadWebhookSecrets", CONSOLE),
    ("TriggerFunction/WebhookSecretsKeyThroughSecretsManagerOnly", CONSOLE),
    ("ActionWorkerFunction/ReadAndWriteDeclaredArtifacts", CONSOLE),
    // A download reads its input where it was made; a service that reads in place in another
    // region gets a copy there, and an action there writes its outputs there.
    ("ActionWorkerFunction/region.yaml eu-west-1:WorkerReadsAndWrites", PROVIDERS),
    ("ActionWorkerFunction/region.yaml us-west-2:WorkerReadsAndWrites", PROVIDERS),
    ("ActionWorkerFunction/LendJobArtifacts", JOBS),
    ("JobArtifactsRole/ReadAndWriteArtifacts", JOBS),
    ("ApiFunction/TellTheWorkerOfJobReports", JOBS),
    ("DeployRole/RunStateMachines", PROVIDERS),
    ("DeployRole/FollowStateMachineExecutions", PROVIDERS),
    ("DeployRole/ManageStackSets", PROVIDERS),
    ("DeployRole/WriteSiteBuckets", PROVIDERS),
    ("DeployRole/DeployWithCodeDeploy", PROVIDERS),
    ("DeployRole/DeployFunctions", PROVIDERS),
    ("DeployRole/ReadAlarms", PROVIDERS),
    ("DeployRole/DeployConfigurations", PROVIDERS),
    ("DeployRole/ReadArtifacts", PROVIDERS),
    ("DeployRole/DecryptArtifacts", PROVIDERS),
    ("DeployRole/PassTheStackSetAdministrationRole", PROVIDERS),
    ("JobArtifactsRole/UseArtifactKey", JOBS),
    ("JobArtifactsRole/ReadAndWriteDeclaredArtifacts", JOBS),
    ("TriggerFunction/AnnounceJobReports", JOBS),
    ("ActionWorkerFunction/ReadConnections", own_role::OWN_ROLE),
    ("JobArtifactsRole/UseDeclaredArtifactKeysThroughS3", JOBS),
    ("ActionWorkerFunction/UseDeclaredArtifactKeysThroughS3", JOBS),
];

const CONSOLE: &str = "the_console_shows_a_deployment_through_its_api_url";
const FAULTS: &str = "faults_leave_each_action_run_once_and_the_execution_right";
const JOBS: &str = jobs::JOBS;
const PROVIDERS: &str = providers::PROVIDERS;

/// That the statements [`EXERCISED_ELSEWHERE`] names `test` for were needed by a call of its
/// scenario: removing one fails `test`.
fn assert_needed_here(h: &Harness, test: &str) {
    let needed = h.needed_statements();
    let missing: Vec<&str> = EXERCISED_ELSEWHERE
        .iter()
        .filter(|(statement, by)| *by == test && needed.get(*statement).is_none_or(Option::is_none))
        .map(|(statement, _)| *statement)
        .collect();
    assert!(missing.is_empty(), "{test} is said to need {missing:?}, yet no call of it did");
}

/// Statements no scenario on moto exercises, and why.
const NOT_EXERCISED_ON_MOTO: &[(&str, &str)] = &[
    // moto checks no DynamoDB resource, so the table's own statement allows a Query of its
    // index here too; AWS asks for `dynamodb:Query` on the index's ARN. The console scenario
    // and the store's tests on moto list executions through the index.
    ("ApiFunction/ListExecutionsNewestFirst", "a Query of the table's by-start index"),
    ("TriggerFunction/FindTheNewestExecution", "a Query of the table's by-start index"),
    // Likewise for the `active` index: the store's tests on moto load active executions
    // through it.
    ("TriggerFunction/LoadActiveExecutions", "a Query of the table's active index"),
    ("StageAdvanceFunction/LoadActiveExecutions", "a Query of the table's active index"),
    ("ApprovalPagesFunction/LoadActiveExecutions", "a Query of the table's active index"),
    ("ApiFunction/LoadActiveExecutions", "a Query of the table's active index"),
];

fn write_figures(h: &Harness, actions: usize, deploy_bucket: &str) {
    // Lambda's polling of the stream is not billed per request.
    // S3's and SNS's KMS calls, made here as the caller, are left out as S3 Bucket Keys and
    // SNS's data key reuse leave out most of them on AWS.
    let (records, calls) = h.measured();
    let calls: Vec<_> = calls
        .into_iter()
        .filter(|c| {
            c.function != baton_e2e::ESM_READER && !c.function.ends_with(FOR_ANOTHER_SERVICE)
        })
        .collect();
    let memory_mb = h.functions.iter().map(|f| (f.binary.clone(), f.memory_mb)).collect();
    let packaged = baton_e2e::runtime::runs_packages();
    let binary_bytes = h
        .functions
        .iter()
        .map(|f| {
            let bin = baton_e2e::runtime::binary(&baton_e2e::workspace(), &f.binary);
            let size = std::fs::metadata(&bin).map_or(0, |m| m.len());
            let zipped = if packaged { figures::zipped_size(&bin).unwrap_or(0) } else { 0 };
            (f.binary.clone(), (size, zipped))
        })
        .collect();
    let startup: BTreeMap<String, Duration> = h
        .pools
        .iter()
        .filter_map(|(name, pool)| pool.startups().into_iter().min().map(|d| (name.clone(), d)))
        .collect();
    let run = figures::Run {
        actions,
        calls: &calls,
        records: &records,
        memory_mb,
        binary_bytes,
        packaged,
        startup,
        arm64: h.template.parameter_default("Architecture").as_deref() == Some("arm64"),
        deploy_buckets: vec![deploy_bucket.to_owned()],
    };
    let text = figures::render(&run);
    let path = baton_e2e::workspace().join("target/e2e-figures.txt");
    std::fs::write(&path, &text).unwrap();
    assert!(text.contains("e2e.cost_per_action.total:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_build_sends_a_failure_notice_and_fails_the_execution() {
    let h = Harness::start(1, FaultPlan::default()).await.unwrap();
    let release = Release::new(&h.stack, "fail");
    // moto's builds always succeed; a project that does not exist is refused by StartBuild.
    let missing = format!("{}-missing", release.project);
    release.prepare(&h.stack, &missing).await.unwrap();
    h.enforce().await.unwrap();
    release.upload_source(&h.stack).await.unwrap();
    let e = release.wait_for(&h.stack, "the end", Duration::from_secs(60), ended).await.unwrap();
    assert_eq!(e.status(), ExecutionStatus::Failed, "{}", describe(Some(&e)));
    let error = e.stages[1].actions[0].error.clone().expect("the build action has an error");
    assert!(error.message.contains("StartBuild"), "{error:?}");

    let pipeline = release.pipeline.clone();
    let notice = wait_collected(&h.delivery.failure_notices, Duration::from_secs(20), |n| {
        n.iter()
            .filter_map(|env| serde_json::from_str::<Value>(env["Message"].as_str()?).ok())
            .find(|m| m["pipeline"] == pipeline.as_str())
    })
    .await;
    let Some(notice) = notice else {
        panic!("no failure notice reached the failures topic\n{}", diagnostics(&h).await);
    };
    assert_eq!(notice["stage"], "Build");
    assert_eq!(notice["execution_id"], e.id.as_str());
    assert!(notice["failures"].to_string().contains("StartBuild"), "{notice}");
    let calls = h.proxy.calls();
    assert!(!calls.iter().any(|c| c.operation == "CreateStack"), "nothing was deployed");
    assert!(snapshot(&h.delivery.approval_notices).is_empty(), "no approval was asked");
    assert_no_call_refused(&h);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_leave_each_action_run_once_and_the_execution_right() {
    let plan = FaultPlan {
        duplicate: false,
        racing_actions_of: Some("Deploy".into()),
        // The first action request the worker is sent (the source's), which rides on its
        // public STARTED event: the worker saves the source's end with the next step.
        kill_on: Some((
            "action-worker".into(),
            "CodePipeline Action Execution State Change".into(),
        )),
    };
    let h = Harness::start(2, plan).await.unwrap();
    let release = Release::new(&h.stack, "faults");
    release.prepare(&h.stack, &release.project).await.unwrap();
    h.enforce().await.unwrap();
    // The worker's first three saves (the build's end, after the source ran on the doomed
    // worker) meet conflicts: the build's end goes to stage-advance by the bus.
    h.proxy.conflict_saves("action-worker", 3);
    release.upload_source(&h.stack).await.unwrap();

    // The worker that ran the source saves its end, is never told so, and is killed.
    let kill = h.kill.clone().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kill.done.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the doomed action-worker never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let writes = *kill.writes_at_kill.lock().unwrap();
    assert!(writes > 0, "the doomed function was killed before it saved: the fault did not happen");
    assert!(
        !h.proxy
            .calls()
            .iter()
            .any(|c| c.function == "action-worker-doomed" && c.operation == "PutEvents"),
        "the doomed function published: it was not killed between saving and publishing"
    );

    // What it saved reaches the bus through the table's stream: no sweep is needed, and its
    // retried delivery finds the attempt claimed and ended. The rest runs as a release does.
    let e = finish_release(&h, &release).await;
    assert_eq!(
        e.status(),
        ExecutionStatus::Succeeded,
        "{}\n{}",
        describe(Some(&e)),
        diagnostics(&h).await
    );
    assert_each_action_ran_once(&h, &e, &release);
    assert!(
        !h.records.lock().unwrap().iter().any(|r| r.kind == "sweep"),
        "a sweep ran: the stream alone must carry what was saved"
    );

    let records = h.records.lock().unwrap().clone();
    assert!(
        records.iter().any(|r| r.function == "stage-advance"
            && r.carried.iter().any(|c| c.completion && c.action == "Build/Build")),
        "the build's end, whose saves met conflicts, did not go by the bus"
    );
    // The two deploy actions read the same state, so the end saved second met a real conflict
    // in the table (and read again, or went to stage-advance by the bus).
    let conflicts = |c: &&baton_e2e::proxy::Call| {
        c.function == "action-worker" && c.operation == "UpdateItem" && c.status == 400
    };
    assert!(
        h.proxy.calls().iter().filter(conflicts).count() > 3,
        "no worker's save met a conflict beyond those made up: the two ends did not race"
    );
    // Both deploy completions were applied although they raced; every state change was
    // published (the sweep may send one twice, which consumers tolerate as CodePipeline's do).
    let id = e.id.clone();
    let states = wait_collected(&h.delivery.public_events, Duration::from_secs(10), |events| {
        let states = public_states(events, &id);
        states.contains(&("pipeline".into(), "SUCCEEDED".into())).then_some(states)
    })
    .await
    .expect("the pipeline's SUCCEEDED event was not published");
    let got: BTreeSet<_> = states.into_iter().collect();
    for (stage, actions) in STAGES {
        assert!(got.contains(&(format!("stage {stage}"), "SUCCEEDED".into())), "{stage}: {got:?}");
        for a in actions {
            assert!(
                got.contains(&(format!("action {stage}/{a}"), "SUCCEEDED".into())),
                "{a}: {got:?}"
            );
        }
    }
    assert_needed_here(&h, FAULTS);
    assert_no_call_refused(&h);
}

/// Every event on the functions' bus is delivered twice: actions still run once (the worker
/// claims each attempt before running it) and stage-advance ignores the repeated inputs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_event_delivered_twice_runs_each_action_once() {
    let plan = FaultPlan { duplicate: true, ..FaultPlan::default() };
    let h = Harness::start(2, plan).await.unwrap();
    let release = Release::new(&h.stack, "twice");
    release.prepare(&h.stack, &release.project).await.unwrap();
    h.enforce().await.unwrap();
    let e = run_release(&h, &release).await;
    assert_eq!(e.status(), ExecutionStatus::Succeeded, "{}", describe(Some(&e)));
    assert_each_action_ran_once(&h, &e, &release);
    assert_no_call_refused(&h);
}

// ---- key policies -----------------------------------------------------------------------------

/// The logical ids `v` refers to (`!Ref X`, `!GetAtt X.Attr`, `${X}` or `${X.Attr}` in `!Sub`),
/// anywhere inside it.
fn references(v: &serde_norway::Value) -> BTreeSet<String> {
    use serde_norway::Value as Y;
    let mut found = BTreeSet::new();
    match v {
        Y::Tagged(t) => {
            let inner = &t.value;
            match (t.tag.to_string().trim_start_matches('!'), inner) {
                ("Ref", Y::String(id)) => {
                    found.insert(id.clone());
                }
                ("GetAtt", Y::String(s)) => {
                    found.insert(s.split('.').next().unwrap_or_default().to_owned());
                }
                ("Sub", Y::String(s)) => {
                    for part in s.split("${").skip(1) {
                        let id = part.split(['}', '.']).next().unwrap_or_default();
                        found.insert(id.to_owned());
                    }
                }
                _ => found.extend(references(inner)),
            }
        }
        Y::Sequence(items) => items.iter().for_each(|i| found.extend(references(i))),
        Y::Mapping(m) => m.values().for_each(|i| found.extend(references(i))),
        _ => {}
    }
    found
}

/// `sam build` builds each function from the workspace with cargo-lambda: its metadata names a
/// binary the workspace has, from the workspace's root, for the `Architecture` parameter (arm64
/// unless told otherwise); `make build` packages the same binaries.
#[test]
fn every_function_builds_the_sam_way() {
    use serde_norway::Value as Y;
    let root = baton_e2e::workspace();
    let template = baton_e2e::template::Template::load(&root.join("template.yaml")).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let metadata = std::process::Command::new(cargo)
        .args(["metadata", "--no-deps", "--format-version", "1", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .output()
        .unwrap();
    let metadata: Value = serde_json::from_slice(&metadata.stdout).unwrap();
    let bins: BTreeSet<&str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .filter(|t| t["kind"][0] == "bin")
        .filter_map(|t| t["name"].as_str())
        .collect();
    let mut built = BTreeSet::new();
    for id in template.resources_of("AWS::Serverless::Function") {
        let resource = template.resource(&id).unwrap();
        let method = resource.get("Metadata").and_then(|m| m.get("BuildMethod"));
        assert_eq!(method.and_then(Y::as_str), Some("rust-cargolambda"), "{id}");
        let code_uri = template.properties(&id).unwrap().get("CodeUri").and_then(Y::as_str);
        assert_eq!(code_uri, Some("."), "{id} builds from the workspace's root");
        let binary = template.functions().unwrap().into_iter().find(|f| f.logical_id == id);
        let binary = binary.unwrap().binary;
        assert!(bins.contains(binary.as_str()), "{id}: no binary {binary} in {bins:?}");
        built.insert(binary);
    }
    let globals = &template.doc["Globals"]["Function"];
    let architectures = references(&globals["Architectures"]);
    assert_eq!(architectures, BTreeSet::from(["Architecture".to_owned()]));
    assert_eq!(template.parameter_default("Architecture").as_deref(), Some("arm64"));
    let makefile = std::fs::read_to_string(root.join("Makefile")).unwrap();
    let listed = makefile.lines().find_map(|l| l.strip_prefix("FUNCTIONS := ")).unwrap();
    let listed: BTreeSet<String> = listed.split_whitespace().map(str::to_owned).collect();
    assert_eq!(listed, built, "make build packages what the template deploys");
}

/// Every service that writes to an encrypted topic or queue of `template.yaml` (EventBridge
/// rules and dead-letter configs, CloudWatch alarms) may use that resource's key, by the key's
/// own policy: otherwise its deliveries fail, and nobody hears of it.
#[test]
fn every_service_writing_an_encrypted_resource_may_use_its_key() {
    use serde_norway::Value as Y;
    let template =
        baton_e2e::template::Template::load(&baton_e2e::workspace().join("template.yaml")).unwrap();
    let Some(Y::Mapping(resources)) = template.doc.get("Resources") else { panic!("no Resources") };
    let id_of = |k: &Y| k.as_str().unwrap_or_default().to_owned();
    // Encrypted topic or queue -> its key.
    let mut keys: BTreeMap<String, String> = BTreeMap::new();
    for (k, r) in resources {
        let kind = r.get("Type").and_then(Y::as_str).unwrap_or_default();
        if ["AWS::SNS::Topic", "AWS::SQS::Queue"].contains(&kind)
            && let Some(key) = r.get("Properties").and_then(|p| p.get("KmsMasterKeyId"))
        {
            let key = references(key).into_iter().next().expect("a key of this template");
            keys.insert(id_of(k), key);
        }
    }
    assert!(keys.len() >= 3, "the topics and the dead-letter queue are encrypted: {keys:?}");
    // (service, resource it writes), read from what would write.
    let mut writers: BTreeSet<(String, String)> = BTreeSet::new();
    let mut write = |service: &str, refs: BTreeSet<String>| {
        for id in refs.into_iter().filter(|id| keys.contains_key(id)) {
            writers.insert((service.to_owned(), id));
        }
    };
    for (_, r) in resources {
        let kind = r.get("Type").and_then(Y::as_str).unwrap_or_default();
        let props = r.get("Properties");
        match kind {
            "AWS::CloudWatch::Alarm" => {
                write(
                    "cloudwatch.amazonaws.com",
                    references(props.and_then(|p| p.get("AlarmActions")).unwrap_or(&Y::Null)),
                );
            }
            "AWS::Events::Rule" => {
                write(
                    "events.amazonaws.com",
                    references(props.and_then(|p| p.get("Targets")).unwrap_or(&Y::Null)),
                );
            }
            "AWS::Serverless::Function" => {
                // SAM's EventBridge rules and schedules: their dead letters.
                let events = props.and_then(|p| p.get("Events")).unwrap_or(&Y::Null);
                if let Y::Mapping(events) = events {
                    for e in events.values() {
                        let dlq = e.get("Properties").and_then(|p| p.get("DeadLetterConfig"));
                        write("events.amazonaws.com", references(dlq.unwrap_or(&Y::Null)));
                    }
                }
            }
            _ => {}
        }
    }
    assert!(
        writers.iter().any(|(s, _)| s == "cloudwatch.amazonaws.com"),
        "no alarm publishes to an encrypted topic: {writers:?}"
    );
    for (service, resource) in &writers {
        let key = &keys[resource];
        let policy = resources
            .get(Y::String(key.clone()))
            .and_then(|k| k.get("Properties"))
            .and_then(|p| p.get("KeyPolicy"))
            .and_then(|p| p.get("Statement"))
            .and_then(Y::as_sequence)
            .unwrap_or_else(|| panic!("{key} has no key policy"));
        let allowed = policy.iter().any(|st| {
            let principal = st.get("Principal").and_then(|p| p.get("Service"));
            let names = |v: Option<&Y>| -> Vec<String> {
                match v {
                    Some(Y::String(s)) => vec![s.clone()],
                    Some(Y::Sequence(items)) => {
                        items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect()
                    }
                    _ => Vec::new(),
                }
            };
            let actions = names(st.get("Action"));
            st.get("Effect").and_then(Y::as_str) == Some("Allow")
                && names(principal).contains(service)
                && actions.iter().any(|a| a == "kms:Decrypt" || a == "kms:*")
                && actions.iter().any(|a| a.starts_with("kms:GenerateDataKey") || a == "kms:*")
        });
        assert!(allowed, "{service} writes {resource}, but {key}'s policy does not let it encrypt");
    }
}

/// A push to CodeCommit, announced as CodeCommit announces it on the default bus, starts the
/// release through the template's rule, and the release runs the pushed commit: the source
/// fetches it by id, not the branch's head (which has moved on by then).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_codecommit_push_starts_the_release_on_the_pushed_commit() {
    const PUSHED: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432";
    const LATER: &str = "1111111111111111111111111111111111111111";
    let h = Harness::start(1, FaultPlan::default()).await.unwrap();
    let release = Release::pushed(&h.stack, "push");
    release.prepare(&h.stack, &release.project).await.unwrap();
    h.enforce().await.unwrap();
    release.push(&h.stack, &h.proxy, PUSHED).await.unwrap();
    // Someone pushes again before the source runs; no event announces it in this test.
    let repository = release.repository.clone().unwrap();
    let later = baton_e2e::codecommit::Commit { message: "later".into(), files: BTreeMap::new() };
    h.proxy.codecommit().commit(&repository, "main", LATER, later);

    let e = finish_release(&h, &release).await;
    assert_eq!(
        e.status(),
        ExecutionStatus::Succeeded,
        "{}\n{}",
        describe(Some(&e)),
        diagnostics(&h).await
    );
    assert_eq!(e.trigger.trigger_type, "CloudWatchEvent");
    let source = &e.stages[0].actions[0].output_variables;
    assert_eq!(source.get("CommitId").map(String::as_str), Some(PUSHED), "{source:?}");
    assert_eq!(
        source.get("CommitMessage").map(String::as_str),
        Some(format!("Release {PUSHED}").as_str())
    );
    assert_eq!(source.get("RepositoryName"), Some(&repository));

    let asked: Vec<(String, String)> = h
        .proxy
        .calls()
        .into_iter()
        .filter(|c| c.service == "codecommit")
        .map(|c| (c.function, c.operation))
        .collect();
    assert!(
        asked.iter().all(|(f, op)| f == "action-worker" && op != "GetBranch"),
        "the pushed commit is fetched by its id, by the worker only: {asked:?}"
    );
    let commits: Vec<_> = h
        .proxy
        .calls()
        .into_iter()
        .filter(|c| c.operation == "GetCommit")
        .filter_map(|c| c.request.and_then(|r| r["commitId"].as_str().map(str::to_owned)))
        .collect();
    assert_eq!(commits, [PUSHED], "one commit read, the pushed one");
    // Every event carries an X-Ray trace on to the functions it reaches: the trace of the
    // invocation that made it, kept through the outbox, so an event the stream relay publishes
    // names the trace of the function that saved it, not the relay's own.
    let given: BTreeMap<String, String> =
        h.records.lock().unwrap().iter().map(|r| (r.trace.clone(), r.function.clone())).collect();
    let sent: Vec<(String, String)> = h
        .proxy
        .calls()
        .into_iter()
        .filter(|c| c.operation == "PutEvents")
        .flat_map(|c| c.event_traces.into_iter().map(move |t| (c.function.clone(), t)))
        .collect();
    assert!(!sent.is_empty());
    for (function, trace) in &sent {
        assert!(
            given.contains_key(trace),
            "{function} sent an event with trace {trace:?}, which no invocation was given"
        );
    }
    let carried = sent.iter().filter(|(f, t)| given.get(t).is_some_and(|maker| maker != f)).count();
    assert!(carried > 0, "no relayed event kept its maker's trace: {sent:?}");

    // The pushed files went all the way: the build's artifact is the site.
    let s3 = baton_e2e::scenario::s3_client(&h.stack.sdk("us-west-2").await);
    let page = s3.get_object().bucket(&release.site_bucket).key("index.html").send().await.unwrap();
    let page = page.body.collect().await.unwrap().into_bytes();
    assert_eq!(&page[..], b"<h1>release</h1>\n");
    assert_no_call_refused(&h);
}

// ---- the console of a deployment --------------------------------------------------------------

/// `baton --endpoint URL console` on the deployment's API function URL (IAM auth, signed for
/// Lambda with the user's credentials): the pages show the deployment's pipeline, follow its
/// execution without a reload, and its controls act as the caller IAM let in.
#[tokio::test]
async fn the_console_shows_a_deployment_through_its_api_url() {
    use baton_e2e::console::Console;
    let h = Harness::start(1, FaultPlan::default()).await.unwrap();
    let release = Release::new(&h.stack, "console");
    release.prepare(&h.stack, &release.project).await.unwrap();
    // A bucket of the console's kind, which a pipeline may declare (DeclaredArtifactBuckets).
    let declared_store = format!("codepipeline-us-east-1-{}", h.stack.name);
    let home_s3 = baton_e2e::scenario::s3_client(&h.stack.sdk(HOME).await);
    home_s3.create_bucket().bucket(&declared_store).send().await.unwrap();
    h.enforce().await.unwrap();
    let caller = "arn:aws:sts::111111111111:assumed-role/release-engineer/console-e2e";
    let user = h.api_user(caller).await.unwrap();

    // A pipeline created through the API function as the AWS CLI sends it (through `baton
    // proxy`): the function, as its role, reads the pipeline role's trust and finds the
    // declared artifact store.
    let created = format!("{}-created", release.pipeline);
    let declaration = release.upload_then_approve(&h.stack, &created, &declared_store, true);
    let api = async |operation: &str, body: Value| user.ok(operation, body).await.unwrap();
    let answer = api("CreatePipeline", declaration.clone()).await;
    assert_eq!(answer["pipeline"]["version"], 1, "{answer}");
    // Its source is polled as its role: the trigger's minute schedule assumes it and looks.
    let trigger = h.pool("trigger").unwrap();
    let polled = trigger.invoke(serde_json::json!({"schedule": "PollSources"})).await.unwrap();
    assert!(polled.is_ok(), "{polled:?}");
    let role = baton_e2e::scenario::pipeline_role(&h.stack);
    let assumed = h.proxy.calls().into_iter().any(|c| {
        c.function == "trigger"
            && c.operation == "AssumeRole"
            && c.resource == role
            && c.status == 200
    });
    assert!(assumed, "the trigger did not poll as the pipeline's role");
    // A GitHub push delivered to the trigger's URL is checked against the stack's webhook
    // secret, read as the trigger's role; no pipeline watches that repository.
    let delivered = trigger.invoke(github_push(GITHUB_WEBHOOK_SECRET)).await.unwrap().unwrap();
    assert_eq!(delivered["statusCode"], 202, "{delivered}");
    let forged = trigger.invoke(github_push("a guess")).await.unwrap().unwrap();
    assert_eq!(forged["statusCode"], 401, "{forged}");
    let root = baton_e2e::workspace();
    let home = root.join("target/e2e").join(&h.stack.name).join("console-home");
    let baton = baton_e2e::runtime::binary(&root, "baton");
    let baton = if baton.is_file() { baton } else { root.join("target/debug/baton") };
    let console =
        Console::start(&baton, user.url(), &h.stack.keys, &home, &h.stack.endpoint).await.unwrap();

    // Only the link it printed lets a browser in; it leaves a session cookie.
    let gate = console.get("/", None).await.unwrap();
    assert_eq!((gate.status, gate.location.as_str()), (303, "/console/login"), "{gate:?}");
    let wrong = console.get("/console/login?token=0123", None).await.unwrap();
    assert_eq!(wrong.status, 403, "a wrong token is refused: {wrong:?}");
    let login = console.get(&console.login, None).await.unwrap();
    let cookie = login.cookie.clone().unwrap_or_else(|| panic!("no session cookie: {login:?}"));

    let index = console.get("/", Some(&cookie)).await.unwrap();
    assert_eq!(index.status, 200, "{}", index.body);
    assert!(index.body.contains(&release.pipeline), "the list shows the pipeline: {}", index.body);
    let page_path = format!("/pipelines/{}", release.pipeline);
    let page = console.get(&page_path, Some(&cookie)).await.unwrap();
    for (stage, _) in STAGES {
        assert!(page.body.contains(stage), "the graph shows stage {stage}: {}", page.body);
    }

    // Held before Build from the console, as the caller IAM let in.
    let csrf = page.csrf().expect("the page's forms carry a CSRF token");
    let form = format!("csrf={csrf}&stage=Build&enable=false&reason=held+from+the+console");
    let held = console.post(&format!("{page_path}/transition"), &cookie, &form).await.unwrap();
    assert_eq!(held.status, 303, "{held:?}");
    assert!(held.location.contains("DisableStageTransition"), "{}", held.location);
    let forged = console
        .post(&format!("{page_path}/transition"), &cookie, "csrf=00&stage=Build&enable=true")
        .await
        .unwrap();
    assert_eq!(forged.status, 403, "a form without this console's token is refused");

    // A push: the page's events name the pipeline as its execution moves, with no reload. The
    // first names every pipeline (what the page drew may be older than the stream); only a
    // change makes another.
    let mut events = console.events(&cookie).await.unwrap();
    let named = format!("\"pipeline\":\"{}\"", release.pipeline);
    next_naming(&mut events, &named).await;
    release.upload_source(&h.stack).await.unwrap();
    let waiting = release
        .wait_for(&h.stack, "the source, then the held transition", Duration::from_secs(60), |e| {
            ended(e) || e.stages[0].actions[0].status == ActionStatus::Succeeded
        })
        .await
        .unwrap();
    assert!(!ended(&waiting), "{}", describe(Some(&waiting)));
    next_naming(&mut events, &named).await;
    let page = console.get(&page_path, Some(&cookie)).await.unwrap();
    assert!(page.body.contains("held from the console"), "the reason is shown: {}", page.body);
    assert!(page.body.contains(caller), "and who held it, as IAM named them: {}", page.body);

    // Let in again from the console; the release goes on to its end.
    let csrf = page.csrf().unwrap();
    let form = format!("csrf={csrf}&stage=Build&enable=true");
    let opened = console.post(&format!("{page_path}/transition"), &cookie, &form).await.unwrap();
    assert!(opened.location.contains("EnableStageTransition"), "{}", opened.location);
    let done = finish_release(&h, &release).await;
    assert_eq!(done.status(), ExecutionStatus::Succeeded, "{}", describe(Some(&done)));

    // The created pipeline's source, started through the API, goes to its declared artifact
    // store: the worker writes it there as its role.
    let name = serde_json::json!({"name": declaration["pipeline"]["name"]});
    api("StartPipelineExecution", name.clone()).await;
    let into_store = format!("/{declared_store}/");
    let mut stored = false;
    for _ in 0..300 {
        stored = h.proxy.calls().iter().any(|c| {
            c.function == "action-worker"
                && c.operation == "PutObject"
                && c.status == 200
                && c.path.starts_with(&into_store)
        });
        if stored {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stored, "the source's artifact never reached {declared_store}");
    api("DeletePipeline", name).await;

    // A build's log is read from CloudWatch Logs, where CodeBuild writes it, as the user: its
    // colours drawn, its markup only text; the page links to CodeBuild's, as CodePipeline's
    // console does.
    let log = format!("{page_path}/executions/{}/logs/Build/Build", done.id);
    let log = console.get(&log, Some(&cookie)).await.unwrap();
    assert_eq!(log.status, 200, "{}", log.body);
    assert!(log.body.contains("Entering phase BUILD"), "the build's log is shown: {}", log.body);
    assert!(log.body.contains("building the site</span>"), "in colour: {}", log.body);
    assert!(log.body.contains("&lt;script&gt;alert(1)"), "markup is text: {}", log.body);
    assert!(!log.body.contains("<script>alert(1)"), "{}", log.body);
    assert!(log.body.contains("Kept by its provider"), "{}", log.body);
    assert!(
        log.body.contains(r#"href="https://us-east-1.console.aws.amazon.com/codesuite/codebuild/"#),
        "{}",
        log.body
    );

    // The source's artifact, read from S3 as the user: its page gives the object's size and
    // SHA-256, and the download is the object.
    let artifact =
        format!("{page_path}/executions/{}/artifacts/Source/Upload/SourceOutput", done.id);
    let page = console.get(&artifact, Some(&cookie)).await.unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    let stored_at = page.body.find("Stored at").unwrap();
    let at = stored_at + page.body[stored_at..].find("<code>").unwrap() + "<code>".len();
    let stored = &page.body[at..at + page.body[at..].find("</code>").unwrap()];
    let (bucket, key) = stored.split_once('/').unwrap();
    assert_eq!(bucket, h.stack.buckets[HOME], "{stored}");
    let object = baton_e2e::scenario::s3_client(&h.stack.sdk(HOME).await)
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let object = object.body.collect().await.unwrap().into_bytes();
    assert!(page.body.contains(&format!("{} bytes", object.len())), "{}", page.body);
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&object));
    assert!(page.body.contains(&digest), "the page gives the object's SHA-256: {}", page.body);
    let (status, downloaded) =
        console.get_bytes(&format!("{artifact}?download=1"), &cookie).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(downloaded, object, "the download is the object");

    // Both controls are in the console's audit log, with the key that signed them.
    let audit = std::fs::read_to_string(home.join("console-audit.log")).unwrap();
    let lines: Vec<Value> = audit.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let operations: Vec<&str> = lines.iter().filter_map(|l| l["operation"].as_str()).collect();
    // The forged form was refused before it was run, so it is not among them.
    assert_eq!(operations, ["DisableStageTransition", "EnableStageTransition"], "{audit}");
    assert!(lines.iter().all(|l| l["who"] == h.stack.keys.access_key.as_str()), "{audit}");
    assert_no_call_refused(&h);
    assert_needed_here(&h, CONSOLE);
}

/// A GitHub push of `octo/app`'s main, signed with `secret`, as the trigger's URL hands it over.
fn github_push(secret: &str) -> Value {
    use hmac::{Hmac, Mac};
    let body = serde_json::json!({"ref": "refs/heads/main", "after": "0123456789abcdef0123456789abcdef01234567",
        "repository": {"full_name": "octo/app"}, "commits": []})
    .to_string();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let headers = serde_json::json!({"content-type": "application/json", "x-github-event": "push",
        "x-github-delivery": "e2e-1", "x-hub-signature-256": signature});
    trigger_url_post("/webhooks/github", headers, body)
}

/// A POST of `body` to `path` of the trigger's function URL, as Lambda hands it to the function.
fn trigger_url_post(path: &str, headers: Value, body: String) -> Value {
    serde_json::json!({"version": "2.0", "rawPath": path, "rawQueryString": "",
        "headers": headers,
        "requestContext": {"accountId": "anonymous", "requestId": "e2e",
            "domainName": "trigger.lambda-url.us-east-1.on.aws", "domainPrefix": "trigger",
            "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1", "userAgent": "e2e"},
            "time": "07/Dec/2026:04:00:00 +0000", "timeEpoch": 0},
        "body": body, "isBase64Encoded": false})
}

/// Waits for the next server-sent event whose data has `named` in it.
async fn next_naming(events: &mut tokio::sync::mpsc::UnboundedReceiver<String>, named: &str) {
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Some(text)) if text.contains(named) => return,
            Ok(Some(text)) => seen.push_str(&text),
            _ => panic!("no change event had {named}: {seen:?}"),
        }
    }
}

#[test]
fn the_mutation_check_reads_statements_as_moto_does() {
    use baton_e2e::iam::{allows, for_moto, matches};
    use baton_e2e::proxy::Call;
    assert!(matches("arn:aws:s3:::b/*", "arn:aws:s3:::b/k/1.zip"));
    assert!(matches("kms:ReEncrypt*", "kms:ReEncryptFrom"));
    assert!(!matches("arn:aws:s3:::b/*", "arn:aws:s3:::c/k"));
    assert!(!matches("arn:aws:s3:::b/*", "*"));
    let put = |resource: &str| Call {
        service: "s3".into(),
        operation: "PutObject".into(),
        resource: resource.into(),
        ..Call::default()
    };
    let s3 = serde_json::json!({"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
        "Resource": "arn:aws:s3:::b/*"});
    assert!(allows(&for_moto(&s3).unwrap(), &put("arn:aws:s3:::b/k")));
    assert!(!allows(&for_moto(&s3).unwrap(), &put("arn:aws:s3:::other/k")));
    // DynamoDB is checked against `*` by moto: its statements are widened, actions kept.
    let table = serde_json::json!({"Effect": "Allow", "Action": "dynamodb:GetItem",
        "Resource": "arn:aws:dynamodb:us-east-1:1:table/t", "Condition": {"x": {}}});
    let given = for_moto(&table).unwrap();
    assert_eq!(given["Resource"], "*");
    assert!(given.get("Condition").is_none());
    let get = Call {
        service: "dynamodb".into(),
        operation: "GetItem".into(),
        resource: "*".into(),
        ..Call::default()
    };
    let query = Call { operation: "Query".into(), ..get.clone() };
    assert!(allows(&given, &get));
    assert!(!allows(&given, &query));
    // A grant only through another service is left out.
    let via = serde_json::json!({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": "sqs.us-east-1.amazonaws.com"}}});
    assert!(for_moto(&via).is_none());
}
