//! Whether the action worker can assume a pipeline's `roleArn`, read from IAM at create and
//! update: the role is in this account, its name is one the worker may assume
//! (`PipelineRoleNamePattern`, at the root or under `service-role/`), it exists, and its trust policy lets the worker's role in.
//!
//! Why read the trust policy instead of trying `AssumeRole`: the API function is not the
//! worker, and a role that trusts the worker need not trust the API. A condition in the trust
//! policy is not evaluated (it may name the session or a tag only a real call carries): a
//! statement that allows the worker under a condition counts as allowing it.

use async_trait::async_trait;
use aws_sdk_iam::error::DisplayErrorContext;
use baton_app::ports::roles::{PipelineRoles, not_assumable};
use serde_json::Value;
use tracing::warn;

use super::s3_artifacts::wildcard_match;

/// Checks pipeline roles against what the worker may assume.
pub struct IamPipelineRoles {
    iam: aws_sdk_iam::Client,
    account: String,
    pattern: String,
    worker_role: String,
}

impl IamPipelineRoles {
    /// Roles in `account` named like `pattern` (IAM wildcards), to be assumed by `worker_role`.
    pub fn new(
        iam: aws_sdk_iam::Client,
        account: impl Into<String>,
        pattern: impl Into<String>,
        worker_role: impl Into<String>,
    ) -> Self {
        Self {
            iam,
            account: account.into(),
            pattern: pattern.into(),
            worker_role: worker_role.into(),
        }
    }

    /// Why the worker could not assume `role_arn`; `None` when it can, or when IAM cannot say
    /// now (the worker's own attempt then decides).
    async fn why_not(&self, role_arn: &str) -> Option<String> {
        let Some((account, path_and_name)) = role_parts(role_arn) else {
            return Some("It is not the ARN of an IAM role.".into());
        };
        if account != self.account {
            return Some(format!(
                "Baton's action worker assumes pipeline roles in its own account, {}, only.",
                self.account
            ));
        }
        // The console makes service roles under the path `service-role/`; the template lets
        // the worker assume the pattern's names there as well as at the root.
        let unpathed = path_and_name.strip_prefix("service-role/").unwrap_or(path_and_name);
        if !wildcard_match(&self.pattern, unpathed) {
            return Some(format!(
                "Its name does not match the deployment's PipelineRoleNamePattern, {}, the roles the action worker may assume.",
                self.pattern
            ));
        }
        let name = path_and_name.rsplit('/').next().unwrap_or(path_and_name);
        let role = match self.iam.get_role().role_name(name).send().await {
            Ok(out) => out.role?,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_entity_exception()) => {
                return Some("The role does not exist.".into());
            }
            Err(e) => {
                warn!(role = role_arn, error = %DisplayErrorContext(&e), "cannot read the pipeline's role; not checked");
                return None;
            }
        };
        let policy = decode_policy(role.assume_role_policy_document()?);
        if policy.is_some_and(|p| trusts(&p, &self.worker_role, &self.account)) {
            None
        } else {
            Some(format!(
                "Its trust policy does not let the action worker's role, {}, assume it (see \"The pipeline's role\" in infra/README.md).",
                self.worker_role
            ))
        }
    }
}

#[async_trait]
impl PipelineRoles for IamPipelineRoles {
    async fn refusal(&self, role_arn: &str) -> Option<String> {
        let why = self.why_not(role_arn).await?;
        Some(not_assumable(role_arn, &why))
    }
}

/// `arn:<partition>:iam::<account>:role/<path/><name>` → (account, `<path/><name>`).
fn role_parts(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (arn_, _, service, region, account, resource) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let name = resource.strip_prefix("role/")?;
    (arn_ == "arn" && service == "iam" && region.is_empty() && !name.is_empty())
        .then_some((account, name))
}

/// A trust policy as IAM gives it: URL-encoded JSON (plain JSON is read too).
fn decode_policy(raw: &str) -> Option<Value> {
    serde_json::from_str(raw).ok().or_else(|| {
        let text = percent_encoding::percent_decode_str(raw).decode_utf8().ok()?;
        serde_json::from_str(&text).ok()
    })
}

