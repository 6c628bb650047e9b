//! The calls to KMS other services make as the caller on AWS, which moto's services never make.
//!
//! S3 and SNS: a write under a customer key or a publication to an encrypted topic asks for a
//! data key (`kms:GenerateDataKey`), a read for its decryption (`kms:Decrypt`). These are sent
//! to moto, which decides them against the caller's policies. Only whether moto lets the caller
//! in matters, so the read's `Decrypt` carries a ciphertext moto cannot decrypt: moto checks the
//! caller before it reads the request, so it answers 403 when the caller may not, and
//! `InvalidCiphertextException` when it may.
//!
//! S3 with a key that is not the stack's own (a declared artifact store's): the grant names S3
//! (`kms:ViaService`), so the harness decides these against the caller's declared statements.
//! The stack's keys stay with moto, so the grants on them (`UseArtifactKey`) are weighed
//! apart from the one through S3 for any key, which would also allow them.
//!
//! SQS and Secrets Manager: their grants name the service (`kms:ViaService`), a condition moto
//! cannot evaluate, so the harness decides these against the caller's declared statements.
//!
//! A refusal is the service's `AccessDenied`, and a write does not happen.

use std::sync::PoisonError;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{HeaderMap, Request, Response};
use serde_json::json;

use super::{Call, Proxy, access_denied, classify, credential_scope};

/// The calls made or decided here beside the one sent (another service's KMS calls and reads
/// as the caller, a role or connection handed to it, the topic of a publication) are recorded
/// under the caller's function with this suffix, so figures can leave them out: none is a
/// request of its own (and with S3 Bucket Keys, as the template enables them, S3 calls KMS far
/// less often than once per request).
pub const FOR_ANOTHER_SERVICE: &str = " (for another service)";

impl Proxy {
    /// Before a write of an object under a customer key: S3's data key request, as the caller.
    pub(super) async fn kms_before_write(
        &self,
        function: &str,
        call: &Call,
        headers: &HeaderMap,
    ) -> Option<Response<Full<Bytes>>> {
        let writes =
            matches!(call.operation.as_str(), "PutObject" | "CopyObject" | "CreateMultipartUpload");
        if call.service != "s3" || !writes {
            return None;
        }
        let key = customer_key(headers)?;
        self.s3_kms(function, call, headers, "GenerateDataKey", &key).await
    }

