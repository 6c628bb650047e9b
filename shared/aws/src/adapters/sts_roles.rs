//! Credentials for an action's role and region: the SDK configuration every AWS provider
//! builds its clients from.
//!
//! Contract: [`RoleAssumer::config`] with no role gives the base configuration (the function's
//! own credentials) in the action's region. With a role it calls STS `AssumeRole` with the
//! session name `baton-<execution id>` (so CloudTrail in the target account shows which
//! execution acted) and keeps the credentials per (role, region) until
//! [`REFRESH_MARGIN`] before they expire. Concurrent callers for the same (role, region) wait
//! for one `AssumeRole` instead of each making their own.
//!
//! Why STS directly rather than `aws_config::sts::AssumeRoleProvider`: the provider hides the
//! expiry and refreshes inside the SDK's identity cache, so neither the cache rule above nor
//! the session name of a given call could be observed or tested. Here the expiry is data, the
//! refresh rule is a pure function ([`needs_refresh`]) and a test can read the session name
//! back with `GetCallerIdentity`.
//!
//! A cached session keeps the name of the execution that first assumed it, so actions of a
//! later execution within the same hour appear in CloudTrail under the earlier name. That is
//! the price of one `AssumeRole` per role and region per hour instead of one per action.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use aws_config::{Region, SdkConfig};
use aws_sdk_sts::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_sts::error::{DisplayErrorContext, ProvideErrorMetadata};
use tracing::{debug, warn};

/// Credentials are assumed again once they have less than this left: long enough for an
/// action that starts now to finish its calls, short of the deploy waits (those re-ask).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// How long assumed credentials last: STS's default (and the most a role allows unless its
/// maximum session duration was raised).
const SESSION_DURATION_SECONDS: i32 = 3600;

/// STS allows 2 to 64 characters from `[\w+=,.@-]` in a session name.
/// <https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html>
const MAX_SESSION_NAME: usize = 64;

pub use crate::providers::credentials::RoleError;

/// Assumed credentials and when they expire.
#[derive(Clone)]
struct Assumed {
    config: SdkConfig,
    expires: SystemTime,
}

/// One (role, region)'s credentials, behind an async lock so one caller refreshes them while
/// the others wait.
type Slot = Arc<tokio::sync::Mutex<Option<Assumed>>>;

/// Gives SDK configurations for (role, region), assuming and caching roles through STS.
pub struct RoleAssumer {
    base: SdkConfig,
    sts: aws_sdk_sts::Client,
    slots: Mutex<HashMap<(String, String), Slot>>,
}

impl fmt::Debug for RoleAssumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoleAssumer").field("region", &self.base.region()).finish_non_exhaustive()
    }
}

impl RoleAssumer {
    /// Assumes roles with the credentials of `base` (the function's own), calling STS in
    /// `base`'s region: the pipeline's region, always enabled, where an action's region might
    /// be an opt-in region whose STS endpoint the pipeline account cannot use.
    pub fn new(base: SdkConfig) -> Self {
        let sts = aws_sdk_sts::Client::new(&base);
        Self { base, sts, slots: Mutex::new(HashMap::new()) }
    }

    /// The configuration for an action of `execution_id` that runs in `region`, as `role_arn`
    /// when given, else with the base credentials.
    ///
    /// # Errors
    /// [`RoleError::Denied`] when STS refuses the role, [`RoleError::Unavailable`] when it
    /// cannot be reached.
    pub async fn config(
        &self,
        role_arn: Option<&str>,
        region: &str,
        execution_id: &str,
    ) -> Result<SdkConfig, RoleError> {
        let Some(role_arn) = role_arn.map(str::trim).filter(|r| !r.is_empty()) else {
            return Ok(self.base.to_builder().region(Region::new(region.to_owned())).build());
        };
        let slot = self.slot(role_arn, region);
        let mut slot = slot.lock().await;
        if let Some(assumed) = slot.as_ref()
            && !needs_refresh(assumed.expires, SystemTime::now(), REFRESH_MARGIN)
        {
            return Ok(assumed.config.clone());
        }
        let assumed = self.assume(role_arn, region, execution_id).await?;
        *slot = Some(assumed.clone());
        Ok(assumed.config)
    }

    fn slot(&self, role_arn: &str, region: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.entry((role_arn.to_owned(), region.to_owned())).or_default().clone()
    }

