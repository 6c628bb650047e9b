//! The artifacts lent to job workers on one machine, answered under S3's own protocol
//! (`GetObject`, `HeadObject`, `PutObject`, path-style), so a worker written for CodePipeline
//! reads and writes them with its usual S3 client, signed with the job's own credentials.

use sha2::{Digest, Sha256};

use super::sigv4::{self, AuthError};
use baton_app::ports::job_artifacts::{GrantError, GrantedObjects};

/// An S3 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectReply {
    #[allow(missing_docs)]
    pub status: u16,
    /// Headers to send besides the length.
    pub headers: Vec<(String, String)>,
    #[allow(missing_docs)]
    pub body: Vec<u8>,
}

impl ObjectReply {
    fn error(status: u16, code: &str, message: &str) -> Self {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message></Error>",
            escape(message)
        );
        Self {
            status,
            headers: vec![("content-type".into(), "application/xml".into())],
            body: body.into_bytes(),
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// One S3 request as the transport received it.
#[derive(Debug, Clone, Copy)]
pub struct ObjectRequest<'a> {
    #[allow(missing_docs)]
    pub method: &'a str,
    /// The path as sent: `/<bucket>/<key>`.
    pub path: &'a str,
    #[allow(missing_docs)]
    pub query: &'a str,
    #[allow(missing_docs)]
    pub headers: &'a [(String, String)],
    #[allow(missing_docs)]
    pub body: &'a [u8],
}

/// Answers one S3 request against `granted`, for credentials scoped to `region`; `now` in
/// milliseconds.
pub fn serve(
    granted: &dyn GrantedObjects,
    region: &str,
    request: &ObjectRequest<'_>,
    now: i64,
) -> ObjectReply {
    let signable = sigv4::Signable {
        method: request.method,
        path: request.path,
        query: request.query,
        headers: request.headers,
        body: request.body,
    };
    let expected = sigv4::Expected { region, service: "s3", now: now.div_euclid(1_000) };
    let verified = sigv4::verify_s3(&signable, &expected, |key| {
        granted.credentials(key, now).map(|c| c.secret_access_key)
    });
    let access_key = match verified {
        Ok(key) => key,
        Err(AuthError::UnknownKey) => {
            return ObjectReply::error(
                403,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            );
        }
        Err(AuthError::Invalid(m)) if m.starts_with("The request signature") => {
            return ObjectReply::error(403, "SignatureDoesNotMatch", &m);
        }
        Err(e) => return ObjectReply::error(403, "AccessDenied", &e.to_string()),
    };
    let token = granted.credentials(&access_key, now).map(|c| c.session_token);
    if header(request.headers, "x-amz-security-token") != token.as_deref() {
        return ObjectReply::error(
            400,
            "InvalidToken",
            "The provided token is malformed or otherwise invalid.",
        );
    }
    let Some((bucket, key)) = request.path.trim_start_matches('/').split_once('/') else {
        return ObjectReply::error(403, "AccessDenied", "Access Denied");
    };
    let key = percent_decode(key);
    match request.method {
        "GET" | "HEAD" => read(granted, &access_key, bucket, &key, request),
        "PUT" => write(granted, &access_key, bucket, &key, request),
        _ => ObjectReply::error(
            501,
            "NotImplemented",
            "Only GetObject, HeadObject and PutObject are served for job artifacts.",
        ),
    }
}

fn read(
    granted: &dyn GrantedObjects,
    access_key: &str,
    bucket: &str,
    key: &str,
    request: &ObjectRequest<'_>,
) -> ObjectReply {
    let path = match granted.readable(access_key, bucket, key) {
        Ok(path) => path,
        Err(e) => return grant_error(&e),
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(_) => return ObjectReply::error(404, "NoSuchKey", "The specified key does not exist."),
    };
    let etag = format!("\"{}\"", hex::encode(&Sha256::digest(&bytes)[..16]));
    let mut headers = vec![
        ("content-type".to_owned(), "application/zip".to_owned()),
        ("etag".to_owned(), etag),
        ("accept-ranges".to_owned(), "bytes".to_owned()),
    ];
    let total = bytes.len();
    let (status, body) = match header(request.headers, "range").and_then(|r| range(r, total)) {
        Some((from, to)) => {
            headers.push(("content-range".into(), format!("bytes {from}-{to}/{total}")));
            (206, bytes[from..=to].to_vec())
        }
        None => (200, bytes),
    };
    if request.method == "HEAD" {
        headers.push(("content-length".into(), body.len().to_string()));
        return ObjectReply { status, headers, body: Vec::new() };
    }
    ObjectReply { status, headers, body }
}

fn write(
    granted: &dyn GrantedObjects,
    access_key: &str,
    bucket: &str,
    key: &str,
    request: &ObjectRequest<'_>,
) -> ObjectReply {
    let claimed = header(request.headers, "x-amz-content-sha256").unwrap_or_default();
    let digest = hex::encode(Sha256::digest(request.body));
    if claimed != "UNSIGNED-PAYLOAD" && claimed != digest {
        return ObjectReply::error(
            400,
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        );
    }
    match granted.write(access_key, bucket, key, request.body) {
        Ok(()) => ObjectReply {
            status: 200,
            headers: vec![("etag".into(), format!("\"{}\"", &digest[..32]))],
            body: Vec::new(),
        },
        Err(e) => grant_error(&e),
    }
}

fn grant_error(e: &GrantError) -> ObjectReply {
    match e {
        GrantError::UnknownKey => ObjectReply::error(
            403,
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        ),
        GrantError::Denied => ObjectReply::error(403, "AccessDenied", "Access Denied"),
        GrantError::NoSuchKey => {
            ObjectReply::error(404, "NoSuchKey", "The specified key does not exist.")
        }
        GrantError::Unavailable(_) => ObjectReply::error(
            500,
            "InternalError",
            "We encountered an internal error. Please try again.",
        ),
    }
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` within `total` bytes, as inclusive bounds.
fn range(value: &str, total: usize) -> Option<(usize, usize)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    if total == 0 {
        return None;
    }
    let (from, to) = match (a.trim(), b.trim()) {
        ("", n) => (total.saturating_sub(n.parse().ok()?), total - 1),
        (a, "") => (a.parse().ok()?, total - 1),
        (a, b) => (a.parse().ok()?, b.parse::<usize>().ok()?.min(total - 1)),
    };
    (from <= to).then_some((from, to))
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::range;

    #[test]
    fn ranges_are_read_as_s3_reads_them() {
        assert_eq!(range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(range("bytes=95-200", 100), Some((95, 99)));
        assert_eq!(range("bytes=50-10", 100), None);
        assert_eq!(range("items=0-1", 100), None);
    }
}
