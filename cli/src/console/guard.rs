//! Who may use the console, and proof that a form came from one of its own pages.
//!
//! On loopback the console is the local operator's, as the API is: pages are open and every
//! write carries a CSRF token. Anywhere else `baton serve` already insists on TLS and
//! credentials of one's own; the console then asks for those credentials once and keeps a
//! signed session cookie.

use std::time::{SystemTime, UNIX_EPOCH};

use baton::api::Credentials;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type Signer = Hmac<Sha256>;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "baton_console";
/// How long a console login lasts.
const SESSION_SECS: u64 = 12 * 3600;

/// Signs the console's tokens with a key that lives as long as the process: restarting
/// `baton serve` ends every session and makes open pages reload before they can write.
pub(crate) struct Guard {
    key: [u8; 32],
    /// Who the console acts for when nobody logs in (loopback): the API's own key id.
    operator: String,
    login: Option<Login>,
}

/// Logging in with one of the API's key pairs, when the console is reachable from elsewhere.
pub(crate) struct Login {
    pub(crate) accepted: Credentials,
    /// Mark the cookie `Secure` (served over https, here or behind a proxy).
    pub(crate) secure: bool,
}

impl Guard {
    pub(crate) fn new(operator: &str, login: Option<Login>) -> anyhow::Result<Self> {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| anyhow::anyhow!("cannot make the console's signing key: {e}"))?;
        Ok(Self { key, operator: operator.to_owned(), login })
    }

    fn signer(&self, parts: &[&str]) -> Signer {
        let mut mac = Signer::new_from_slice(&self.key).expect("HMAC takes any key length");
        for p in parts {
            mac.update(p.as_bytes());
            mac.update(&[0]);
        }
        mac
    }

    /// The token every form and script request carries.
    pub(crate) fn csrf(&self) -> String {
        hex::encode(self.signer(&["csrf"]).finalize().into_bytes())
    }

    /// Whether `given` is this process's CSRF token (compared in constant time).
    pub(crate) fn csrf_holds(&self, given: &str) -> bool {
        hex::decode(given).is_ok_and(|bytes| self.signer(&["csrf"]).verify_slice(&bytes).is_ok())
    }

    /// Whether a login form is needed at all.
    pub(crate) fn needs_login(&self) -> bool {
        self.login.is_some()
    }

    /// The key id of whoever sends `cookie_header`: the operator on loopback, the logged-in
    /// key's id elsewhere, or nobody.
    pub(crate) fn user(&self, cookie_header: Option<&str>) -> Option<String> {
        if self.login.is_none() {
            return Some(self.operator.clone());
        }
        let value = cookie_header?
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .find(|(name, _)| *name == COOKIE)?
            .1;
        let mut parts = value.rsplitn(3, '.');
        let (mac, expiry, key) = (parts.next()?, parts.next()?, parts.next()?);
        let fresh = expiry.parse::<u64>().is_ok_and(|e| e > now());
        let signed = hex::decode(mac)
            .is_ok_and(|m| self.signer(&["session", key, expiry]).verify_slice(&m).is_ok());
        (fresh && signed).then(|| key.to_owned())
    }

    /// A `Set-Cookie` value when `key`/`secret` is one of the API's pairs.
    pub(crate) fn log_in(&self, key: &str, secret: &str) -> Option<String> {
        let login = self.login.as_ref()?;
        let stored = login.accepted.get(key)?;
        // Compare MACs of the two secrets, so the comparison takes the same time either way.
        let want = self.signer(&["secret", stored]).finalize().into_bytes();
        self.signer(&["secret", secret]).verify_slice(&want).ok()?;
        let expiry = (now() + SESSION_SECS).to_string();
        let mac = hex::encode(self.signer(&["session", key, &expiry]).finalize().into_bytes());
        let secure = if login.secure { "; Secure" } else { "" };
        Some(format!(
            "{COOKIE}={key}.{expiry}.{mac}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}{secure}"
        ))
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_login() -> Guard {
        let accepted = Credentials::from([("ops".to_owned(), "s3cret".to_owned())]);
        Guard::new("ops", Some(Login { accepted, secure: true })).unwrap()
    }

    #[test]
    fn the_csrf_token_is_this_processs_own() {
        let g = with_login();
        assert!(g.csrf_holds(&g.csrf()));
        assert!(!g.csrf_holds(""), "an empty token");
        assert!(!g.csrf_holds(&with_login().csrf()), "another process's token");
        assert!(!g.csrf_holds("not hex"));
    }

    #[test]
    fn on_loopback_the_operator_needs_no_login() {
        let g = Guard::new("baton", None).unwrap();
        assert!(!g.needs_login());
        assert_eq!(g.user(None).as_deref(), Some("baton"));
        assert_eq!(g.log_in("baton", "anything"), None, "there is nothing to log in to");
    }

    #[test]
    fn elsewhere_a_signed_session_names_the_user() {
        let g = with_login();
        assert_eq!(g.user(None), None);
        assert_eq!(g.log_in("ops", "wrong"), None);
        assert_eq!(g.log_in("nobody", "s3cret"), None);
        let set = g.log_in("ops", "s3cret").unwrap();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Secure")
        );
        let cookie = set.split(';').next().unwrap();
        assert_eq!(g.user(Some(&format!("theme=dark; {cookie}"))).as_deref(), Some("ops"));
        // Another key id under the same signature, or another process's cookie, is nobody.
        let forged = cookie.replacen("=ops.", "=admin.", 1);
        assert_eq!(g.user(Some(&forged)), None);
        assert_eq!(with_login().user(Some(cookie)), None);
    }

    #[test]
    fn an_expired_session_is_nobody() {
        let g = with_login();
        let expiry = (now() - 1).to_string();
        let mac = hex::encode(g.signer(&["session", "ops", &expiry]).finalize().into_bytes());
        assert_eq!(g.user(Some(&format!("{COOKIE}=ops.{expiry}.{mac}"))), None);
    }
}
