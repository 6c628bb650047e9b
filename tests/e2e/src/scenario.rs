//! The release of the issue: an S3 upload in account 111111111111, us-east-1, starts source →
//! build (CodeBuild) → manual approval → in parallel a CloudFormation stack and an ECS service in
//! account 222222222222, eu-west-1 (through `roleArn`) and an S3 deploy in us-west-2.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use aws_sdk_dynamodb::types::AttributeValue;
use baton_core::declaration::PipelineDocument;
use baton_core::engine::{Execution, ExecutionStatus};
use baton_core::plan::{Placement, Plan};
use serde_json::{Value, json};

use crate::stack::{HOME, PIPELINE_ACCOUNT, Stack, TARGET_ACCOUNT};

/// The pipeline's role: named as CodePipeline's console names service roles, which the
/// template's default `PipelineRoleNamePattern` lets the worker assume.
pub fn pipeline_role(stack: &Stack) -> String {
    format!("arn:aws:iam::{PIPELINE_ACCOUNT}:role/AWSCodePipelineServiceRole-{}", stack.name)
}

/// The deploy role the cross-account action assumes (`infra/target-account.yaml`).
pub const DEPLOY_ROLE: &str = "arn:aws:iam::222222222222:role/baton-deploy";

/// The image the release deploys to the ECS service.
pub const RELEASE_IMAGE: &str = "222222222222.dkr.ecr.eu-west-1.amazonaws.com/web:release";

/// What one release names.
#[derive(Debug, Clone)]
pub struct Release {
    #[allow(missing_docs)]
    pub pipeline: String,
    /// The versioned source bucket (EventBridge notifications on).
    pub source_bucket: String,
    #[allow(missing_docs)]
    pub source_key: String,
    #[allow(missing_docs)]
    pub project: String,
    /// The CloudFormation stack made in 222222222222/eu-west-1.
    pub stack_name: String,
    /// The S3 deploy's bucket in us-west-2.
    pub site_bucket: String,
    /// The ECS cluster in 222222222222/eu-west-1 whose service `web` the release deploys to.
    pub cluster: String,
    /// The CodeCommit repository whose `main` branch is the source instead of the upload.
    pub repository: Option<String>,
}

impl Release {
    /// Names for `stack`; `build_project` is the CodeBuild project the build action names
    /// (one that does not exist makes the build fail).
    pub fn new(stack: &Stack, suffix: &str) -> Self {
        let n = format!("{}-{suffix}", stack.name);
        Self {
            pipeline: format!("{n}-release"),
            source_bucket: format!("{n}-source"),
            source_key: "app/source.zip".into(),
            project: format!("{n}-build"),
            stack_name: format!("{n}-app"),
            site_bucket: format!("{n}-site"),
            cluster: format!("{n}-cluster"),
            repository: None,
        }
    }

    /// The same release, started by a push to `main` of a CodeCommit repository.
    pub fn pushed(stack: &Stack, suffix: &str) -> Self {
        let release = Self::new(stack, suffix);
        Self { repository: Some(format!("{}-repo", release.pipeline)), ..release }
    }

