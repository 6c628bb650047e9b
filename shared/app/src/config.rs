//! Configuration of the Lambda functions, read once per cold start from `BATON_*` variables
//! (set by `template.yaml`). Every problem is reported at once.

use std::collections::BTreeMap;
use std::fmt;

/// What the functions need to find their AWS resources.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// The DynamoDB table.
    pub table: String,
    /// The EventBridge bus.
    pub bus: String,
    /// Artifact bucket by region.
    pub artifact_buckets: BTreeMap<String, String>,
    /// Artifact KMS key ARN by region.
    pub artifact_keys: BTreeMap<String, String>,
    /// SNS topic for failure notices.
    pub failure_topic: String,
    /// SNS topic for approval notices.
    pub approval_topic: String,
    /// SQS queue URL where malformed events are kept.
    pub dead_letter_queue: Option<String>,
    /// Days finished executions are kept.
    pub retention_days: u32,
    /// The approval endpoint (the approval pages function's URL) that links in notices use.
    pub approval_url: Option<String>,
    /// The account pipelines live in (their ARNs), `BATON_ACCOUNT_ID`.
    pub account_id: String,
    /// The role job workers' artifact credentials are cut from (`BATON_JOB_ROLE_ARN`): with
    /// it, custom action types and `AWS/Invoke/Lambda` run; without, they are refused at start.
    pub job_role_arn: Option<String>,
    /// Whether actions and rules without a `roleArn` run as their pipeline's `roleArn`, as
    /// CodePipeline runs them as its service role (`BATON_ASSUME_PIPELINE_ROLES`, default
    /// `true`); `false` runs them as the worker's own role.
    pub assume_pipeline_roles: bool,
    /// The names (IAM wildcards) of the buckets pipelines may declare as their artifact stores
    /// (`BATON_DECLARED_ARTIFACT_BUCKETS`); empty keeps every pipeline's artifacts in the
    /// deployment's own buckets.
    pub declared_artifact_buckets: String,
    /// The CodeBuild project `Commands` actions run as builds of (`BATON_COMMANDS_PROJECT`);
    /// without it they are refused at start.
    pub commands_project: Option<String>,
    /// The Secrets Manager secret webhook deliveries are verified with
    /// (`BATON_WEBHOOK_SECRETS`: its ARN; see [`secrets_from_json`](crate::service::webhooks::secrets_from_json)); without it
    /// the trigger's URL accepts no delivery.
    pub webhook_secrets: Option<String>,
    /// The trigger function's URL (`BATON_WEBHOOK_URL`), which CodePipeline's webhooks (GitHub
    /// v1 sources) are delivered to, as `<url>trigger?t=...`.
    pub webhook_url: Option<String>,
    /// GitHub's API (`BATON_GITHUB_API_URL`, default api.github.com), which
    /// RegisterWebhookWithThirdParty calls.
    pub github_api: Option<String>,
    /// The action worker's role (`BATON_WORKER_ROLE_ARN`): with it, and pipeline roles assumed,
    /// CreatePipeline and UpdatePipeline refuse a `roleArn` that does not trust it.
    pub worker_role_arn: Option<String>,
    /// The names (IAM wildcards) of the pipeline roles the worker may assume
    /// (`BATON_PIPELINE_ROLE_PATTERN`, `template.yaml`'s `PipelineRoleNamePattern`).
    pub pipeline_role_pattern: String,
}

impl Config {
    /// Each region's artifact bucket, with its KMS key ARN (empty where none is set).
    pub fn artifact_places(&self) -> BTreeMap<String, (String, String)> {
        self.artifact_buckets
            .iter()
            .map(|(region, bucket)| {
                let key = self.artifact_keys.get(region).cloned().unwrap_or_default();
                (region.clone(), (bucket.clone(), key))
            })
            .collect()
    }
}

impl fmt::Debug for Config {
    // Nothing here is secret today; Debug is written out so a future secret is not printed by
    // accident through a derive.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("table", &self.table)
            .field("bus", &self.bus)
            .field("artifact_buckets", &self.artifact_buckets)
            .field("retention_days", &self.retention_days)
            .finish_non_exhaustive()
    }
}

