//! The home's own secret store (`baton secrets put`): what a build's `PARAMETER_STORE` and
//! `SECRETS_MANAGER` variables resolve to on one machine, without AWS.
//!
//! ```text
//! <home>/keys/secrets.key                         the store's key: 32 random bytes, 0600
//! <home>/secrets/<kind>/<hex of the name>         nonce (12) ‖ AES-256-GCM(value) ‖ tag (16)
//! ```
//!
//! A name is stored hex-encoded, so no name (`/app/db`, `../x`) can reach outside its folder.
//! The associated data binds the kind and name, so a file renamed or moved to the other kind
//! fails its check instead of answering for another secret. Files are 0600 in a 0700 folder.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, Payload};
use async_trait::async_trait;

use super::file_artifacts::{named_master_key, random};
use baton_app::ports::secrets::{SecretError, SecretKind, SecretReference, Secrets};

const NONCE_LEN: usize = 12;

/// Encrypted secrets under a home.
#[derive(Debug, Clone)]
pub struct SecretFiles {
    keys: PathBuf,
    root: PathBuf,
}

impl SecretFiles {
    /// The store of the home `home` (nothing is created until a secret is put).
    pub fn new(home: &Path) -> Self {
        Self { keys: home.join("keys"), root: home.join("secrets") }
    }

    /// Stores `value` under `name`, replacing what was there.
    ///
    /// # Errors
    /// When the name is empty or the store cannot be written.
    pub fn put(&self, kind: SecretKind, name: &str, value: &str) -> io::Result<()> {
        check_name(name)?;
        let key = named_master_key(&self.keys, "secrets")?;
        let nonce: [u8; NONCE_LEN] = random()?;
        let sealed = aes_gcm::aead::Aead::encrypt(
            &key,
            (&nonce).into(),
            Payload { msg: value.as_bytes(), aad: &aad(kind, name) },
        )
        .map_err(|_| io::Error::other("the secret could not be encrypted"))?;
        let dir = self.root.join(folder(kind));
        DirBuilder::new().recursive(true).mode(0o700).create(&dir)?;
        let path = dir.join(hex(name));
        let staged = dir.join(format!(".{}.new", hex(name)));
        let mut file =
            OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&staged)?;
        file.write_all(&nonce)?;
        file.write_all(&sealed)?;
        file.sync_all()?;
        fs::rename(&staged, &path)
    }

    /// The value stored under `name`; `None` when there is none.
    ///
    /// # Errors
    /// When the store cannot be read, or the file fails its check (tampered, moved).
    pub fn get(&self, kind: SecretKind, name: &str) -> io::Result<Option<String>> {
        let bytes = match fs::read(self.root.join(folder(kind)).join(hex(name))) {
            Ok(b) => b,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        if bytes.len() < NONCE_LEN {
            return Err(io::Error::new(ErrorKind::InvalidData, "a secret file is truncated"));
        }
        let key: Aes256Gcm = named_master_key(&self.keys, "secrets")?;
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = key
            .decrypt(nonce.into(), Payload { msg: sealed, aad: &aad(kind, name) })
            .map_err(|_| {
                io::Error::new(ErrorKind::InvalidData, format!("the secret {name} fails its check"))
            })?;
        String::from_utf8(plain)
            .map(Some)
            .map_err(|_| io::Error::new(ErrorKind::InvalidData, "a secret is not UTF-8"))
    }

    /// Removes `name`; whether it was there.
    ///
    /// # Errors
    /// When the store cannot be written.
    pub fn delete(&self, kind: SecretKind, name: &str) -> io::Result<bool> {
        match fs::remove_file(self.root.join(folder(kind)).join(hex(name))) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every stored name, by kind, sorted; never a value.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn list(&self) -> io::Result<Vec<(SecretKind, String)>> {
        let mut names = Vec::new();
        for kind in [SecretKind::ParameterStore, SecretKind::SecretsManager] {
            let entries = match fs::read_dir(self.root.join(folder(kind))) {
                Ok(entries) => entries,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            for entry in entries {
                let file = entry?.file_name();
                if let Some(name) = unhex(&file.to_string_lossy()) {
                    names.push((kind, name));
                }
            }
        }
        names.sort();
        Ok(names)
    }
}

#[async_trait]
impl Secrets for SecretFiles {
    async fn resolve(&self, kind: SecretKind, reference: &str) -> Result<String, SecretError> {
        let store = self.clone();
        let reference = reference.to_owned();
        tokio::task::spawn_blocking(move || store.resolve_now(kind, &reference))
            .await
            .map_err(|e| SecretError::Unavailable(Box::new(e)))?
    }
}

impl SecretFiles {
    fn resolve_now(&self, kind: SecretKind, reference: &str) -> Result<String, SecretError> {
        let unavailable = |e: io::Error| SecretError::Unavailable(Box::new(e));
        let put = |name: &str| {
            let flag = if kind == SecretKind::SecretsManager { " --secrets-manager" } else { "" };
            format!(
                "no {} secret named {name} in this home: add it with `baton secrets put{flag} {name}`",
                kind.type_name()
            )
        };
        if kind == SecretKind::ParameterStore {
            return self
                .get(kind, reference)
                .map_err(unavailable)?
                .ok_or_else(|| SecretError::NotFound(put(reference)));
        }
        let r = SecretReference::parse(reference);
        if r.version_id.is_some() || r.version_stage.is_some_and(|s| s != "AWSCURRENT") {
            return Err(SecretError::NotFound(format!(
                "{reference} names a version; this home keeps one version of each secret (AWSCURRENT)"
            )));
        }
        let value = self
            .get(kind, r.id)
            .map_err(unavailable)?
            .ok_or_else(|| SecretError::NotFound(put(r.id)))?;
        r.pick(value)
    }
}

fn folder(kind: SecretKind) -> &'static str {
    match kind {
        SecretKind::ParameterStore => "parameter-store",
        SecretKind::SecretsManager => "secrets-manager",
    }
}

fn aad(kind: SecretKind, name: &str) -> Vec<u8> {
    [b"baton-secret\0", folder(kind).as_bytes(), b"\0", name.as_bytes()].concat()
}

fn check_name(name: &str) -> io::Result<()> {
    if name.is_empty() || name.len() > 2048 || name.contains('\0') {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            "a secret's name must be 1 to 2048 characters, without NUL",
        ));
    }
    Ok(())
}