    /// The pipeline declaration, CodePipeline's JSON.
    pub fn declaration(&self, stack: &Stack, project: &str) -> Value {
        let stores: serde_json::Map<String, Value> = stack
            .buckets
            .iter()
            .map(|(region, bucket)| {
                (
                    region.clone(),
                    json!({"type": "S3", "location": bucket,
                    "encryptionKey": {"id": stack.keys_by_region[region], "type": "KMS"}}),
                )
            })
            .collect();
        let kind = |category: &str, provider: &str| json!({"category": category, "owner": "AWS", "provider": provider, "version": "1"});
        let source = match &self.repository {
            None => json!({
                "name": "Upload", "actionTypeId": kind("Source", "S3"), "runOrder": 1,
                "configuration": {"S3Bucket": self.source_bucket, "S3ObjectKey": self.source_key,
                    "PollForSourceChanges": "false"},
                "outputArtifacts": [{"name": "SourceOutput"}], "inputArtifacts": []}),
            Some(repository) => json!({
                "name": "Push", "actionTypeId": kind("Source", "CodeCommit"), "runOrder": 1,
                "configuration": {"RepositoryName": repository, "BranchName": "main",
                    "PollForSourceChanges": "false"},
                "outputArtifacts": [{"name": "SourceOutput"}], "inputArtifacts": []}),
        };
        json!({"pipeline": {
            "name": self.pipeline,
            "roleArn": pipeline_role(stack),
            "artifactStores": stores,
            "pipelineType": "V2",
            "executionMode": "QUEUED",
            "stages": [
                {"name": "Source", "actions": [source]},
                {"name": "Build", "actions": [{
                    "name": "Build", "actionTypeId": kind("Build", "CodeBuild"), "runOrder": 1,
                    "configuration": {"ProjectName": project},
                    "inputArtifacts": [{"name": "SourceOutput"}], "outputArtifacts": [{"name": "BuildOutput"}]}]},
                {"name": "Approve", "actions": [{
                    "name": "Release", "actionTypeId": kind("Approval", "Manual"), "runOrder": 1,
                    "configuration": {"CustomData": "Release to eu-west-1 and us-west-2?"}}]},
                {"name": "Deploy", "actions": [
                    {"name": "Stack", "actionTypeId": kind("Deploy", "CloudFormation"), "runOrder": 1,
                     "region": "eu-west-1", "roleArn": DEPLOY_ROLE,
                     "configuration": {"ActionMode": "CREATE_UPDATE", "StackName": self.stack_name,
                        "TemplatePath": "SourceOutput::template.json",
                        "RoleArn": "arn:aws:iam::222222222222:role/baton-deploy-cloudformation"},
                     "inputArtifacts": [{"name": "SourceOutput"}], "outputArtifacts": []},
                    {"name": "Site", "actionTypeId": kind("Deploy", "S3"), "runOrder": 1,
                     "region": "us-west-2",
                     "configuration": {"BucketName": self.site_bucket, "Extract": "true"},
                     "inputArtifacts": [{"name": "BuildOutput"}], "outputArtifacts": []},
                    {"name": "Service", "actionTypeId": kind("Deploy", "ECS"), "runOrder": 1,
                     "region": "eu-west-1", "roleArn": DEPLOY_ROLE,
                     "configuration": {"ClusterName": self.cluster, "ServiceName": "web",
                        "FileName": "images.json"},
                     "inputArtifacts": [{"name": "SourceOutput"}], "outputArtifacts": []}
                ]}
            ]
        }})
    }