/// Every configuration problem, as one message: `missing BATON_TABLE; BATON_ARTIFACT_BUCKETS is
/// not region=bucket`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    /// Reads the process environment.
    ///
    /// # Errors
    /// Every missing or malformed variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads variables through `lookup`, so tests pass a map instead of the environment.
    ///
    /// # Errors
    /// Every missing or malformed variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut required = |name: &str| match lookup(name).filter(|v| !v.trim().is_empty()) {
            Some(v) => v,
            None => {
                problems.push(format!("missing {name}"));
                String::new()
            }
        };
        let table = required("BATON_TABLE");
        let bus = required("BATON_BUS");
        let buckets = required("BATON_ARTIFACT_BUCKETS");
        let keys = required("BATON_ARTIFACT_KEYS");
        let failure_topic = required("BATON_FAILURE_TOPIC");
        let approval_topic = required("BATON_APPROVAL_TOPIC");
        let artifact_buckets =
            pairs("BATON_ARTIFACT_BUCKETS", &buckets, "region=bucket", &mut problems);
        let artifact_keys = pairs("BATON_ARTIFACT_KEYS", &keys, "region=key-arn", &mut problems);
        for region in artifact_buckets.keys() {
            if !buckets.is_empty() && !keys.is_empty() && !artifact_keys.contains_key(region) {
                problems.push(format!("BATON_ARTIFACT_KEYS has no key for region {region}"));
            }
        }
        let retention_days = match lookup("BATON_RETENTION_DAYS") {
            None => 365,
            Some(v) => v.trim().parse().unwrap_or_else(|_| {
                problems.push(format!("BATON_RETENTION_DAYS is not a number of days: {v}"));
                0
            }),
        };
        let assume_pipeline_roles = match lookup("BATON_ASSUME_PIPELINE_ROLES").as_deref() {
            None | Some("") | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                problems.push(format!("BATON_ASSUME_PIPELINE_ROLES is true or false, not {other}"));
                true
            }
        };
        if !problems.is_empty() {
            return Err(ConfigError(problems));
        }
        Ok(Self {
            table,
            bus,
            artifact_buckets,
            artifact_keys,
            failure_topic,
            approval_topic,
            dead_letter_queue: lookup("BATON_DEAD_LETTER_QUEUE").filter(|v| !v.is_empty()),
            retention_days,
            approval_url: lookup("BATON_APPROVAL_URL").filter(|v| !v.is_empty()),
            account_id: lookup("BATON_ACCOUNT_ID")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "000000000000".into()),
            job_role_arn: lookup("BATON_JOB_ROLE_ARN").filter(|v| !v.is_empty()),
            assume_pipeline_roles,
            declared_artifact_buckets: lookup("BATON_DECLARED_ARTIFACT_BUCKETS")
                .map(|v| v.trim().to_owned())
                .unwrap_or_default(),
            commands_project: lookup("BATON_COMMANDS_PROJECT").filter(|v| !v.trim().is_empty()),
            webhook_secrets: lookup("BATON_WEBHOOK_SECRETS").filter(|v| !v.trim().is_empty()),
            webhook_url: lookup("BATON_WEBHOOK_URL").filter(|v| !v.trim().is_empty()),
            github_api: lookup("BATON_GITHUB_API_URL").filter(|v| !v.trim().is_empty()),
            worker_role_arn: lookup("BATON_WORKER_ROLE_ARN").filter(|v| !v.trim().is_empty()),
            pipeline_role_pattern: lookup("BATON_PIPELINE_ROLE_PATTERN")
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "*".into()),
        })
    }
}

fn pairs(
    name: &str,
    value: &str,
    shape: &str,
    problems: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => {
                map.insert(k.to_string(), v.to_string());
            }
            _ => problems.push(format!("{name} is not {shape}: {part}")),
        }
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn a_full_environment_is_read() {
        let c = Config::from_lookup(lookup(&[
            ("BATON_TABLE", "t"),
            ("BATON_BUS", "b"),
            ("BATON_ARTIFACT_BUCKETS", "us-east-1=a, eu-west-1=b"),
            ("BATON_ARTIFACT_KEYS", "us-east-1=k1,eu-west-1=k2"),
            ("BATON_FAILURE_TOPIC", "f"),
            ("BATON_APPROVAL_TOPIC", "a"),
        ]))
        .unwrap();
        assert_eq!(c.artifact_buckets["eu-west-1"], "b");
        assert_eq!(c.retention_days, 365);
        assert!(c.assume_pipeline_roles, "as CodePipeline, unless told otherwise");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let e = Config::from_lookup(lookup(&[
            ("BATON_ARTIFACT_BUCKETS", "us-east-1"),
            ("BATON_ARTIFACT_KEYS", "eu-west-1=k"),
            ("BATON_RETENTION_DAYS", "soon"),
            ("BATON_ASSUME_PIPELINE_ROLES", "yes"),
        ]))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "missing BATON_TABLE; missing BATON_BUS; missing BATON_FAILURE_TOPIC; missing BATON_APPROVAL_TOPIC; \
             BATON_ARTIFACT_BUCKETS is not region=bucket: us-east-1; BATON_RETENTION_DAYS is not a number of days: soon; \
             BATON_ASSUME_PIPELINE_ROLES is true or false, not yes"
        );
    }

    #[test]
    fn a_bucket_region_without_a_key_is_a_problem() {
        let e = Config::from_lookup(lookup(&[
            ("BATON_TABLE", "t"),
            ("BATON_BUS", "b"),
            ("BATON_ARTIFACT_BUCKETS", "us-east-1=a,eu-west-1=b"),
            ("BATON_ARTIFACT_KEYS", "us-east-1=k1"),
            ("BATON_FAILURE_TOPIC", "f"),
            ("BATON_APPROVAL_TOPIC", "a"),
        ]))
        .unwrap_err();
        assert_eq!(e.0, vec!["BATON_ARTIFACT_KEYS has no key for region eu-west-1".to_string()]);
    }
}
