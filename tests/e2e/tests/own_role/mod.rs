//! With the stack's `AssumePipelineRoles` set to `false`, the action-worker runs the actions and
//! rules that name no `roleArn` as its own role: CodeCommit, ECR and connection sources (of both
//! ARNs), a build, an ECS deploy, a state machine, a CodeDeploy deployment and a Lambda function's job in the pipeline
//! account, behind a CloudWatch alarm rule. The statements the template gives the worker only in
//! that configuration are each needed here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use baton_e2e::scenario::{Release, build_project, pipeline_role, web_service};
use baton_e2e::stack::{HOME, PIPELINE_ACCOUNT};
use baton_e2e::{FaultPlan, Harness};
use serde_json::{Value, json};

use crate::assert_no_call_refused;

/// This scenario's test, for [`crate::EXERCISED_ELSEWHERE`].
pub(crate) const OWN_ROLE: &str =
    "own_role::without_pipeline_roles_the_worker_runs_actions_as_its_own_role";

/// The worker's statements held only without pipeline roles that this scenario does not
/// exercise, and why.
const NOT_EXERCISED_WITHOUT_PIPELINE_ROLES: &[(&str, &str)] = &[];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_pipeline_roles_the_worker_runs_actions_as_its_own_role() {
    // An approval names a topic of its own, which the stack lists for the approval function.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let topic_name = format!("e2e-approvals-{}-{}", std::process::id(), nanos.subsec_nanos());
    let topic = format!("arn:aws:sns:{HOME}:{PIPELINE_ACCOUNT}:{topic_name}");
    let parameters =
        [("AssumePipelineRoles", "false"), ("ApprovalNotificationTopicArns", topic.as_str())];
    let h = Harness::start_with_parameters(1, FaultPlan::default(), true, &parameters);
    let h = h.await.unwrap();
    let release = Release::new(&h.stack, "own");
    release.prepare(&h.stack, &release.project).await.unwrap();
    let moto = &h.iam.as_ref().unwrap().moto;
    let config = json!({"stepfunctions": {"execute_state_machine": true},
        "lambda": {"use_docker": false}});
    moto.configure(&config).await.unwrap();
    let sdk = h.stack.sdk(HOME).await;
    let name = |what: &str| format!("{}-{what}", h.stack.name);

    // The source's repository (the proxy plays CodeCommit) and image.
    let image = format!("{PIPELINE_ACCOUNT}.dkr.ecr.{HOME}.amazonaws.com/{}:release", name("web"));
    let files = BTreeMap::from([
        (
            "imagedefinitions.json".to_owned(),
            json!([{"name": "app", "imageUri": image}]).to_string().into_bytes(),
        ),
        ("input.json".to_owned(), br#"{"release": 8}"#.to_vec()),
    ]);
    let commit = baton_e2e::codecommit::Commit { message: "Release 8".into(), files };
    h.proxy.codecommit().commit(
        &name("repo"),
        "main",
        "8888888888888888888888888888888888888888",
        commit,
    );
    let ecr = aws_sdk_ecr::Client::new(&sdk);
    ecr.create_repository().repository_name(name("web")).send().await.unwrap();
    let manifest = json!({"schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": 2,
            "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
        "layers": []});
    let put = ecr.put_image().repository_name(name("web")).image_tag("release");
    put.image_manifest(manifest.to_string()).send().await.unwrap();
    // The service the build's image goes to, in this account.
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    web_service(&ecs, &name("cluster"), &name("web"), PIPELINE_ACCOUNT).await.unwrap();
    // A state machine, a CodeDeploy group, a function and an alarm, all of this account.
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let machine = sfn
        .create_state_machine()
        .name(name("machine"))
        .definition(r#"{"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": true}}}"#)
        .role_arn(format!("arn:aws:iam::{PIPELINE_ACCOUNT}:role/StepFunctions"))
        .send()
        .await
        .unwrap()
        .state_machine_arn;
    let codedeploy = aws_sdk_codedeploy::Client::new(&sdk);
    codedeploy.create_application().application_name(name("fleet")).send().await.unwrap();
    codedeploy
        .create_deployment_group()
        .application_name(name("fleet"))
        .deployment_group_name("servers")
        .service_role_arn(format!("arn:aws:iam::{PIPELINE_ACCOUNT}:role/CodeDeploy"))
        .send()
        .await
        .unwrap();
    let function = name("notify");
    baton_e2e::scenario::function(&sdk, &function, crate::jobs::zipped()).await.unwrap();
    aws_sdk_sns::Client::new(&sdk).create_topic().name(&topic_name).send().await.unwrap();
    h.proxy.alarms().set(&name("errors"), "OK");
    // Two connections to GitHub (the proxy plays CodeConnections), of the current ARN and the
    // older one, and the project whose builds clone through them.
    let connection = |service: &str| {
        format!("arn:aws:{service}:{HOME}:{PIPELINE_ACCOUNT}:connection/{}", h.stack.name)
    };
    let (current, older) = (connection("codeconnections"), connection("codestar-connections"));
    h.proxy.connections().add(&current, "GitHub");
    h.proxy.connections().add(&older, "GitHub");
    let clones = &h.stack.bindings.refs["CommandsProject"];
    let github = aws_sdk_codebuild::types::SourceType::Github;
    build_project(&sdk, clones, github, "https://github.com/octo/app.git").await.unwrap();
    h.enforce().await.unwrap();
    let user = h.api_user("arn:aws:sts::111111111111:assumed-role/release-engineer/own-e2e");
    let user = user.await.unwrap();
    let api = async |operation: &str, body: Value| user.ok(operation, body).await.unwrap();

    let kind = |category: &str, provider: &str| json!({"category": category, "owner": "AWS", "provider": provider, "version": "1"});
    let pipeline = name("own-role");
    let source = json!({"name": "Source", "actions": [
        {"name": "Checkout", "actionTypeId": kind("Source", "CodeCommit"),
            "configuration": {"RepositoryName": name("repo"), "BranchName": "main",
                "PollForSourceChanges": "false"},
            "outputArtifacts": [{"name": "SourceOutput"}]},
        {"name": "Image", "actionTypeId": kind("Source", "ECR"),
            "configuration": {"RepositoryName": name("web"), "ImageTag": "release"},
            "outputArtifacts": [{"name": "Image"}]},
        {"name": "App", "actionTypeId": kind("Source", "CodeStarSourceConnection"),
            "configuration": {"ConnectionArn": current, "FullRepositoryId": "octo/app",
                "BranchName": "main"},
            "outputArtifacts": [{"name": "App"}]},
        {"name": "Legacy", "actionTypeId": kind("Source", "CodeStarSourceConnection"),
            "configuration": {"ConnectionArn": older, "FullRepositoryId": "octo/legacy",
                "BranchName": "main"},
            "outputArtifacts": [{"name": "Legacy"}]}]});
    let build = json!({"name": "Build", "actions": [{"name": "Build",
        "actionTypeId": kind("Build", "CodeBuild"), "configuration": {"ProjectName": release.project},
        "inputArtifacts": [{"name": "SourceOutput"}], "outputArtifacts": [{"name": "Built"}]}]});
    let deploy = json!({"name": "Deploy",
        "onSuccess": {"conditions": [{"result": "FAIL", "rules": [{"name": "Quiet",
            "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "CloudWatchAlarm", "version": "1"},
            "configuration": {"AlarmName": name("errors")}}]}]},
        "actions": [
        {"name": "Service", "actionTypeId": kind("Deploy", "ECS"),
            "configuration": {"ClusterName": name("cluster"), "ServiceName": "web"},
            "inputArtifacts": [{"name": "Built"}]},
        {"name": "Machine", "actionTypeId": kind("Invoke", "StepFunctions"),
            "configuration": {"StateMachineArn": machine, "InputType": "FilePath", "Input": "input.json"},
            "inputArtifacts": [{"name": "SourceOutput"}]},
        {"name": "Fleet", "actionTypeId": kind("Deploy", "CodeDeploy"),
            "configuration": {"ApplicationName": name("fleet"), "DeploymentGroupName": "servers"},
            "inputArtifacts": [{"name": "SourceOutput"}]},
        {"name": "Notify", "actionTypeId": kind("Invoke", "Lambda"),
            "configuration": {"FunctionName": function}}]});
    let approve = json!({"name": "Approve", "actions": [{"name": "Release",
        "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
        "configuration": {"NotificationArn": topic}}]});
    api(
        "CreatePipeline",
        json!({"pipeline": {"name": pipeline, "roleArn": pipeline_role(&h.stack), "pipelineType": "V2",
            "artifactStore": {"type": "S3", "location": h.stack.buckets[HOME]},
            "stages": [source, build, deploy, approve]}}),
    )
    .await;
    // Pinned commits: the stand-in's clones export none.
    let pin = |action: &str, commit: &str| json!({"actionName": action, "revisionType": "COMMIT_ID", "revisionValue": commit});
    let pins = [pin("App", "c0ffee0"), pin("Legacy", "0ld0ld0")];
    let started =
        api("StartPipelineExecution", json!({"name": pipeline, "sourceRevisions": pins})).await;
    let execution = started["pipelineExecutionId"].as_str().unwrap().to_owned();

    // The function reports its job; the worker's minute schedule follows the state machine.
    let job_id = crate::jobs::handed_to(&h, &function).await;
    let trigger = h.pool("trigger").unwrap();
    let report = trigger.invoke(crate::jobs::job_report(&job_id)).await.unwrap().unwrap();
    assert_eq!(report["statusCode"], 200, "{report}");
    let follow = async || {
        approve_when_asked(&user, &pipeline).await;
        crate::providers::due_now(&h).await;
        let check = json!({"schedule": "CheckRunningJobs"});
        let checked = h.pool("action-worker").unwrap().invoke(check).await.unwrap();
        assert!(checked.is_ok(), "{checked:?}");
    };
    let status = user.end_of(&pipeline, &execution, Duration::from_secs(60), follow).await;
    let state = api("GetPipelineState", json!({"name": pipeline})).await;
    assert_eq!(status.unwrap(), "Succeeded", "{state}\n{}", crate::diagnostics(&h).await);

    // Nothing ran as the pipeline's role: the worker never assumed it.
    let role = pipeline_role(&h.stack);
    let assumed =
        h.proxy.calls().into_iter().any(|c| c.operation == "AssumeRole" && c.resource == role);
    assert!(!assumed, "an action ran as the pipeline's role");
    let app = &state["stageStates"][0]["actionStates"][2]["latestExecution"];
    assert_eq!(
        app["externalExecutionId"], "c0ffee0",
        "the connection source fetched the pin: {state}"
    );
    assert_no_call_refused(&h);
    crate::assert_needed_here(&h, OWN_ROLE);
    assert_needed_only_without_pipeline_roles(&h);
}

/// Approves the pipeline's approval once it waits, as its token in the state says.
async fn approve_when_asked(user: &baton_e2e::function_url::ApiUser, pipeline: &str) {
    let state = user.ok("GetPipelineState", json!({"name": pipeline})).await.unwrap();
    let Some(stages) = state["stageStates"].as_array() else { return };
    let Some(waiting) = stages.iter().find(|s| s["stageName"] == "Approve") else { return };
    let latest = &waiting["actionStates"][0]["latestExecution"];
    let Some(token) = latest["token"].as_str().filter(|_| latest["status"] == "InProgress") else {
        return;
    };
    let result = json!({"summary": "released", "status": "Approved"});
    let put = json!({"pipelineName": pipeline, "stageName": "Approve", "actionName": "Release",
        "result": result, "token": token});
    user.ok("PutApprovalResult", put).await.unwrap();
}

/// Each statement the template gives a function only in this scenario's configuration (without
/// pipeline roles, with approval topics listed) is needed by a call of this scenario, or listed
/// with why not (and a listed one that is needed fails too).
fn assert_needed_only_without_pipeline_roles(h: &Harness) {
    let sids = |defaults: bool| -> BTreeSet<String> {
        let mut b = h.stack.bindings.clone();
        if defaults {
            b.refs.insert("AssumePipelineRoles".into(), "true".into());
            b.refs.insert("ApprovalNotificationTopicArns".into(), String::new());
        }
        ["ActionWorkerFunction", "ApprovalFunction"]
            .into_iter()
            .flat_map(|holder| {
                let declared =
                    baton_e2e::iam::declared_statements(&h.template, holder, &b).unwrap();
                declared
                    .iter()
                    .filter_map(|s| Some(format!("{holder}/{}", s["Sid"].as_str()?)))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let only_without: BTreeSet<String> = &sids(false) - &sids(true);
    let listed: BTreeMap<&str, &str> =
        NOT_EXERCISED_WITHOUT_PIPELINE_ROLES.iter().copied().collect();
    let needed = h.needed_statements();
    let only_here: Vec<(&String, Option<&String>)> =
        only_without.iter().map(|name| (name, needed.get(name).and_then(Option::as_ref))).collect();
    assert!(
        only_here.len() > listed.len(),
        "the worker has no statement only without pipeline roles"
    );
    let wrong: Vec<String> = only_here
        .iter()
        .filter_map(|(name, call)| match (call, listed.contains_key(name.as_str())) {
            (None, false) => Some(format!("{name}: no call needed it, and it is not listed")),
            (Some(call), true) => {
                Some(format!("{name} is listed as not exercised, yet only it allowed {call}"))
            }
            _ => None,
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}
