//! Secrets from Parameter Store and Secrets Manager, as CodeBuild resolves a build's
//! `PARAMETER_STORE` and `SECRETS_MANAGER` variables: what they resolve to on one machine with
//! `[aws]`, read with the user's credentials in the configured region.
//!
//! A parameter is read with decryption (`SecureString`s included). A Secrets Manager reference
//! (`secret-id:json-key:version-stage:version-id`) asks for that version, and for the JSON key
//! of its string. A missing parameter, secret or version is [`SecretError::NotFound`], naming
//! it; anything else (no credentials, access denied, no network) is `Unavailable`, so the
//! build fails instead of running without its secret.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_ssm::error::DisplayErrorContext;

use baton_app::ports::secrets::{SecretError, SecretKind, SecretReference, Secrets};

/// Parameter Store and Secrets Manager of one account and region.
#[derive(Debug, Clone)]
pub struct AwsSecrets {
    ssm: aws_sdk_ssm::Client,
    secrets_manager: aws_sdk_secretsmanager::Client,
}

impl AwsSecrets {
    /// Reads with `config`'s credentials, in its region.
    pub fn new(config: &SdkConfig) -> Self {
        Self {
            ssm: aws_sdk_ssm::Client::new(config),
            secrets_manager: aws_sdk_secretsmanager::Client::new(config),
        }
    }

    async fn parameter(&self, name: &str) -> Result<String, SecretError> {
        let got = self.ssm.get_parameter().name(name).with_decryption(true).send().await;
        match got {
            Ok(out) => {
                out.parameter().and_then(|p| p.value()).map(str::to_owned).ok_or_else(|| {
                    SecretError::NotFound(format!("the parameter {name} has no value"))
                })
            }
            Err(e) if e.code() == Some("ParameterNotFound") => {
                Err(SecretError::NotFound(format!("no parameter named {name} in Parameter Store")))
            }
            Err(e) => Err(unavailable("GetParameter", DisplayErrorContext(&e).to_string())),
        }
    }

    async fn secret(&self, reference: &str) -> Result<String, SecretError> {
        let r = SecretReference::parse(reference);
        let got = self
            .secrets_manager
            .get_secret_value()
            .secret_id(r.id)
            .set_version_stage(r.version_stage.map(str::to_owned))
            .set_version_id(r.version_id.map(str::to_owned))
            .send()
            .await;
        let value = match got {
            Ok(out) => out.secret_string().map(str::to_owned).ok_or_else(|| {
                SecretError::NotFound(format!(
                    "the secret {} holds binary data, which an environment variable cannot",
                    r.id
                ))
            })?,
            Err(e) if e.code() == Some("ResourceNotFoundException") => {
                return Err(SecretError::NotFound(format!(
                    "no secret (or no such version of it) named {} in Secrets Manager",
                    r.id
                )));
            }
            Err(e) => {
                let why = aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string();
                return Err(unavailable("GetSecretValue", why));
            }
        };
        r.pick(value)
    }
}

fn unavailable(operation: &str, why: String) -> SecretError {
    SecretError::Unavailable(format!("{operation} failed: {why}").into())
}

#[async_trait]
impl Secrets for AwsSecrets {
    async fn resolve(&self, kind: SecretKind, reference: &str) -> Result<String, SecretError> {
        match kind {
            SecretKind::ParameterStore => self.parameter(reference).await,
            SecretKind::SecretsManager => self.secret(reference).await,
        }
    }
}
