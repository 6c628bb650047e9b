//! IAM enforced: a moto of the scenario's own whose policy checks are switched on once the
//! stack stands, with each function's role, the job artifacts role and the target account's
//! deploy role created from the statements `template.yaml` and `infra/target-account.yaml`
//! declare; and the check that each statement is needed by a call a scenario made.
//!
//! moto (5.2) evaluates less than IAM does, so the statements it is given are adjusted
//! ([`for_moto`]), and the adjustments only ever widen what is allowed, never narrow it:
//! - it checks resources for S3, SQS, STS and IAM only and evaluates every other service's call
//!   against `*`, so those statements get `Resource: "*"` (their actions are still checked);
//! - it evaluates no condition key, so `Condition` is dropped; a statement that only grants
//!   through another service (`kms:ViaService`) is left out, since moto's SQS and Secrets
//!   Manager never call KMS as the caller;
//! - it checks HeadBucket as `s3:HeadBucket`, which IAM allows by `s3:ListBucket`, and Lambda's
//!   Invoke as `lambda:Invoke`, which IAM allows by `lambda:InvokeFunction`: a statement
//!   granting the one is given the other too;
//! - trust policies compare the caller's exact ARN and fail on a `Service` principal, so every
//!   role here trusts `*`: who may assume a role is checked by `template_trust_checks` in the
//!   tests instead, on the template itself.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::{Value as Json, json};
use serde_norway::Value as Yaml;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::proxy::Call;
use crate::stack::{AccountKeys, HOME, Stack};
use crate::template::{Bindings, Function, Template};

/// Services whose calls moto checks against their resource; the rest against `*`.
const RESOURCE_CHECKED: [&str; 4] = ["s3", "sqs", "sts", "iam"];

