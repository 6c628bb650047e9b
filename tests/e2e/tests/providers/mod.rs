//! Providers the release does not use, run across accounts as the target account's deploy role
//! (`infra/target-account.yaml`), with IAM enforced: a Step Functions state machine, a
//! CloudFormation stack set, a CodeDeploy deployment, a Lambda deploy, an AppConfig deployment, an Elastic Beanstalk deploy (the proxy plays
//! Elastic Beanstalk) and an S3 deploy to a
//! bucket of that account, and a CloudWatch alarm rule on their stage.

use std::time::Duration;

use baton_e2e::scenario::{DEPLOY_ROLE, Release, pipeline_role, s3_client};
use baton_e2e::stack::{HOME, TARGET_ADMIN, assume};
use baton_e2e::{FaultPlan, Harness};
use serde_json::{Value, json};

use crate::{assert_needed_here, assert_no_call_refused};

/// This scenario's test, for [`crate::EXERCISED_ELSEWHERE`].
pub(crate) const PROVIDERS: &str = "providers::a_state_machine_a_stack_set_a_deployment_and_a_site_run_in_the_target_account_as_the_deploy_role";

const TARGET_REGION: &str = "eu-west-1";
/// Where one service that reads its input in place runs: the worker copies the input into
/// that region's store, as it does for every such service in a region other than home's.
const OTHER_REGION: &str = "us-west-2";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_state_machine_a_stack_set_a_deployment_and_a_site_run_in_the_target_account_as_the_deploy_role()
 {
    let h = Harness::start(1, FaultPlan::default()).await.unwrap();
    let release = Release::new(&h.stack, "providers");
    release.prepare(&h.stack, &release.project).await.unwrap();
    let key = "providers/source.zip";
    let s3 = s3_client(&h.stack.sdk(HOME).await);
    let put = s3.put_object().bucket(&release.source_bucket).key(key).body(zipped().into());
    put.send().await.unwrap();
    // moto runs a state machine's states only when told to (and before it holds one), and
    // keeps functions it can invoke without Docker.
    let moto = &h.iam.as_ref().unwrap().moto;
    let config = json!({"stepfunctions": {"execute_state_machine": true},
        "lambda": {"use_docker": false}});
    moto.configure(&config).await.unwrap();
    let target = assume(&h.stack.endpoint, TARGET_ADMIN, Some(&h.stack.keys)).await.unwrap();
    let sfn = aws_sdk_sfn::Client::new(&target.sdk(&h.stack.endpoint, TARGET_REGION).await);
    let machine = sfn
        .create_state_machine()
        .name(format!("{}-release", h.stack.name))
        .definition(r#"{"StartAt": "Tag", "States": {"Tag": {"Type": "Pass", "Result": "done", "ResultPath": "$.result", "End": true}}}"#)
        .role_arn("arn:aws:iam::222222222222:role/StepFunctions")
        .send()
        .await
        .unwrap()
        .state_machine_arn;
    // A CodeDeploy application of the target account (the proxy ends its deployments, which
    // moto never runs).
    let codedeploy =
        aws_sdk_codedeploy::Client::new(&target.sdk(&h.stack.endpoint, TARGET_REGION).await);
    let application = format!("{}-fleet", h.stack.name);
    codedeploy.create_application().application_name(&application).send().await.unwrap();
    codedeploy
        .create_deployment_group()
        .application_name(&application)
        .deployment_group_name("servers")
        .service_role_arn("arn:aws:iam::222222222222:role/CodeDeploy")
        .send()
        .await
        .unwrap();
    // A function of the target account behind its alias `live`, on its first version.
    let function = format!("{}-orders", h.stack.name);
    let target_sdk = target.sdk(&h.stack.endpoint, TARGET_REGION).await;
    baton_e2e::scenario::function(&target_sdk, &function, zipped()).await.unwrap();
    let lambda = aws_sdk_lambda::Client::new(&target_sdk);
    let alias = lambda.create_alias().function_name(&function).name("live").function_version("1");
    alias.send().await.unwrap();
    // A site bucket of the target account, which the deploy role writes to.
    let site = format!("{}-site-eu", h.stack.name);
    let target_s3 = s3_client(&target.sdk(&h.stack.endpoint, TARGET_REGION).await);
    let eu = aws_sdk_s3::types::BucketLocationConstraint::EuWest1;
    let located = aws_sdk_s3::types::CreateBucketConfiguration::builder().location_constraint(eu);
    target_s3
        .create_bucket()
        .bucket(&site)
        .create_bucket_configuration(located.build())
        .send()
        .await
        .unwrap();
    // An AppConfig application of the target account with a hosted profile (the proxy plays
    // its environment's deployments, which moto does not have).
    let appconfig = aws_sdk_appconfig::Client::new(&target_sdk);
    let app = appconfig.create_application().name(format!("{}-flags", h.stack.name));
    let app = app.send().await.unwrap().id.unwrap();
    let profile = appconfig
        .create_configuration_profile()
        .application_id(&app)
        .name("release")
        .location_uri("hosted")
        .send()
        .await
        .unwrap()
        .id
        .unwrap();
    // An Elastic Beanstalk environment of the target account (the proxy plays the service).
    h.proxy.beanstalk().launch("web-prod", "first");
    // An alarm of the target account the stage's rule reads (the proxy plays CloudWatch).
    let alarm = format!("{}-site-errors", h.stack.name);
    h.proxy.alarms().set(&alarm, "OK");
    h.enforce().await.unwrap();
    let user = h.api_user("arn:aws:sts::111111111111:assumed-role/release-engineer/providers-e2e");
    let user = user.await.unwrap();
    let api = async |operation: &str, body: Value| user.ok(operation, body).await.unwrap();

    let stores: serde_json::Map<String, Value> = [HOME, TARGET_REGION, OTHER_REGION]
        .iter()
        .map(|r| (r.to_string(), json!({"type": "S3", "location": h.stack.buckets[*r]})))
        .collect();
    let kind = |category: &str, provider: &str| json!({"category": category, "owner": "AWS", "provider": provider, "version": "1"});
    let pipeline = format!("{}-providers", release.pipeline);
    api(
        "CreatePipeline",
        json!({"pipeline": {"name": pipeline, "roleArn": pipeline_role(&h.stack),
            "pipelineType": "V2", "artifactStores": stores, "stages": [
            {"name": "Source", "actions": [{"name": "Upload", "actionTypeId": kind("Source", "S3"),
                "configuration": {"S3Bucket": release.source_bucket, "S3ObjectKey": key,
                    "PollForSourceChanges": "false"},
                "outputArtifacts": [{"name": "SourceOutput"}]}]},
            {"name": "Run",
             "onSuccess": {"conditions": [{"result": "FAIL", "rules": [{"name": "Quiet",
                "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "CloudWatchAlarm", "version": "1"},
                "region": TARGET_REGION, "roleArn": DEPLOY_ROLE,
                "configuration": {"AlarmName": alarm}}]}]},
             "actions": [{"name": "Machine", "actionTypeId": kind("Invoke", "StepFunctions"),
                "region": TARGET_REGION, "roleArn": DEPLOY_ROLE,
                "configuration": {"StateMachineArn": machine, "InputType": "FilePath",
                    "Input": "input.json"},
                "inputArtifacts": [{"name": "SourceOutput"}], "outputArtifacts": [{"name": "Ran"}]},
              {"name": "StackSet", "actionTypeId": kind("Deploy", "CloudFormationStackSet"),
                "region": TARGET_REGION, "roleArn": DEPLOY_ROLE,
                "configuration": {"StackSetName": format!("{}-topics", h.stack.name),
                    "TemplatePath": "SourceOutput::set.json",
                    "Parameters": "ParameterKey=TopicName,ParameterValue=orders",
                    "DeploymentTargets": "222222222222", "Regions": TARGET_REGION,
                    "AdministrationRoleArn": "arn:aws:iam::222222222222:role/AWSCloudFormationStackSetAdministrationRole"},
                "inputArtifacts": [{"name": "SourceOutput"}]},
              {"name": "Fleet", "actionTypeId": kind("Deploy", "CodeDeploy"),
                "region": TARGET_REGION, "roleArn": DEPLOY_ROLE,
                "configuration": {"ApplicationName": application, "DeploymentGroupName": "servers"},
                "inputArtifacts": [{"name": "SourceOutput"}]},
              {"name": "Function", "actionTypeId": kind("Deploy", "Lambda"),
                "region": TARGET_REGION, "roleArn": DEPLOY_ROLE,
                "configuration": {"FunctionName": function, "FunctionAlias": "live"},
                "inputArtifacts": [{"name": "SourceOutput"}]},
              {"name": "Flags", "actionTypeId": kind("Deploy", "AppConfig"),
                "region": TARGET_REGION, "roleArn": DEPLOY_ROLE,
                "configuration": {"Application": app, "Environment": "prod",
                    "ConfigurationProfile": profile, "InputArtifactConfigurationPath": "input.json"},
                "inputArtifacts": [{"name": "SourceOutput"}]},
              {"name": "Web", "actionTypeId": kind("Deploy", "ElasticBeanstalk"),
                "region": OTHER_REGION, "roleArn": DEPLOY_ROLE,
                "configuration": {"ApplicationName": "web", "EnvironmentName": "web-prod"},
                "inputArtifacts": [{"name": "SourceOutput"}]},
              {"name": "Site", "actionTypeId": kind("Deploy", "S3"),
                "region": TARGET_REGION, "roleArn": DEPLOY_ROLE,
                "configuration": {"BucketName": site, "Extract": "true"},
                "inputArtifacts": [{"name": "SourceOutput"}]}]}
        ]}}),
    )
    .await;
    let started = api("StartPipelineExecution", json!({"name": pipeline})).await;
    let execution = started["pipelineExecutionId"].as_str().unwrap().to_owned();
    // The worker's minute schedule follows running executions: each look, its minute passed.
    let follow = async || {
        due_now(&h).await;
        let check = json!({"schedule": "CheckRunningJobs"});
        let checked = h.pool("action-worker").unwrap().invoke(check).await.unwrap();
        assert!(checked.is_ok(), "{checked:?}");
    };
    let patience = Duration::from_secs(60);
    let status = user.end_of(&pipeline, &execution, patience, follow).await.unwrap();
    let state = api("GetPipelineState", json!({"name": pipeline})).await;
    assert_eq!(status, "Succeeded", "{state}\n{}", crate::diagnostics(&h).await);
    let deployed = target_s3.get_object().bucket(&site).key("input.json").send().await.unwrap();
    let deployed = deployed.body.collect().await.unwrap().into_bytes();
    assert_eq!(deployed.as_ref(), br#"{"release": 7}"#, "the site holds the source's file");
    let deployments = codedeploy.list_deployments().application_name(&application);
    let deployments = deployments.deployment_group_name("servers").send().await.unwrap();
    assert_eq!(deployments.deployments().len(), 1, "one deployment of the source");
    // Read through the proxy, which signs a bodiless request again as moto reads it.
    h.proxy.knows(&target);
    let through = h.proxy.listen("harness").await.unwrap();
    let lambda = aws_sdk_lambda::Client::new(&target.sdk(&through, TARGET_REGION).await);
    let live = lambda.get_alias().function_name(&function).name("live").send().await.unwrap();
    assert_eq!(live.function_version(), Some("2"), "the alias moved to the new version");
    let web = h.proxy.beanstalk().running("web-prod");
    assert!(
        web.is_some_and(|label| label.contains(&execution)),
        "the environment runs this execution's version"
    );
    let flags = h.proxy.appconfig().of(&format!("applications/{app}/environments/prod"));
    assert_eq!(flags.len(), 1, "one deployment of the configuration: {flags:?}");
    assert_eq!(flags[0]["ConfigurationVersion"], "1", "of the version written: {flags:?}");
    let rule =
        &state["stageStates"][1]["onSuccessConditionState"]["conditionStates"][0]["ruleStates"][0];
    let summary = format!("{alarm} is OK");
    assert_eq!(rule["latestExecution"]["summary"], summary.as_str(), "{state}");

    assert_no_call_refused(&h);
    assert_needed_here(&h, PROVIDERS);
}

/// Makes every running job due for a look (its `check_at` passed): no event announces a state
/// machine's end in another account, so the worker finds it on its minute schedule.
pub(crate) async fn due_now(h: &Harness) {
    use aws_sdk_dynamodb::types::AttributeValue;
    let dynamodb = aws_sdk_dynamodb::Client::new(&h.stack.sdk(HOME).await);
    let jobs = dynamodb
        .query()
        .table_name(&h.stack.table)
        .key_condition_expression("pk = :jobs")
        .expression_attribute_values(":jobs", AttributeValue::S("JOBS".into()))
        .send()
        .await
        .unwrap();
    for item in jobs.items() {
        // A job that ended since the query is gone, and stays gone.
        let updated = dynamodb
            .update_item()
            .table_name(&h.stack.table)
            .key("pk", item["pk"].clone())
            .key("sk", item["sk"].clone())
            .update_expression("SET check_at = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", AttributeValue::N("0".into()))
            .send()
            .await;
        if let Err(e) = updated {
            let gone =
                e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception());
            assert!(gone, "{e:?}");
        }
    }
}

/// The source: the state machine's input and the stack set's template.
fn zipped() -> Vec<u8> {
    use std::io::Write as _;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("input.json", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(br#"{"release": 7}"#).unwrap();
    zip.start_file("set.json", zip::write::SimpleFileOptions::default()).unwrap();
    zip.write_all(br#"{"Parameters": {"TopicName": {"Type": "String"}},
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Ref": "TopicName"}}}}}"#)
        .unwrap();
    zip.finish().unwrap().into_inner()
}