/// Whether `policy` lets `principal` (a role of `account`) call `sts:AssumeRole`: an `Allow`
/// statement for the action names the role, its account (`:root` or the bare id) or anyone,
/// and no `Deny` statement names it.
fn trusts(policy: &Value, principal: &str, account: &str) -> bool {
    let statements: Vec<&Value> = match &policy["Statement"] {
        Value::Array(list) => list.iter().collect(),
        one @ Value::Object(_) => vec![one],
        _ => return false,
    };
    let strings = |v: &Value| -> Vec<String> {
        match v {
            Value::String(s) => vec![s.clone()],
            Value::Array(list) => {
                list.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect()
            }
            _ => Vec::new(),
        }
    };
    let assumes = |s: &Value| {
        strings(&s["Action"]).iter().any(|a| {
            let a = a.to_ascii_lowercase();
            a == "sts:assumerole" || a == "sts:*" || a == "*"
        })
    };
    let names_worker = |s: &Value| {
        let principals = match &s["Principal"] {
            Value::String(star) => vec![star.clone()],
            p => strings(&p["AWS"]),
        };
        principals.iter().any(|p| {
            p == "*"
                || p == principal
                || p == account
                || (p.ends_with(&format!(":iam::{account}:root")) && p.starts_with("arn:"))
        })
    };
    let applying = |effect: &str| {
        statements
            .iter()
            .any(|s| s["Effect"].as_str() == Some(effect) && assumes(s) && names_worker(s))
    };
    !applying("Deny") && applying("Allow")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const WORKER: &str = "arn:aws:iam::111111111111:role/baton-ActionWorkerFunctionRole-X";

    fn allow(principal: Value) -> Value {
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": principal, "Action": ["sts:AssumeRole", "sts:TagSession"]}
        ]})
    }

    #[test]
    fn a_trust_policy_lets_the_worker_in_by_its_arn_its_account_or_anyone() {
        for p in [
            json!({"AWS": WORKER}),
            json!({"AWS": ["arn:aws:iam::999999999999:root", WORKER]}),
            json!({"AWS": "arn:aws:iam::111111111111:root"}),
            json!({"AWS": "111111111111"}),
            json!("*"),
        ] {
            assert!(trusts(&allow(p.clone()), WORKER, "111111111111"), "{p}");
        }
    }

    #[test]
    fn a_trust_policy_for_codepipeline_or_another_role_or_denying_the_worker_keeps_it_out() {
        let only_codepipeline = json!({"Statement": {"Effect": "Allow",
            "Principal": {"Service": "codepipeline.amazonaws.com"}, "Action": "sts:AssumeRole"}});
        assert!(!trusts(&only_codepipeline, WORKER, "111111111111"));
        let other = allow(json!({"AWS": "arn:aws:iam::111111111111:role/someone-else"}));
        assert!(!trusts(&other, WORKER, "111111111111"));
        let other_account = allow(json!({"AWS": "arn:aws:iam::222222222222:root"}));
        assert!(!trusts(&other_account, WORKER, "111111111111"));
        let mut denied = allow(json!({"AWS": WORKER}));
        denied["Statement"]
            .as_array_mut()
            .unwrap()
            .push(json!({"Effect": "Deny", "Principal": {"AWS": WORKER}, "Action": "sts:*"}));
        assert!(!trusts(&denied, WORKER, "111111111111"));
        let wrong_action = json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": WORKER},
            "Action": "sts:AssumeRoleWithWebIdentity"}]});
        assert!(!trusts(&wrong_action, WORKER, "111111111111"));
    }

    #[test]
    fn trust_policies_are_read_url_encoded_as_iam_gives_them() {
        let encoded = "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22AWS%22%3A%22111111111111%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D";
        let policy = decode_policy(encoded).unwrap();
        assert!(trusts(&policy, WORKER, "111111111111"));
        assert!(decode_policy("{\"Statement\": []}").is_some());
        assert!(decode_policy("%7Bnot json").is_none());
    }

    #[test]
    fn role_arns_are_taken_apart_with_their_path() {
        assert_eq!(
            role_parts("arn:aws:iam::111111111111:role/service-role/AWSCodePipelineServiceRole-a"),
            Some(("111111111111", "service-role/AWSCodePipelineServiceRole-a"))
        );
        assert_eq!(role_parts("arn:aws:iam::111111111111:user/someone"), None);
        assert_eq!(role_parts("arn:aws:s3:::bucket"), None);
    }
}
