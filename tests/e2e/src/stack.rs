//! template.yaml's resources stood up on moto in the pipeline account, one "stack" per
//! scenario (every name carries the stack's unique name, so scenarios share one moto).
//!
//! Rules get an SQS queue as their target instead of the function (moto cannot invoke Lambda,
//! nor deliver to SNS from a rule); the delivery loop does the rest.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, SseSpecification, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration,
    ServerSideEncryptionRule, VersioningConfiguration,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_norway::Value as Yaml;

use crate::template::{Bindings, Rule, Template};

/// The account pipelines live in.
pub const PIPELINE_ACCOUNT: &str = "111111111111";
/// The account the cross-account deploy lands in.
pub const TARGET_ACCOUNT: &str = "222222222222";
/// The home region.
pub const HOME: &str = "us-east-1";
/// The harness's own role in the target account, for reading what was deployed there.
pub const TARGET_ADMIN: &str = "arn:aws:iam::222222222222:role/baton-e2e-admin";
/// The GitHub webhook secret in the stack's `WebhookSecrets`.
pub const GITHUB_WEBHOOK_SECRET: &str = "e2e-github-webhook-secret";
/// The extra regions (`infra/region.yaml`'s buckets and keys).
pub const EXTRA_REGIONS: [&str; 2] = ["eu-west-1", "us-west-2"];

/// Static credentials of an account: moto maps AssumeRole's keys to the role's account.
#[derive(Debug, Clone)]
pub struct AccountKeys {
    #[allow(missing_docs)]
    pub access_key: String,
    #[allow(missing_docs)]
    pub secret_key: String,
    #[allow(missing_docs)]
    pub session_token: String,
}

impl AccountKeys {
    /// An SDK configuration on `endpoint` in `region` with these keys.
    pub async fn sdk(&self, endpoint: &str, region: &str) -> SdkConfig {
        let creds = Credentials::new(
            &self.access_key,
            &self.secret_key,
            Some(self.session_token.clone()),
            None,
            "e2e",
        );
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(region.to_owned()))
            .endpoint_url(endpoint)
            .credentials_provider(creds)
            .load()
            .await
    }
}

/// Assumes `role_arn` with moto's conventional keys (or `from`).
pub async fn assume(
    endpoint: &str,
    role_arn: &str,
    from: Option<&AccountKeys>,
) -> Result<AccountKeys> {
    let sdk = match from {
        Some(keys) => keys.sdk(endpoint, HOME).await,
        None => {
            aws_config::defaults(BehaviorVersion::latest())
                .region(Region::new(HOME))
                .endpoint_url(endpoint)
                .credentials_provider(Credentials::new("testing", "testing", None, None, "e2e"))
                .load()
                .await
        }
    };
    let out = aws_sdk_sts::Client::new(&sdk)
        .assume_role()
        .role_arn(role_arn)
        .role_session_name("baton-e2e")
        .send()
        .await
        .with_context(|| format!("AssumeRole {role_arn}"))?;
    let c = out.credentials().ok_or_else(|| anyhow!("AssumeRole gave no credentials"))?;
    Ok(AccountKeys {
        access_key: c.access_key_id().to_owned(),
        secret_key: c.secret_access_key().to_owned(),
        session_token: c.session_token().to_owned(),
    })
}

/// A rule as stood up: its queue.
#[derive(Debug, Clone)]
pub struct RuleQueue {
    #[allow(missing_docs)]
    pub rule: Rule,
    #[allow(missing_docs)]
    pub queue_url: String,
}

/// The stood-up resources.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The unique name every resource carries.
    pub name: String,
    /// moto.
    pub endpoint: String,
    /// The pipeline account's keys (the functions' own credentials).
    pub keys: AccountKeys,
    #[allow(missing_docs)]
    pub table: String,
    #[allow(missing_docs)]
    pub bus: String,
    /// Artifact bucket by region.
    pub buckets: BTreeMap<String, String>,
    /// Artifact key ARN by region.
    pub keys_by_region: BTreeMap<String, String>,
    #[allow(missing_docs)]
    pub failure_topic: String,
    #[allow(missing_docs)]
    pub approval_topic: String,
    #[allow(missing_docs)]
    pub dead_letter_queue: String,
    /// Every rule of the template, with its queue.
    pub rules: Vec<RuleQueue>,
    /// The table's stream, when the template gives it one.
    pub stream_arn: Option<String>,
    /// The template's event source mappings on that stream.
    pub stream_sources: Vec<crate::template::StreamSource>,
    /// The catch-all rule's queue (`source: baton.codepipeline`).
    pub public_events_queue: String,
    /// SQS subscriptions of the approvals and failures topics.
    pub approval_notices_queue: String,
    #[allow(missing_docs)]
    pub failure_notices_queue: String,
    /// The functions' environment, from the template's `Globals`.
    pub env: BTreeMap<String, String>,
    /// What the template's `!Ref`s and `!GetAtt`s resolve to in this stack.
    pub bindings: Bindings,
}

