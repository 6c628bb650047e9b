//! The AWS providers' port for credentials: the SDK configuration an action runs with, as its
//! role in its region. STS through [`RoleAssumer`](crate::adapters::sts_roles::RoleAssumer)
//! on AWS; a test gives its own.

use aws_config::SdkConfig;

use baton_app::ports::BoxError;

/// How getting credentials for a role fails.
#[derive(Debug, thiserror::Error)]
pub enum RoleError {
    /// STS refused to let us assume the role (it does not exist, does not trust this account,
    /// or the caller may not assume it). Fail the action: retrying cannot help until someone
    /// changes the role or its trust policy.
    #[error("cannot assume role {role_arn}: {message}")]
    Denied {
        #[allow(missing_docs)]
        role_arn: String,
        /// STS's error code and message, for the action's failure message.
        message: String,
        #[source]
        #[allow(missing_docs)]
        source: BoxError,
    },
    /// STS could not be reached, throttled us, or answered without credentials. Retry later.
    #[error("STS unavailable while assuming role {role_arn}")]
    Unavailable {
        #[allow(missing_docs)]
        role_arn: String,
        #[source]
        #[allow(missing_docs)]
        source: BoxError,
    },
}

/// Gives the SDK configuration an action runs with.
#[async_trait::async_trait]
pub trait RoleCredentials: Send + Sync + std::fmt::Debug {
    /// The configuration for an action of `execution_id` that runs in `region`, as `role_arn`
    /// when given, else with the deployment's own credentials.
    ///
    /// # Errors
    /// [`RoleError::Denied`] when the role cannot be assumed, [`RoleError::Unavailable`] when
    /// the credentials service cannot be reached.
    async fn config(
        &self,
        role_arn: Option<&str>,
        region: &str,
        execution_id: &str,
    ) -> Result<SdkConfig, RoleError>;
}