    /// Before a publication to a topic encrypted with a customer key: SNS's data key request,
    /// as the publisher (the topics' keys are given with [`Proxy::with_topic_keys`]).
    pub(super) async fn kms_before_publish(
        &self,
        function: &str,
        call: &Call,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Option<Response<Full<Bytes>>> {
        if call.service != "sns" || call.operation != "Publish" {
            return None;
        }
        let topic = super::form_value(body, "TopicArn")?;
        let key = self.topic_keys.get(&topic)?.clone();
        self.kms_as_caller(function, headers, "GenerateDataKey", &key).await
    }

    /// After a read of an object under a customer key: S3's decryption, as the caller.
    pub(super) async fn kms_after_read(
        &self,
        function: &str,
        call: &Call,
        request: &HeaderMap,
        response: &HeaderMap,
    ) -> Option<Response<Full<Bytes>>> {
        if call.service != "s3" || call.operation != "GetObject" || call.status != 200 {
            return None;
        }
        let key = customer_key(response)?;
        self.s3_kms(function, call, request, "Decrypt", &key).await
    }

    /// S3's `operation` on `key` for `call`: by moto for the stack's keys, here for others.
    async fn s3_kms(
        &self,
        function: &str,
        call: &Call,
        headers: &HeaderMap,
        operation: &str,
        key: &str,
    ) -> Option<Response<Full<Bytes>>> {
        if self.decide.is_some() && !self.own_keys.values().any(|k| k == key) {
            let via = format!("s3.{}.amazonaws.com", call.region);
            return self.decided_here(function, call, ("kms", operation), key, via);
        }
        self.kms_as_caller(function, headers, operation, key).await
    }

    /// `operation` on `key`, signed with the credentials `caller` signed with; `Some` refusal
    /// when moto refused it.
    async fn kms_as_caller(
        &self,
        function: &str,
        caller: &HeaderMap,
        operation: &str,
        key: &str,
    ) -> Option<Response<Full<Bytes>>> {
        use baton::api::sigv4::{Signable, SigningKey, sign};
        let secrets = self.secrets.as_ref()?;
        let scope = credential_scope(caller);
        let access_key = scope.first()?.clone();
        let secret =
            secrets.lock().unwrap_or_else(PoisonError::into_inner).get(&access_key)?.clone();
        // A key ARN names its region; S3 asks the key's region.
        let region =
            key.split(':').nth(3).filter(|r| !r.is_empty()).or(scope.get(2).map(String::as_str))?;
        let body = match operation {
            "Decrypt" => json!({"KeyId": key, "CiphertextBlob": "bm90IGEgY2lwaGVydGV4dA=="}),
            _ => json!({"KeyId": key, "KeySpec": "AES_256"}),
        }
        .to_string();
        let mut headers = vec![
            ("host".to_owned(), self.upstream.to_string()),
            ("content-type".to_owned(), "application/x-amz-json-1.1".to_owned()),
            ("x-amz-target".to_owned(), format!("TrentService.{operation}")),
        ];
        if let Some(token) = caller.get("x-amz-security-token").and_then(|v| v.to_str().ok()) {
            headers.push(("x-amz-security-token".to_owned(), token.to_owned()));
        }
        let signable = Signable {
            method: "POST",
            path: "/",
            query: "",
            headers: &headers,
            body: body.as_bytes(),
        };
        let signing =
            SigningKey { access_key: &access_key, secret_key: &secret, region, service: "kms" };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let (date, authorization) = sign(&signable, &signing, now);
        headers.push(("x-amz-date".to_owned(), date));
        headers.push(("authorization".to_owned(), authorization));
        let mut request = Request::post("/");
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let (parts, full) = request.body(Full::new(Bytes::from(body.clone()))).ok()?.into_parts();
        let mut call =
            classify(&format!("{function}{FOR_ANOTHER_SERVICE}"), &parts, body.as_bytes());
        call.status = match self.send(Request::from_parts(parts, full)).await {
            Ok(answer) => answer.status().as_u16(),
            Err(_) => 502,
        };
        let refused = call.status == 403;
        self.record(call);
        refused.then(|| access_denied("s3", &format!("kms:{operation}"), key))
    }
}

impl Proxy {
    /// Before a message to an encrypted queue or a read of an encrypted secret: the service's
    /// KMS call as the caller, decided against the caller's declared statements (with the
    /// `kms:ViaService` the call carries), since moto can evaluate neither.
    pub(super) fn kms_decided_here(
        &self,
        function: &str,
        call: &Call,
        body: &[u8],
    ) -> Option<Response<Full<Bytes>>> {
        let (operation, key) = match (call.service.as_str(), call.operation.as_str()) {
            ("sqs", "SendMessage") => {
                let queue = call.resource.rsplit(':').next()?;
                ("GenerateDataKey", self.service_keys.get(queue)?)
            }
            ("secretsmanager", "GetSecretValue") => {
                let request: serde_json::Value = serde_json::from_slice(body).ok()?;
                ("Decrypt", self.service_keys.get(request["SecretId"].as_str()?)?)
            }
            _ => return None,
        };
        let via = format!("{}.{}.amazonaws.com", call.service, call.region);
        self.decided_here(function, call, ("kms", operation), key, via)
    }
}

/// The customer key an object is (to be) encrypted with, from S3's headers.
fn customer_key(headers: &HeaderMap) -> Option<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    (header("x-amz-server-side-encryption") == Some("aws:kms"))
        .then(|| header("x-amz-server-side-encryption-aws-kms-key-id").map(str::to_owned))
        .flatten()
}