/// A short name no other scenario (or earlier run on the same moto) uses.
pub fn unique() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    format!("e2e{:x}{}", millis % 0xffff_ffff, N.fetch_add(1, Ordering::Relaxed))
}

impl Stack {
    /// Stands up `template`'s resources on `endpoint`, with `parameters` given instead of
    /// their defaults.
    pub async fn up(
        template: &Template,
        endpoint: &str,
        parameters: &[(&str, &str)],
    ) -> Result<Self> {
        let name = unique();
        let keys = assume(
            endpoint,
            &format!("arn:aws:iam::{PIPELINE_ACCOUNT}:role/baton-functions"),
            None,
        )
        .await?;
        let home = keys.sdk(endpoint, HOME).await;
        let mut b = Bindings::default();
        for (k, v) in [
            ("AWS::Region", HOME.to_owned()),
            ("AWS::StackName", name.clone()),
            ("AWS::AccountId", PIPELINE_ACCOUNT.to_owned()),
            ("AWS::Partition", "aws".to_owned()),
        ] {
            b.refs.insert(k.into(), v);
        }
        // The approval function's URL: links in notices point there. Nothing serves it here; the
        // scenario decides through the bus (see `approval::decide`).
        b.atts.insert("ApprovalFunctionUrl.FunctionUrl".into(), "http://127.0.0.1:9/".into());
        // GitHub's API: no scenario has a GitHub (v1) source, and nothing leaves loopback.
        b.refs.insert("GitHubApiUrl".into(), "http://127.0.0.1:9".into());
        // The Commands project: the scenario runs no Commands action, so nothing builds there.
        b.refs.insert("CommandsProject".into(), format!("{name}-commands"));
        // The role job credentials are cut from: moto's STS lends any role.
        b.atts.insert(
            "JobArtifactsRole.Arn".into(),
            format!("arn:aws:iam::{PIPELINE_ACCOUNT}:role/baton-job-artifacts"),
        );
        for p in [
            "DeployRoleName",
            "ExecutionRetentionDays",
            "Architecture",
            "AssumePipelineRoles",
            "PipelineRoleNamePattern",
            "DeclaredArtifactBuckets",
        ] {
            if let Some(v) = template.parameter_default(p) {
                b.refs.insert(p.into(), v);
            }
        }
        for (p, v) in parameters {
            b.refs.insert((*p).to_owned(), (*v).to_owned());
        }

        let table = format!("{name}-executions");
        create_table(&aws_sdk_dynamodb::Client::new(&home), template, &table).await?;
        let stream_arn = aws_sdk_dynamodb::Client::new(&home)
            .describe_table()
            .table_name(&table)
            .send()
            .await?
            .table
            .and_then(|t| t.latest_stream_arn);
        b.refs.insert("ExecutionsTable".into(), table.clone());

        let bus_name = crate::template::resolve(
            template
                .properties("EventsBus")?
                .get("Name")
                .ok_or_else(|| anyhow!("EventsBus has no Name"))?,
            &b,
        )?;
        aws_sdk_eventbridge::Client::new(&home).create_event_bus().name(&bus_name).send().await?;
        b.refs.insert("EventsBus".into(), bus_name.clone());

        let mut buckets = BTreeMap::new();
        let mut keys_by_region = BTreeMap::new();
        for region in std::iter::once(HOME).chain(EXTRA_REGIONS) {
            let sdk = keys.sdk(endpoint, region).await;
            let mut rb = b.clone();
            rb.refs.insert("AWS::Region".into(), region.into());
            let (key_id, key_arn) = create_key(&sdk, template, &rb).await?;
            rb.refs.insert("ArtifactKey".into(), key_id.clone());
            rb.atts.insert("ArtifactKey.Arn".into(), key_arn.clone());
            let bucket = format!("{name}-artifacts-{region}");
            create_bucket(&sdk, template, &rb, &bucket, region).await?;
            if region == HOME {
                b = rb;
                b.refs.insert("ArtifactBucket".into(), bucket.clone());
                b.atts.insert("ArtifactBucket.Arn".into(), format!("arn:aws:s3:::{bucket}"));
            }
            buckets.insert(region.to_owned(), bucket);
            keys_by_region.insert(region.to_owned(), key_arn);
        }

        let sns = aws_sdk_sns::Client::new(&home);
        let sqs = aws_sdk_sqs::Client::new(&home);
        let mut topics = BTreeMap::new();
        for id in template.resources_of("AWS::SNS::Topic") {
            let p = template.properties(&id)?;
            let mut req = sns.create_topic().name(format!("{name}-{id}"));
            if let Some(v) = p.get("KmsMasterKeyId") {
                req = req.attributes("KmsMasterKeyId", crate::template::resolve(v, &b)?);
            }
            if let Some(v) = p.get("DisplayName").and_then(Yaml::as_str) {
                req = req.attributes("DisplayName", v);
            }
            let arn = req.send().await?.topic_arn().unwrap_or_default().to_owned();
            b.refs.insert(id.clone(), arn.clone());
            topics.insert(id, arn);
        }

        let dlq_props = template.properties("DeadLetterQueue")?;
        let mut req = sqs.create_queue().queue_name(format!("{name}-dlq"));
        if let Some(v) = dlq_props.get("MessageRetentionPeriod") {
            req = req.attributes(
                QueueAttributeName::MessageRetentionPeriod,
                crate::template::resolve(v, &b)?,
            );
        }
        if let Some(v) = dlq_props.get("KmsMasterKeyId") {
            req = req
                .attributes(QueueAttributeName::KmsMasterKeyId, crate::template::resolve(v, &b)?);
        }
        let dlq = req.send().await?.queue_url().unwrap_or_default().to_owned();
        b.refs.insert("DeadLetterQueue".into(), dlq.clone());
        b.atts.insert("DeadLetterQueue.Arn".into(), queue_arn(&sqs, &dlq).await?);

        let events = aws_sdk_eventbridge::Client::new(&home);
        let mut rules = Vec::new();
        for rule in template.rules()? {
            let id = format!("{name}-{}", rule.name.replace('.', "-"));
            let bus = if rule.custom_bus { bus_name.as_str() } else { "default" };
            let queue_url = rule_queue(&events, &sqs, bus, &id, &rule.pattern).await?;
            rules.push(RuleQueue { rule, queue_url });
        }
        let public_events_queue = rule_queue(
            &events,
            &sqs,
            &bus_name,
            &format!("{name}-public-events"),
            &serde_json::json!({"source": ["baton.codepipeline"]}),
        )
        .await?;

        let subscribe = |topic: String, queue: String| {
            let (sns, sqs) = (sns.clone(), sqs.clone());
            async move {
                let url = sqs
                    .create_queue()
                    .queue_name(queue)
                    .send()
                    .await?
                    .queue_url()
                    .unwrap_or_default()
                    .to_owned();
                let arn = queue_arn(&sqs, &url).await?;
                sns.subscribe().topic_arn(topic).protocol("sqs").endpoint(arn).send().await?;
                anyhow::Ok(url)
            }
        };
        let topic = |id: &str| topics.get(id).cloned().ok_or_else(|| anyhow!("no topic {id}"));
        let approval_notices_queue =
            subscribe(topic("ApprovalTopic")?, format!("{name}-approval-notices")).await?;
        let failure_notices_queue =
            subscribe(topic("FailureTopic")?, format!("{name}-failure-notices")).await?;

        // The functions' environment exactly as the template gives it, plus the extra regions'
        // buckets and keys the way infra/README.md says to add them.
        let mut env = template.function_environment(&b)?;
        for (var, map) in
            [("BATON_ARTIFACT_BUCKETS", &buckets), ("BATON_ARTIFACT_KEYS", &keys_by_region)]
        {
            let extra: Vec<String> =
                EXTRA_REGIONS.iter().map(|r| format!("{r}={}", map[*r])).collect();
            let value = env.get(var).cloned().ok_or_else(|| anyhow!("template sets no {var}"))?;
            env.insert(var.into(), format!("{value},{}", extra.join(",")));
        }

        // What the roles' statements name (see `iam`); moto never sees these ARNs checked
        // except the S3, SQS and STS ones.
        let arn = |service: &str, rest: String| {
            format!("arn:aws:{service}:{HOME}:{PIPELINE_ACCOUNT}:{rest}")
        };
        b.atts.insert("ExecutionsTable.Arn".into(), arn("dynamodb", format!("table/{table}")));
        if let Some(s) = &stream_arn {
            b.atts.insert("ExecutionsTable.StreamArn".into(), s.clone());
        }
        b.atts.insert("EventsBus.Arn".into(), arn("events", format!("event-bus/{bus_name}")));
        // What the functions' own environments name: their roles as the harness makes them
        // (`iam`), and their URLs as Lambda names them (only ever shown, never fetched).
        for f in template.functions()? {
            let role = format!("arn:aws:iam::{PIPELINE_ACCOUNT}:role/{name}-{}", f.logical_id);
            b.atts.insert(format!("{}Role.Arn", f.logical_id), role);
            let url = format!("https://{}.lambda-url.{HOME}.on.aws/", f.logical_id.to_lowercase());
            b.atts.insert(format!("{}Url.FunctionUrl", f.logical_id), url);
        }
        // The repository hosts' webhook secrets the trigger reads (WebhookSecrets).
        let secret = aws_sdk_secretsmanager::Client::new(&home)
            .create_secret()
            .name(format!("{name}-webhooks"))
            .secret_string(serde_json::json!({"github_secret": GITHUB_WEBHOOK_SECRET}).to_string())
            .send()
            .await?;
        let secret = secret.arn().ok_or_else(|| anyhow!("the webhook secret has no ARN"))?;
        b.refs.insert("WebhookSecrets".into(), secret.to_owned());
        template.bind_defaults(&mut b);

        Ok(Self {
            bindings: b,
            endpoint: endpoint.to_owned(),
            keys,
            table,
            bus: bus_name,
            failure_topic: topic("FailureTopic")?,
            approval_topic: topic("ApprovalTopic")?,
            dead_letter_queue: dlq,
            buckets,
            keys_by_region,
            rules,
            stream_arn,
            stream_sources: template.stream_sources()?,
            public_events_queue,
            approval_notices_queue,
            failure_notices_queue,
            env,
            name,
        })
    }

