//! Secrets a build's environment reads by reference (CodeBuild's `PARAMETER_STORE` and
//! `SECRETS_MANAGER` variables, a buildspec's `env/parameter-store` and `env/secrets-manager`):
//! the request carries the reference, and the provider resolves it where the commands run, so
//! a value never rides on an event or lands in the state.

use async_trait::async_trait;

use super::BoxError;

/// Where a reference points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecretKind {
    /// A Systems Manager parameter, by name.
    ParameterStore,
    /// A Secrets Manager secret: `secret-id[:json-key[:version-stage[:version-id]]]`.
    SecretsManager,
}

impl SecretKind {
    /// CodeBuild's environment variable type for it.
    pub fn type_name(self) -> &'static str {
        match self {
            Self::ParameterStore => "PARAMETER_STORE",
            Self::SecretsManager => "SECRETS_MANAGER",
        }
    }

    /// The kind an environment variable type names; `None` for `PLAINTEXT` (and anything else).
    pub fn of_type(kind: &str) -> Option<Self> {
        match kind.trim() {
            "PARAMETER_STORE" => Some(Self::ParameterStore),
            "SECRETS_MANAGER" => Some(Self::SecretsManager),
            _ => None,
        }
    }
}

/// A Secrets Manager reference taken apart as CodeBuild takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretReference<'a> {
    /// The secret's name or ARN.
    pub id: &'a str,
    /// A key of the secret's JSON value; the whole value when absent.
    pub json_key: Option<&'a str>,
    /// `version-stage`, when given.
    pub version_stage: Option<&'a str>,
    /// `version-id`, when given.
    pub version_id: Option<&'a str>,
}

impl<'a> SecretReference<'a> {
    /// Parses `secret-id:json-key:version-stage:version-id`; an ARN's own colons belong to the
    /// id. Empty parts are absent.
    pub fn parse(reference: &'a str) -> Self {
        let split_at = if reference.starts_with("arn:") {
            // arn:partition:secretsmanager:region:account:secret:name
            reference.match_indices(':').nth(6).map(|(i, _)| i)
        } else {
            reference.find(':')
        };
        let (id, rest) = match split_at {
            Some(i) => (&reference[..i], &reference[i + 1..]),
            None => (reference, ""),
        };
        let mut parts = rest.splitn(3, ':').map(|p| Some(p).filter(|p| !p.is_empty()));
        Self {
            id,
            json_key: parts.next().flatten(),
            version_stage: parts.next().flatten(),
            version_id: parts.next().flatten(),
        }
    }

    /// The part of the secret's `value` this reference asks for: all of it, or the value of
    /// its JSON key (a string as it is, anything else as JSON text).
    ///
    /// # Errors
    /// [`SecretError::NotFound`] when the value is not JSON or has no such key.
    pub fn pick(&self, value: String) -> Result<String, SecretError> {
        let Some(json_key) = self.json_key else { return Ok(value) };
        let parsed: serde_json::Value = serde_json::from_str(&value).map_err(|_| {
            SecretError::NotFound(format!(
                "the secret {} is not JSON, so it has no key {json_key}",
                self.id
            ))
        })?;
        match &parsed[json_key] {
            serde_json::Value::String(s) => Ok(s.clone()),
            serde_json::Value::Null => {
                Err(SecretError::NotFound(format!("the secret {} has no key {json_key}", self.id)))
            }
            other => Ok(other.to_string()),
        }
    }
}

/// Why a reference has no value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Nothing by that name (or no such key, version...): what the user must add.
    #[error("{0}")]
    NotFound(String),
    /// The store cannot be read now.
    #[error("the secret store cannot be read")]
    Unavailable(#[source] BoxError),
}

/// Resolves references to their values.
#[async_trait]
pub trait Secrets: Send + Sync + std::fmt::Debug {
    /// The value `reference` of `kind` points to.
    async fn resolve(&self, kind: SecretKind, reference: &str) -> Result<String, SecretError>;
}

/// Stores asked in turn: the first that knows a reference answers. A store that cannot be
/// read stops the search, so a value is never taken from a later store by accident.
#[derive(Debug)]
pub struct FirstOf(pub Vec<std::sync::Arc<dyn Secrets>>);

#[async_trait]
impl Secrets for FirstOf {
    async fn resolve(&self, kind: SecretKind, reference: &str) -> Result<String, SecretError> {
        let mut missing = Vec::new();
        for store in &self.0 {
            match store.resolve(kind, reference).await {
                Err(SecretError::NotFound(why)) => missing.push(why),
                answered => return answered,
            }
        }
        Err(SecretError::NotFound(missing.join("; and ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_manager_references_split_as_codebuild_splits_them() {
        let r = SecretReference::parse("prod/db:password");
        assert_eq!((r.id, r.json_key, r.version_stage), ("prod/db", Some("password"), None));
        let r = SecretReference::parse("prod/db");
        assert_eq!((r.id, r.json_key), ("prod/db", None));
        let arn = "arn:aws:secretsmanager:us-east-1:111111111111:secret:prod/db-AbCdEf";
        let text = format!("{arn}:user::v1");
        let r = SecretReference::parse(&text);
        assert_eq!(
            (r.id, r.json_key, r.version_stage, r.version_id),
            (arn, Some("user"), None, Some("v1"))
        );
        let text = format!("{arn}::AWSPREVIOUS");
        let r = SecretReference::parse(&text);
        assert_eq!((r.json_key, r.version_stage), (None, Some("AWSPREVIOUS")));
    }
}