/// A moto server of one scenario, killed with it.
pub struct EnforcedMoto {
    _child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl EnforcedMoto {
    /// Starts `BATON_TEST_MOTO_SERVER` (what `scripts/emulators.sh env` exports) on a free
    /// loopback port, with IAM not yet enforced; its log is `<dir>/moto-<port>.log`.
    pub async fn start(dir: &std::path::Path) -> Result<Self> {
        let bin = std::env::var("BATON_TEST_MOTO_SERVER").map_err(|_| {
            anyhow!("BATON_TEST_MOTO_SERVER is not set: run with `make test`, or export what `bash scripts/emulators.sh env` prints")
        })?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        std::fs::create_dir_all(dir)?;
        let log = &dir.join(format!("moto-{port}.log"));
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {bin}"))?;
        for _ in 0..300 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(Self { _child: child, endpoint: format!("http://127.0.0.1:{port}") });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("moto did not come up on port {port}; see {}", log.display())
    }

    /// From now on every request is authenticated and checked against its caller's policies.
    pub async fn enforce(&self) -> Result<()> {
        self.moto_api("reset-auth", "0").await
    }

    /// Sets moto's configuration (`/moto-api/config`), such as running state machines.
    pub async fn configure(&self, config: &Json) -> Result<()> {
        self.moto_api("config", &config.to_string()).await
    }

    async fn moto_api(&self, path: &str, body: &str) -> Result<()> {
        let host = self.endpoint.trim_start_matches("http://");
        let mut s = TcpStream::connect(host).await?;
        let request = format!(
            "POST /moto-api/{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(request.as_bytes()).await?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).await?;
        ensure!(answer.starts_with("HTTP/1.1 2") || answer.starts_with("HTTP/1.0 2"), "{answer}");
        Ok(())
    }
}

/// A role as its template declares it: the statements of all its policies, resolved.
#[derive(Debug, Clone)]
pub struct DeclaredRole {
    /// `ActionWorkerFunction`, `DeployRole`...: the resource that holds or is the role.
    pub holder: String,
    /// The role's name on moto.
    pub name: String,
    /// The account it lives in.
    pub account: String,
    /// The statements exactly as declared (intrinsics resolved).
    pub statements: Vec<Json>,
}

impl DeclaredRole {
    /// `arn:aws:iam::ACCOUNT:role/NAME`.
    pub fn arn(&self) -> String {
        format!("arn:aws:iam::{}:role/{}", self.account, self.name)
    }

    /// A statement's name for reports: `Holder/Sid` (or its position).
    pub fn statement_name(&self, i: usize) -> String {
        let sid = self.statements[i]["Sid"].as_str().map_or_else(|| format!("#{i}"), str::to_owned);
        format!("{}/{sid}", self.holder)
    }
}

/// A scenario's IAM: its moto, and every declared role with the credentials handed out for it.
pub struct Iam {
    #[allow(missing_docs)]
    pub moto: EnforcedMoto,
    #[allow(missing_docs)]
    pub roles: Vec<(DeclaredRole, AccountKeys)>,
    /// The pipeline's role, which is its user's and not Baton's: its calls are decided as the
    /// others', and it is not part of the statement-mutation check.
    pub pipeline_role: DeclaredRole,
}

/// Creates, on `moto` before enforcement, the harness's administrator roles and every role the
/// template and `infra/target-account.yaml` declare, each with its declared statements.
pub async fn declared_roles(
    template: &Template,
    functions: &[Function],
    stack: &Stack,
    moto: EnforcedMoto,
) -> Result<Iam> {
    let endpoint = moto.endpoint.clone();
    // The harness's keys are lent for these roles; made administrators, they stay valid.
    make_admin(&endpoint, &stack.keys, "baton-functions").await?;
    let target_admin =
        crate::stack::assume(&endpoint, crate::stack::TARGET_ADMIN, Some(&stack.keys)).await?;
    make_admin(&endpoint, &target_admin, "baton-e2e-admin").await?;

    let b = &stack.bindings;
    let region_template = Template::load(&crate::workspace().join("infra/region.yaml"))?;
    let mut roles = Vec::new();
    for f in functions {
        let name = format!("{}-{}", stack.name, f.logical_id);
        let mut statements = declared_statements(template, &f.logical_id, b)?;
        // The extra regions' buckets (infra/region.yaml) grant the worker in their policies.
        let arn = format!("arn:aws:{}:role/{name}", crate::stack::PIPELINE_ACCOUNT);
        for region in crate::stack::EXTRA_REGIONS {
            let mut rb = Bindings::default();
            let bucket = format!("arn:aws:s3:::{}", stack.buckets[region]);
            rb.refs.insert("PipelineWorkerRoleArn".into(), arn.clone());
            rb.refs.insert("TargetAccountIds".into(), crate::stack::TARGET_ACCOUNT.into());
            rb.refs.insert("AWS::Partition".into(), "aws".into());
            rb.atts.insert("ArtifactBucket.Arn".into(), bucket);
            rb.atts.insert("ArtifactKey.Arn".into(), stack.keys_by_region[region].clone());
            region_template.bind_defaults(&mut rb);
            let label = format!("region.yaml {region}");
            let grants =
                bucket_grants(&region_template, "ArtifactBucketPolicy", &rb, &arn, &label)?;
            if f.logical_id == "ActionWorkerFunction" {
                statements.extend(grants);
            }
        }
        let role = DeclaredRole {
            holder: f.logical_id.clone(),
            name,
            account: crate::stack::PIPELINE_ACCOUNT.into(),
            statements,
        };
        let keys = create_and_assume(&endpoint, &role, &stack.keys).await?;
        roles.push((role, keys));
    }
    let job_role = b.atts.get("JobArtifactsRole.Arn").cloned().unwrap_or_default();
    let role = DeclaredRole {
        holder: "JobArtifactsRole".into(),
        name: job_role.rsplit('/').next().unwrap_or_default().to_owned(),
        account: crate::stack::PIPELINE_ACCOUNT.into(),
        statements: declared_statements(template, "JobArtifactsRole", b)?,
    };
    let keys = create_and_assume(&endpoint, &role, &stack.keys).await?;
    roles.push((role, keys));

    // The pipeline's role belongs to its user, as a CodePipeline service role does: what this
    // scenarios' actions without a roleArn need (source, artifacts, builds, the site, functions).
    let pipeline_role = crate::scenario::pipeline_role(stack);
    let role = DeclaredRole {
        holder: "PipelineRole".into(),
        name: pipeline_role.rsplit('/').next().unwrap_or_default().to_owned(),
        account: crate::stack::PIPELINE_ACCOUNT.into(),
        statements: vec![serde_json::json!({"Effect": "Allow", "Resource": "*", "Action": [
            "s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:ListBucket",
            "s3:GetBucketVersioning", "kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt",
            "codebuild:StartBuild", "codebuild:BatchGetBuilds", "codebuild:StopBuild",
            "lambda:InvokeFunction", "codecommit:GetBranch", "codecommit:GetCommit",
            "codecommit:GetFolder", "codecommit:GetBlob"]})],
    };
    create_and_assume(&endpoint, &role, &stack.keys).await?;
    let pipeline_role = role;

    // The target account's deploy role, deployed from infra/target-account.yaml with the
    // parameters infra/README.md gives.
    let target = Template::load(&crate::workspace().join("infra/target-account.yaml"))?;
    let worker = roles
        .iter()
        .find(|(r, _)| r.holder == "ActionWorkerFunction")
        .map(|(r, _)| r.arn())
        .ok_or_else(|| anyhow!("no ActionWorkerFunction in template.yaml"))?;
    let mut tb = Bindings::default();
    let buckets: Vec<String> =
        stack.buckets.values().map(|b| format!("arn:aws:s3:::{b}")).collect();
    let keys: Vec<String> = stack.keys_by_region.values().cloned().collect();
    for (k, v) in [
        ("AWS::AccountId", crate::stack::TARGET_ACCOUNT.to_owned()),
        ("AWS::Region", "eu-west-1".to_owned()),
        ("AWS::Partition", "aws".to_owned()),
        ("PipelineAccountId", crate::stack::PIPELINE_ACCOUNT.to_owned()),
        ("PipelineWorkerRoleArn", worker),
        ("ArtifactBucketArns", buckets.join(",")),
        ("ArtifactKeyArns", keys.join(",")),
    ] {
        tb.refs.insert(k.into(), v);
    }
    target.bind_defaults(&mut tb);
    let deploy_name = tb.refs.get("DeployRoleName").cloned().unwrap_or_default();
    // The role's name as the template gives it (`${DeployRoleName}-cloudformation`).
    tb.atts.insert(
        "CloudFormationExecutionRole.Arn".into(),
        format!("arn:aws:iam::{}:role/{deploy_name}-cloudformation", crate::stack::TARGET_ACCOUNT),
    );
    let role = DeclaredRole {
        holder: "DeployRole".into(),
        name: deploy_name,
        account: crate::stack::TARGET_ACCOUNT.into(),
        statements: declared_statements(&target, "DeployRole", &tb)?,
    };
    let keys = create_and_assume(&endpoint, &role, &target_admin).await?;
    roles.push((role, keys));
    Ok(Iam { moto, roles, pipeline_role })
}

/// The statements of the role of `holder`: a SAM function's `Policies` and every
/// `AWS::IAM::RolePolicy` on its generated role (`<holder>Role`), or an `AWS::IAM::Role`'s
/// `Policies`.
pub fn declared_statements(t: &Template, holder: &str, b: &Bindings) -> Result<Vec<Json>> {
    let resource = t.resource(holder)?;
    let kind = resource.get("Type").and_then(Yaml::as_str).unwrap_or_default();
    let policies = t.properties(holder)?.get("Policies").and_then(Yaml::as_sequence);
    let mut documents = Vec::new();
    for p in policies.into_iter().flatten() {
        match kind {
            "AWS::Serverless::Function" if p.get("Statement").is_some() => documents.push(p),
            "AWS::IAM::Role" => documents.push(
                p.get("PolicyDocument")
                    .ok_or_else(|| anyhow!("{holder}: a policy without PolicyDocument"))?,
            ),
            _ => bail!("{holder}: a policy this harness does not model: {p:?}"),
        }
    }
    let generated = format!("{holder}Role");
    for id in t.resources_of("AWS::IAM::RolePolicy") {
        let p = t.properties(&id)?;
        let on = p.get("RoleName").map(|r| crate::template::resolve(r, &role_refs(&generated)));
        if matches!(on, Some(Ok(name)) if name == generated) {
            documents
                .push(p.get("PolicyDocument").ok_or_else(|| anyhow!("{id}: no PolicyDocument"))?);
        }
    }
    let mut statements = Vec::new();
    for d in documents {
        let s =
            d.get("Statement").ok_or_else(|| anyhow!("{holder}: a policy without Statement"))?;
        match t.evaluate(s, b).with_context(|| format!("resolving {holder}'s policies"))? {
            Some(Json::Array(items)) => statements.extend(items),
            Some(one) => statements.push(one),
            None => {}
        }
    }
    Ok(statements)
}

/// The Allow statements of the bucket policy `bucket_policy` (logical id) of `t` that name
/// `principal`, as identity statements: moto evaluates no resource-based policy, so what a
/// bucket policy grants a role is given to the role itself (named `<label>:<Sid>`).
pub fn bucket_grants(
    t: &Template,
    bucket_policy: &str,
    b: &Bindings,
    principal: &str,
    label: &str,
) -> Result<Vec<Json>> {
    let document = t
        .properties(bucket_policy)?
        .get("PolicyDocument")
        .ok_or_else(|| anyhow!("{bucket_policy}: no PolicyDocument"))?;
    let statements = match document.get("Statement").map(|s| t.evaluate(s, b)).transpose()? {
        Some(Some(Json::Array(items))) => items,
        other => bail!("{bucket_policy}: unexpected Statement {other:?}"),
    };
    Ok(statements
        .into_iter()
        .filter(|s| s["Effect"] == "Allow" && s["Principal"]["AWS"] == principal)
        .map(|mut s| {
            let sid = s["Sid"].as_str().unwrap_or_default().to_owned();
            if let Some(o) = s.as_object_mut() {
                o.remove("Principal");
            }
            s["Sid"] = json!(format!("{label}:{sid}"));
            s
        })
        .collect())
}

/// Bindings under which `!Ref <generated role>` resolves to its own name.
fn role_refs(generated: &str) -> Bindings {
    let mut b = Bindings::default();
    b.refs.insert(generated.to_owned(), generated.to_owned());
    b
}

/// `statement` as moto can evaluate it (see the module's comment), or `None` when it only
/// grants through a service moto does not route through the caller.
pub fn for_moto(statement: &Json) -> Option<Json> {
    let mut s = statement.clone();
    let condition = s.as_object_mut()?.remove("Condition");
    if condition.is_some_and(|c| c.to_string().contains("kms:ViaService")) {
        return None;
    }
    let widen = actions(&s).iter().any(|a| {
        let service = a.split(':').next().unwrap_or_default();
        !RESOURCE_CHECKED.contains(&service)
    });
    if widen {
        s["Resource"] = json!("*");
    }
    // moto checks some operations as actions IAM does not have: HeadBucket as `s3:HeadBucket`
    // (IAM: `s3:ListBucket`) and Lambda's Invoke as `lambda:Invoke` (IAM:
    // `lambda:InvokeFunction`).
    for (iam, moto) in
        [("s3:ListBucket", "s3:HeadBucket"), ("lambda:InvokeFunction", "lambda:Invoke")]
    {
        if actions(&s).iter().any(|a| a == iam) {
            let mut with_moto = actions(&s);
            with_moto.push(moto.into());
            s["Action"] = json!(with_moto);
        }
    }
    Some(s)
}

fn actions(statement: &Json) -> Vec<String> {
    match &statement["Action"] {
        Json::String(a) => vec![a.clone()],
        Json::Array(items) => items.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

/// A trust policy letting anyone assume the role (see the module's comment).
fn trusting_anyone() -> Json {
    json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]})
}

/// Creates `role` on moto (trusting `*`, see the module's comment) with its statements
/// adjusted for moto, and returns credentials of it.
pub async fn create_and_assume(
    endpoint: &str,
    role: &DeclaredRole,
    admin: &AccountKeys,
) -> Result<AccountKeys> {
    let iam = aws_sdk_iam::Client::new(&admin.sdk(endpoint, HOME).await);
    let trust = trusting_anyone();
    iam.create_role()
        .role_name(&role.name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .with_context(|| format!("creating role {}", role.name))?;
    let statements: Vec<Json> = role.statements.iter().filter_map(for_moto).collect();
    if !statements.is_empty() {
        let document = json!({"Version": "2012-10-17", "Statement": statements});
        iam.put_role_policy()
            .role_name(&role.name)
            .policy_name("declared")
            .policy_document(document.to_string())
            .send()
            .await
            .with_context(|| format!("putting {}'s policy", role.name))?;
    }
    crate::stack::assume(endpoint, &role.arn(), Some(admin)).await
}

/// Makes the role behind `keys` (lent by moto before enforcement) an administrator of its
/// account: the harness's own credentials.
pub async fn make_admin(endpoint: &str, keys: &AccountKeys, role_name: &str) -> Result<()> {
    let iam = aws_sdk_iam::Client::new(&keys.sdk(endpoint, HOME).await);
    let trust = trusting_anyone();
    iam.create_role()
        .role_name(role_name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await?;
    let all = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    iam.put_role_policy()
        .role_name(role_name)
        .policy_name("harness")
        .policy_document(all.to_string())
        .send()
        .await?;
    Ok(())
}

/// The IAM action moto checks for `call`.
pub fn action_of(call: &Call) -> String {
    let op = match (call.service.as_str(), call.operation.as_str()) {
        ("s3", "HeadObject") => "GetObject",
        ("s3", "ListObjects" | "HeadBucket") => "ListBucket",
        (
            "s3",
            "CopyObject" | "UploadPart" | "CreateMultipartUpload" | "CompleteMultipartUpload",
        ) => "PutObject",
        ("lambda", "Invoke") => "InvokeFunction",
        (_, op) => op,
    };
    let service = if call.service == "monitoring" { "cloudwatch" } else { call.service.as_str() };
    format!("{service}:{op}")
}

/// IAM's wildcard match of `value` against `pattern`, as Baton matches bucket and role names.
pub use baton::adapters::aws::s3_artifacts::wildcard_match as matches;

fn any_matches(element: &Json, value: &str) -> bool {
    match element {
        Json::String(p) => matches(p, value),
        Json::Array(items) => items.iter().any(|p| p.as_str().is_some_and(|p| matches(p, value))),
        _ => false,
    }
}

/// Whether `statement` (as moto is given it) allows `call`, as moto decides it.
pub fn allows(statement: &Json, call: &Call) -> bool {
    statement["Effect"] == "Allow"
        && any_matches(&statement["Action"], &action_of(call))
        && any_matches(&statement["Resource"], &call.resource)
}

/// Whether `statement` as declared allows `call`, its resource and its `kms:ViaService` or
/// `…:PassedToService` condition evaluated: the harness's own decision for a call another
/// service makes as the caller (KMS) or a role handed to one (`iam:PassRole`), which moto
/// cannot make.
pub fn allows_as_declared(statement: &Json, call: &Call) -> bool {
    allows(statement, call) && conditions_hold(&statement["Condition"], call)
}

/// Every condition of a statement holds; a condition key other than those two never does
/// here, so a statement relying on one is not taken for granted.
fn conditions_hold(condition: &Json, call: &Call) -> bool {
    let Some(operators) = condition.as_object() else { return true };
    operators.iter().all(|(operator, keys)| {
        keys.as_object().is_some_and(|keys| {
            keys.iter().all(|(key, expected)| {
                let decided = key == "kms:ViaService" || key.ends_with(":PassedToService");
                let Some(actual) = call.via.as_deref().filter(|_| decided) else {
                    return false;
                };
                match operator.as_str() {
                    "StringEquals" => {
                        expected == actual
                            || expected.as_array().is_some_and(|a| a.iter().any(|e| e == actual))
                    }
                    "StringLike" => any_matches(expected, actual),
                    _ => false,
                }
            })
        })
    })
}

/// For each statement of `role`, the first call (with the role's credentials) that only it
/// allows: removing it would have that call refused. A call the harness decided (`via`) is
/// weighed against the statements as declared, the others as moto was given them.
pub fn needed_by(role: &DeclaredRole, calls: &[&Call]) -> BTreeMap<usize, String> {
    let given: Vec<Option<Json>> = role.statements.iter().map(for_moto).collect();
    let mut needed = BTreeMap::new();
    for call in calls {
        let allowing: Vec<usize> = given
            .iter()
            .zip(&role.statements)
            .enumerate()
            .filter(|(_, (given, declared))| match call.via {
                Some(_) => allows_as_declared(declared, call),
                None => given.as_ref().is_some_and(|s| allows(s, call)),
            })
            .map(|(i, _)| i)
            .collect();
        if let [only] = allowing[..] {
            needed.entry(only).or_insert_with(|| {
                format!(
                    "{} {} {} in {}",
                    call.function,
                    action_of(call),
                    call.resource,
                    call.region
                )
            });
        }
    }
    needed
}