    /// The pipeline account's SDK configuration in `region`, straight to moto.
    pub async fn sdk(&self, region: &str) -> SdkConfig {
        self.keys.sdk(&self.endpoint, region).await
    }
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<String> {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?;
    attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| anyhow!("queue {url} has no ARN"))
}

/// A rule on `bus` with `pattern`, targeting a new queue of the same name; returns the URL.
async fn rule_queue(
    events: &aws_sdk_eventbridge::Client,
    sqs: &aws_sdk_sqs::Client,
    bus: &str,
    name: &str,
    pattern: &serde_json::Value,
) -> Result<String> {
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await?
        .queue_url()
        .unwrap_or_default()
        .to_owned();
    let arn = queue_arn(sqs, &url).await?;
    events
        .put_rule()
        .name(name)
        .event_bus_name(bus)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .with_context(|| format!("PutRule {name}"))?;
    let target = aws_sdk_eventbridge::types::Target::builder().id("queue").arn(arn).build()?;
    events.put_targets().rule(name).event_bus_name(bus).targets(target).send().await?;
    Ok(url)
}

async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    template: &Template,
    table: &str,
) -> Result<()> {
    let p = template.properties("ExecutionsTable")?;
    let list =
        |v: &Yaml, k: &str| v.get(k).and_then(Yaml::as_sequence).cloned().unwrap_or_default();
    let text = |v: &Yaml, k: &str| v.get(k).and_then(Yaml::as_str).unwrap_or_default().to_owned();
    // A `KeySchema` of the table or of an index.
    let key_schema = |v: &Yaml| -> Result<Vec<KeySchemaElement>> {
        list(v, "KeySchema")
            .iter()
            .map(|k| {
                let element = KeySchemaElement::builder()
                    .attribute_name(text(k, "AttributeName"))
                    .key_type(KeyType::from(text(k, "KeyType").as_str()));
                Ok(element.build()?)
            })
            .collect()
    };
    let mut req = client.create_table().table_name(table);
    for a in list(p, "AttributeDefinitions") {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(text(&a, "AttributeName"))
                .attribute_type(ScalarAttributeType::from(text(&a, "AttributeType").as_str()))
                .build()?,
        );
    }
    req = req.set_key_schema(Some(key_schema(p)?));
    for index in list(p, "GlobalSecondaryIndexes") {
        let gsi = GlobalSecondaryIndex::builder().index_name(text(&index, "IndexName"));
        let mut gsi = gsi.set_key_schema(Some(key_schema(&index)?));
        let projection = index.get("Projection").map(|p| text(p, "ProjectionType"));
        let projection = ProjectionType::from(projection.unwrap_or_default().as_str());
        gsi = gsi.projection(Projection::builder().projection_type(projection).build());
        req = req.global_secondary_indexes(gsi.build()?);
    }
    if let Some(mode) = p.get("BillingMode").and_then(Yaml::as_str) {
        req = req.billing_mode(BillingMode::from(mode));
    }
    if let Some(view) =
        p.get("StreamSpecification").and_then(|s| s.get("StreamViewType")).and_then(Yaml::as_str)
    {
        req = req.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view))
                .build()?,
        );
    }
    if let Some(sse) =
        p.get("SSESpecification").and_then(|s| s.get("SSEEnabled")).and_then(Yaml::as_bool)
    {
        req = req.sse_specification(SseSpecification::builder().enabled(sse).build());
    }
    req.send().await.with_context(|| format!("CreateTable {table}"))?;
    if let Some(ttl) = p.get("TimeToLiveSpecification") {
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(text(ttl, "AttributeName"))
                    .enabled(ttl.get("Enabled").and_then(Yaml::as_bool).unwrap_or(false))
                    .build()?,
            )
            .send()
            .await?;
    }
    Ok(())
}