fn hex(name: &str) -> String {
    name.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(file: &str) -> Option<String> {
    if !file.len().is_multiple_of(2) || file.starts_with('.') {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..file.len()).step_by(2).map(|i| u8::from_str_radix(&file[i..i + 2], 16).ok()).collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[tokio::test]
    async fn secrets_round_trip_encrypted_and_refuse_a_moved_file() {
        let home = tempfile::tempdir().unwrap();
        let store = SecretFiles::new(home.path());
        store.put(SecretKind::ParameterStore, "/app/token", "s3cret-value").unwrap();
        store
            .put(SecretKind::SecretsManager, "prod/db", r#"{"password":"hunter2","port":5432}"#)
            .unwrap();
        let token = store.resolve(SecretKind::ParameterStore, "/app/token").await.unwrap();
        assert_eq!(token, "s3cret-value");
        let password = store.resolve(SecretKind::SecretsManager, "prod/db:password").await.unwrap();
        assert_eq!(password, "hunter2");
        let port = store.resolve(SecretKind::SecretsManager, "prod/db:port").await.unwrap();
        assert_eq!(port, "5432");

        // Nothing in the clear on disk; files private; names cannot escape.
        for (_, name) in store.list().unwrap() {
            let file = home
                .path()
                .join("secrets")
                .join(if name.starts_with('/') { "parameter-store" } else { "secrets-manager" })
                .join(hex(&name));
            let bytes = fs::read(&file).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains("s3cret")
                    && !String::from_utf8_lossy(&bytes).contains("hunter2")
            );
            assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        }
        store.put(SecretKind::ParameterStore, "../../escape", "x").unwrap();
        assert!(!home.path().join("escape").exists());
        assert!(
            store.list().unwrap().contains(&(SecretKind::ParameterStore, "../../escape".into()))
        );

        // A file moved under another name fails its check instead of answering for it.
        let dir = home.path().join("secrets/parameter-store");
        fs::copy(dir.join(hex("/app/token")), dir.join(hex("/app/other"))).unwrap();
        assert!(store.get(SecretKind::ParameterStore, "/app/other").is_err());

        let missing = store.resolve(SecretKind::SecretsManager, "nope:key").await.unwrap_err();
        assert!(
            missing.to_string().contains("baton secrets put --secrets-manager nope"),
            "{missing}"
        );
        let versioned =
            store.resolve(SecretKind::SecretsManager, "prod/db:password::v2").await.unwrap_err();
        assert!(versioned.to_string().contains("one version"), "{versioned}");
        assert!(store.delete(SecretKind::ParameterStore, "/app/token").unwrap());
        assert!(store.get(SecretKind::ParameterStore, "/app/token").unwrap().is_none());
    }
}