    /// Creates the pipeline (what `CreatePipeline` stores), the source bucket, the CodeBuild
    /// project, the site bucket and the target account's ECS service.
    pub async fn prepare(&self, stack: &Stack, project: &str) -> Result<()> {
        self.create_service(stack).await?;
        // moto loads a service's code at its first request (CloudFormation's, about a second):
        // asked once here, so that load is not billed to the deploy's invocation in the
        // figures, as AWS has no such first request.
        let eu = stack.sdk("eu-west-1").await;
        aws_sdk_cloudformation::Client::new(&eu).list_stacks().send().await?;
        let home = stack.sdk(HOME).await;
        let s3 = s3(&home);
        s3.create_bucket().bucket(&self.source_bucket).send().await?;
        s3.put_bucket_versioning()
            .bucket(&self.source_bucket)
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await?;
        s3.put_bucket_notification_configuration()
            .bucket(&self.source_bucket)
            .notification_configuration(
                aws_sdk_s3::types::NotificationConfiguration::builder()
                    .event_bridge_configuration(
                        aws_sdk_s3::types::EventBridgeConfiguration::builder().build(),
                    )
                    .build(),
            )
            .send()
            .await?;
        let west = s3_client(&stack.sdk("us-west-2").await);
        west.create_bucket()
            .bucket(&self.site_bucket)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::UsWest2)
                    .build(),
            )
            .send()
            .await?;
        let location = format!("{}/{}", self.source_bucket, self.source_key);
        build_project(&home, &self.project, aws_sdk_codebuild::types::SourceType::S3, &location)
            .await?;
        self.create_pipeline(stack, project).await
    }

    /// The ECS service `web` in the target account and region, running `web:1` (`nginx:1`).
    /// A pipeline `name` of two stages, as a user declares one: the release's source object
    /// (polled or not), then a manual approval; its store is the bucket `store`.
    pub fn upload_then_approve(&self, stack: &Stack, name: &str, store: &str, poll: bool) -> Value {
        json!({"pipeline": {"name": name, "roleArn": pipeline_role(stack),
            "artifactStore": {"type": "S3", "location": store},
            "stages": [
                {"name": "Source", "actions": [{"name": "Upload",
                    "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                    "configuration": {"S3Bucket": self.source_bucket, "S3ObjectKey": self.source_key,
                        "PollForSourceChanges": poll.to_string()},
                    "outputArtifacts": [{"name": "SourceOutput"}]}]},
                {"name": "Approve", "actions": [{"name": "Release",
                    "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}]}]}})
    }

    async fn create_service(&self, stack: &Stack) -> Result<()> {
        let target =
            crate::stack::assume(&stack.endpoint, crate::stack::TARGET_ADMIN, Some(&stack.keys))
                .await?;
        let ecs = aws_sdk_ecs::Client::new(&target.sdk(&stack.endpoint, "eu-west-1").await);
        web_service(&ecs, &self.cluster, &self.cluster, TARGET_ACCOUNT).await
    }

    /// The images the service `web` runs now, by container.
    pub async fn service_images(&self, stack: &Stack) -> Result<Vec<(String, String)>> {
        let target =
            crate::stack::assume(&stack.endpoint, crate::stack::TARGET_ADMIN, Some(&stack.keys))
                .await?;
        let ecs = aws_sdk_ecs::Client::new(&target.sdk(&stack.endpoint, "eu-west-1").await);
        let services =
            ecs.describe_services().cluster(&self.cluster).services("web").send().await?;
        let service = services.services().first().context("the service is gone")?;
        let running = service.task_definition().context("the service runs nothing")?;
        let task = ecs.describe_task_definition().task_definition(running).send().await?;
        let task = task.task_definition().context("no task definition")?;
        Ok(task
            .container_definitions()
            .iter()
            .map(|c| (c.name().unwrap_or("").to_owned(), c.image().unwrap_or("").to_owned()))
            .collect())
    }

    async fn create_pipeline(&self, stack: &Stack, project: &str) -> Result<()> {
        let text = self.declaration(stack, project).to_string();
        let mut declaration = PipelineDocument::parse(&text).map_err(|e| anyhow!("{e}"))?.pipeline;
        declaration.version = Some(1);
        let placement = Placement {
            account: PIPELINE_ACCOUNT.into(),
            region: HOME.into(),
            event_source: "baton.codepipeline".into(),
        };
        let plan = Plan::from_declaration(&declaration, &placement).map_err(|errors| {
            anyhow!(
                "the declaration is invalid: {}",
                errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
            )
        })?;
        let now = now_ms();
        let record = json!({"declaration": declaration, "plan": plan, "created": now,
            "updated": now, "tags": []});
        // The items the state store's create_pipeline writes: the record and the listing.
        let dynamodb = aws_sdk_dynamodb::Client::new(&stack.sdk(HOME).await);
        let s = |v: &str| AttributeValue::S(v.to_owned());
        dynamodb
            .put_item()
            .table_name(&stack.table)
            .item("pk", s(&format!("PIPELINE#{}", self.pipeline)))
            .item("sk", s("PIPELINE"))
            .item("record", baton::adapters::aws::dynamodb_state::packed(&record.to_string())?)
            .item("created", AttributeValue::N(now.to_string()))
            .item("updated", AttributeValue::N(now.to_string()))
            .send()
            .await?;
        dynamodb
            .put_item()
            .table_name(&stack.table)
            .item("pk", s("PIPELINES"))
            .item("sk", s(&self.pipeline))
            .send()
            .await?;
        Ok(())
    }

    /// The source's files: a CloudFormation template, a web page and the service's image.
    pub fn source_files(&self) -> BTreeMap<String, Vec<u8>> {
        let template = json!({
            "AWSTemplateFormatVersion": "2010-09-09",
            "Resources": {"Notices": {"Type": "AWS::SNS::Topic",
                "Properties": {"TopicName": format!("{}-notices", self.stack_name)}}},
            "Outputs": {"TopicArn": {"Value": {"Ref": "Notices"}}}
        });
        let images = format!(r#"[{{"name": "app", "imageUri": "{RELEASE_IMAGE}"}}]"#);
        BTreeMap::from([
            ("template.json".to_owned(), template.to_string().into_bytes()),
            ("index.html".to_owned(), b"<h1>release</h1>\n".to_vec()),
            ("images.json".to_owned(), images.into_bytes()),
        ])
    }

    /// Pushes `commit` to the repository's `main` (kept by the proxy's stand-in CodeCommit) as
    /// CodeCommit announces a push: "CodeCommit Repository State Change" on the default bus.
    pub async fn push(
        &self,
        stack: &Stack,
        proxy: &crate::proxy::Proxy,
        commit: &str,
    ) -> Result<()> {
        let repository = self.repository.as_deref().context("the release has no repository")?;
        let files = self.source_files();
        let message = format!("Release {commit}");
        proxy.codecommit().commit(
            repository,
            "main",
            commit,
            crate::codecommit::Commit { message, files },
        );
        let arn = format!("arn:aws:codecommit:{HOME}:{PIPELINE_ACCOUNT}:{repository}");
        let detail = json!({"event": "referenceUpdated", "repositoryName": repository,
            "repositoryId": "0f1e2d3c", "referenceType": "branch", "referenceName": "main",
            "referenceFullName": "refs/heads/main", "commitId": commit,
            "oldCommitId": "0000000000000000000000000000000000000000", "callerUserArn":
            format!("arn:aws:iam::{PIPELINE_ACCOUNT}:user/dev")});
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source("aws.codecommit")
            .detail_type("CodeCommit Repository State Change")
            .resources(arn)
            .detail(detail.to_string())
            .build();
        let events = aws_sdk_eventbridge::Client::new(&stack.sdk(HOME).await);
        let out = events.put_events().entries(entry).send().await.context("announcing the push")?;
        anyhow::ensure!(out.failed_entry_count() == 0, "the push event was not put: {out:?}");
        Ok(())
    }

    /// Uploads the source zip.
    pub async fn upload_source(&self, stack: &Stack) -> Result<()> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        for (name, content) in self.source_files() {
            zip.start_file(name, options)?;
            zip.write_all(&content)?;
        }
        let bytes = zip.finish()?.into_inner();
        s3(&stack.sdk(HOME).await)
            .put_object()
            .bucket(&self.source_bucket)
            .key(&self.source_key)
            .body(bytes.into())
            .send()
            .await
            .context("uploading the source")?;
        Ok(())
    }

    /// The pipeline's executions, from the table: those in items of their own, and those
    /// holding a stage, which live in the lanes item (`x:<id>` attributes).
    pub async fn executions(&self, stack: &Stack) -> Result<Vec<Execution>> {
        // moto changes a stored item in place, one clause of an update after another, so a
        // Query beside a write can read an execution's item half-written (neither its body nor
        // a tombstone's mark; seen once in the fault variant); DynamoDB writes an item at once.
        // Such a read is taken again; one that lasts fails.
        let mut tries = 0;
        loop {
            match self.executions_once(stack).await {
                Err(e) if tries < 5 && e.to_string().ends_with("has no body") => {
                    tries += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                other => return other,
            }
        }
    }

    async fn executions_once(&self, stack: &Stack) -> Result<Vec<Execution>> {
        let dynamodb = aws_sdk_dynamodb::Client::new(&stack.sdk(HOME).await);
        let out = dynamodb
            .query()
            .table_name(&stack.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(
                ":pk",
                AttributeValue::S(format!("PIPELINE#{}", self.pipeline)),
            )
            .consistent_read(true)
            .send()
            .await?;
        // The store keeps bodies deflated (write units are counted per kilobyte).
        let read = |v: &AttributeValue| -> Result<Execution> {
            match v {
                AttributeValue::B(packed) => {
                    let json = baton::adapters::aws::dynamodb_state::inflated(packed.as_ref())?;
                    Ok(serde_json::from_str(&json)?)
                }
                _ => bail!("an execution body is not deflated JSON"),
            }
        };
        let mut resident = Vec::new();
        let mut own = Vec::new();
        for item in out.items() {
            let sk = match item.get("sk") {
                Some(AttributeValue::S(sk)) => sk.as_str(),
                _ => continue,
            };
            if sk == "LANES" {
                for (name, v) in item {
                    if baton::adapters::aws::dynamodb_state::is_resident_attribute(name) {
                        resident.push(read(v)?);
                    }
                }
            } else if sk.starts_with("EXECUTION#") && !item.contains_key("resident") {
                own.push(read(
                    item.get("body").ok_or_else(|| anyhow::anyhow!("{sk} has no body"))?,
                )?);
            }
        }
        // A resident wins over its own item, which is then a move's draft not yet current.
        own.retain(|x: &Execution| !resident.iter().any(|r: &Execution| r.id == x.id));
        own.extend(resident);
        Ok(own)
    }

    /// Waits until an execution exists and satisfies `done`; returns it.
    pub async fn wait_for(
        &self,
        stack: &Stack,
        what: &str,
        patience: Duration,
        done: impl Fn(&Execution) -> bool,
    ) -> Result<Execution> {
        let deadline = Instant::now() + patience;
        let mut last = None;
        while Instant::now() < deadline {
            if let Some(e) = self.executions(stack).await?.into_iter().next() {
                if done(&e) {
                    return Ok(e);
                }
                last = Some(e);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("waited {patience:?} for {what}; the execution is {}", describe(last.as_ref()))
    }
}

/// One line per stage and action: status and error.
pub fn describe(e: Option<&Execution>) -> String {
    let Some(e) = e else { return "not started".into() };
    let mut out = format!("{:?}", e.status());
    for (i, s) in e.stages.iter().enumerate() {
        out.push_str(&format!("; stage {i}={:?}[", s.status));
        for a in &s.actions {
            out.push_str(&format!("{:?}#{} {:?} ", a.status, a.attempt, a.error));
        }
        out.push(']');
    }
    out
}

/// Whether the execution ended.
pub fn ended(e: &Execution) -> bool {
    !matches!(e.status(), ExecutionStatus::InProgress | ExecutionStatus::Stopping)
}

/// An S3 client on `sdk` with path-style addressing (moto serves no virtual hosts).
pub fn s3_client(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build(),
    )
}

fn s3(sdk: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    s3_client(sdk)
}

/// Where a stack named `name` exists: (account, region) pairs among the scenario's.
pub async fn stack_placements(stack: &Stack, name: &str) -> Result<Vec<(String, String)>> {
    let target =
        crate::stack::assume(&stack.endpoint, crate::stack::TARGET_ADMIN, Some(&stack.keys))
            .await?;
    let mut found = Vec::new();
    for (account, keys) in [(PIPELINE_ACCOUNT, &stack.keys), (TARGET_ACCOUNT, &target)] {
        for region in ["us-east-1", "eu-west-1", "us-west-2"] {
            let cfn = aws_sdk_cloudformation::Client::new(&keys.sdk(&stack.endpoint, region).await);
            let exists = cfn.describe_stacks().stack_name(name).send().await.is_ok_and(|o| {
                o.stacks()
                    .iter()
                    .any(|s| s.stack_status().is_some_and(|st| st.as_str() == "CREATE_COMPLETE"))
            });
            if exists {
                found.push((account.to_owned(), region.to_owned()));
            }
        }
    }
    Ok(found)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0))
}

/// Creates the function `name` (a zip of `code`, published as version 1) running as a role of
/// its own, with the SDK configuration of its account and region.
pub async fn function(
    sdk: &aws_config::SdkConfig,
    name: &str,
    code: Vec<u8>,
) -> anyhow::Result<()> {
    let trust = r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}"#;
    let role = aws_sdk_iam::Client::new(sdk)
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust)
        .send()
        .await?
        .role
        .ok_or_else(|| anyhow::anyhow!("CreateRole gave no role"))?
        .arn;
    let code = aws_sdk_lambda::types::FunctionCode::builder().zip_file(code.into()).build();
    aws_sdk_lambda::Client::new(sdk)
        .create_function()
        .function_name(name)
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role)
        .code(code)
        .publish(true)
        .send()
        .await?;
    Ok(())
}

/// A CodeBuild project `name` of `sdk`'s account building from `location` (of `kind`); the
/// pipeline's builds override its source and artifacts.
pub async fn build_project(
    sdk: &aws_config::SdkConfig,
    name: &str,
    kind: aws_sdk_codebuild::types::SourceType,
    location: &str,
) -> Result<()> {
    use aws_sdk_codebuild::types::{
        ArtifactsType, ComputeType, EnvironmentType, ProjectArtifacts, ProjectEnvironment,
        ProjectSource,
    };
    let environment = ProjectEnvironment::builder()
        .r#type(EnvironmentType::LinuxContainer)
        .image("aws/codebuild/standard:7.0")
        .compute_type(ComputeType::BuildGeneral1Small);
    aws_sdk_codebuild::Client::new(sdk)
        .create_project()
        .name(name)
        .source(ProjectSource::builder().r#type(kind).location(location).build()?)
        .artifacts(ProjectArtifacts::builder().r#type(ArtifactsType::NoArtifacts).build()?)
        .environment(environment.build()?)
        .service_role(format!("arn:aws:iam::{PIPELINE_ACCOUNT}:role/codebuild"))
        .send()
        .await?;
    Ok(())
}

/// An ECS cluster `cluster` of `account` running the service `web` on one task of the family
/// `family`, whose tasks run with the account's `ecsTaskExecutionRole` (each new revision is
/// registered with it again, so a deploy passes it).
pub async fn web_service(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    family: &str,
    account: &str,
) -> Result<()> {
    use aws_sdk_ecs::types::ContainerDefinition;
    ecs.create_cluster().cluster_name(cluster).send().await?;
    let app = ContainerDefinition::builder().name("app").image("nginx:1").memory(128);
    ecs.register_task_definition()
        .family(family)
        .execution_role_arn(format!("arn:aws:iam::{account}:role/ecsTaskExecutionRole"))
        .container_definitions(app.essential(true).build())
        .send()
        .await?;
    let service = ecs.create_service().cluster(cluster).service_name("web");
    service.task_definition(family).desired_count(1).send().await?;
    // The emulator starts no tasks; setting the count is how it is told the task runs.
    let running = ecs.update_service().cluster(cluster).service("web");
    running.desired_count(1).send().await?;
    Ok(())
}