/// The region's artifact key, with the template's description, rotation, policy and alias.
async fn create_key(
    sdk: &SdkConfig,
    template: &Template,
    b: &Bindings,
) -> Result<(String, String)> {
    let kms = aws_sdk_kms::Client::new(sdk);
    let p = template.properties("ArtifactKey")?;
    let mut req = kms.create_key();
    if let Some(d) = p.get("Description").and_then(Yaml::as_str) {
        req = req.description(d);
    }
    if let Some(policy) = p.get("KeyPolicy") {
        let policy = template.evaluate(policy, b)?.ok_or_else(|| anyhow!("no KeyPolicy"))?;
        req = req.policy(policy.to_string());
    }
    let meta = req.send().await?.key_metadata.ok_or_else(|| anyhow!("CreateKey gave no key"))?;
    let (id, arn) = (meta.key_id().to_owned(), meta.arn().unwrap_or_default().to_owned());
    if p.get("EnableKeyRotation").and_then(Yaml::as_bool) == Some(true) {
        kms.enable_key_rotation().key_id(&id).send().await?;
    }
    if let Some(alias) = template.properties("ArtifactKeyAlias")?.get("AliasName") {
        kms.create_alias()
            .alias_name(crate::template::resolve(alias, b)?)
            .target_key_id(&id)
            .send()
            .await?;
    }
    Ok((id, arn))
}