    async fn assume(
        &self,
        role_arn: &str,
        region: &str,
        execution_id: &str,
    ) -> Result<Assumed, RoleError> {
        let session_name = session_name(execution_id);
        let output = self
            .sts
            .assume_role()
            .role_arn(role_arn)
            .role_session_name(&session_name)
            .duration_seconds(SESSION_DURATION_SECONDS)
            .send()
            .await
            .map_err(|e| {
                warn!(role_arn, error = %DisplayErrorContext(&e), "AssumeRole failed");
                let role_arn = role_arn.to_owned();
                match e.code() {
                    Some(code) if is_denial(code) => {
                        let message = format!("{code}: {}", e.message().unwrap_or("access denied"));
                        RoleError::Denied { role_arn, message, source: Box::new(e) }
                    }
                    _ => RoleError::Unavailable { role_arn, source: Box::new(e) },
                }
            })?;
        let missing = |what: &str| RoleError::Unavailable {
            role_arn: role_arn.to_owned(),
            source: format!("AssumeRole answered without {what}").into(),
        };
        let credentials = output.credentials().ok_or_else(|| missing("credentials"))?;
        let expires = SystemTime::try_from(*credentials.expiration())
            .map_err(|_| missing("a valid expiration"))?;
        let credentials = Credentials::new(
            credentials.access_key_id(),
            credentials.secret_access_key(),
            Some(credentials.session_token().to_owned()),
            Some(expires),
            "BatonAssumeRole",
        );
        debug!(role_arn, region, session_name, "assumed role");
        let config = self
            .base
            .to_builder()
            .region(Region::new(region.to_owned()))
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .build();
        Ok(Assumed { config, expires })
    }
}

/// Whether credentials expiring at `expires` must be replaced at `now`: when less than
/// `margin` is left (or the clock already passed the expiry).
pub fn needs_refresh(expires: SystemTime, now: SystemTime, margin: Duration) -> bool {
    match expires.duration_since(now) {
        Ok(left) => left <= margin,
        Err(_) => true,
    }
}

/// `baton-<execution_id>`, with characters STS refuses replaced by `-` and cut to 64.
pub fn session_name(execution_id: &str) -> String {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c);
    let name: String = format!("baton-{execution_id}")
        .chars()
        .map(|c| if allowed(c) { c } else { '-' })
        .take(MAX_SESSION_NAME)
        .collect();
    name
}

/// STS error codes that mean "not allowed", as opposed to "not now".
fn is_denial(code: &str) -> bool {
    matches!(
        code,
        "AccessDenied"
            | "AccessDeniedException"
            | "MalformedPolicyDocument"
            | "PackedPolicyTooLarge"
            | "RegionDisabledException"
            | "ExpiredTokenException"
            | "InvalidClientTokenId"
            | "ValidationError"
    )
}

#[async_trait::async_trait]
impl crate::providers::credentials::RoleCredentials for RoleAssumer {
    async fn config(
        &self,
        role_arn: Option<&str>,
        region: &str,
        execution_id: &str,
    ) -> Result<SdkConfig, RoleError> {
        RoleAssumer::config(self, role_arn, region, execution_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_name_carries_the_execution_id() {
        assert_eq!(
            session_name("0c5c7a4e-1111-2222-3333-444455556666"),
            "baton-0c5c7a4e-1111-2222-3333-444455556666"
        );
    }

    #[test]
    fn a_session_name_has_only_characters_sts_allows_and_at_most_64() {
        let name = session_name(&format!("a b/c:d{}", "x".repeat(100)));
        assert!(name.starts_with("baton-a-b-c-d"));
        assert_eq!(name.len(), 64);
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)));
    }

    #[test]
    fn credentials_are_kept_until_five_minutes_before_they_expire() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = |secs| now + Duration::from_secs(secs);
        assert!(!needs_refresh(at(3600), now, REFRESH_MARGIN));
        assert!(!needs_refresh(at(301), now, REFRESH_MARGIN));
        assert!(needs_refresh(at(300), now, REFRESH_MARGIN));
        assert!(needs_refresh(at(10), now, REFRESH_MARGIN));
        assert!(needs_refresh(now - Duration::from_secs(1), now, REFRESH_MARGIN));
    }

    #[test]
    fn refusals_are_denials_and_the_rest_is_retryable() {
        assert!(is_denial("AccessDenied"));
        assert!(is_denial("RegionDisabledException"));
        assert!(!is_denial("Throttling"));
        assert!(!is_denial("InternalFailure"));
    }
}