/// An artifact bucket with the template's default encryption (the region's key) and
/// versioning. The bucket policy is left out: moto ignores policy conditions, so its
/// `aws:SecureTransport` deny would refuse every request on plain-HTTP loopback.
async fn create_bucket(
    sdk: &SdkConfig,
    template: &Template,
    b: &Bindings,
    bucket: &str,
    region: &str,
) -> Result<()> {
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(sdk).force_path_style(true).build(),
    );
    let mut req = s3.create_bucket().bucket(bucket);
    if region != HOME {
        req = req.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region))
                .build(),
        );
    }
    req.send().await.with_context(|| format!("CreateBucket {bucket}"))?;
    let p = template.properties("ArtifactBucket")?;
    let by_default = p
        .get("BucketEncryption")
        .and_then(|e| e.get("ServerSideEncryptionConfiguration"))
        .and_then(Yaml::as_sequence)
        .and_then(|s| s.first())
        .and_then(|r| r.get("ServerSideEncryptionByDefault"));
    if let Some(d) = by_default {
        let key = d.get("KMSMasterKeyID").map(|k| crate::template::resolve(k, b)).transpose()?;
        let algorithm = d.get("SSEAlgorithm").and_then(Yaml::as_str).unwrap_or("aws:kms");
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(
                ServerSideEncryptionByDefault::builder()
                    .sse_algorithm(ServerSideEncryption::from(algorithm))
                    .set_kms_master_key_id(key)
                    .build()?,
            )
            .bucket_key_enabled(true)
            .build();
        s3.put_bucket_encryption()
            .bucket(bucket)
            .server_side_encryption_configuration(
                ServerSideEncryptionConfiguration::builder().rules(rule).build()?,
            )
            .send()
            .await?;
    }
    if p.get("VersioningConfiguration").and_then(|v| v.get("Status")).and_then(Yaml::as_str)
        == Some("Enabled")
    {
        s3.put_bucket_versioning()
            .bucket(bucket)
            .versioning_configuration(
                VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build(),
            )
            .send()
            .await?;
    }
    Ok(())
}
