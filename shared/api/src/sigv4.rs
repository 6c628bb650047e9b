//! AWS Signature Version 4, as the control API checks it (and as `baton` signs its own calls).
//!
//! Pure: the caller passes the request's parts and the time. The canonical request is rebuilt
//! from the method, the path, the query, the headers the `Authorization` header says were signed,
//! and the SHA-256 of the body; the signature is then compared in constant time.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The only signing algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// How far the request's time may be from ours, in seconds (AWS allows 15 minutes).
pub const MAX_SKEW_SECS: i64 = 15 * 60;

/// The parts of an HTTP request that a signature covers.
#[derive(Debug, Clone, Copy)]
pub struct Signable<'a> {
    /// `POST`, `GET`...
    pub method: &'a str,
    /// The path as sent, percent-encoded (`/` for the control API).
    pub path: &'a str,
    /// The query string as sent, without `?` (empty for none).
    pub query: &'a str,
    /// Every header of the request; names in any case.
    pub headers: &'a [(String, String)],
    /// The body.
    pub body: &'a [u8],
}

/// Where a signature says it belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected<'a> {
    /// The region the credential must be scoped to.
    pub region: &'a str,
    /// The service the credential must be scoped to (`codepipeline`).
    pub service: &'a str,
    /// Now, in seconds since the Unix epoch.
    pub now: i64,
}

/// Why a request is not authenticated; each is one of AWS's answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header (`MissingAuthenticationTokenException`).
    #[error("Missing Authentication Token")]
    Missing,
    /// The `Authorization` header lacks a part (`IncompleteSignatureException`).
    #[error("{0}")]
    Incomplete(String),
    /// The access key is not one of ours (`UnrecognizedClientException`).
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    /// The signature, its scope or its time is wrong (`InvalidSignatureException`).
    #[error("{0}")]
    Invalid(String),
}

impl AuthError {
    /// The exception name AWS gives this failure.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Missing => "MissingAuthenticationTokenException",
            Self::Incomplete(_) => "IncompleteSignatureException",
            Self::UnknownKey => "UnrecognizedClientException",
            Self::Invalid(_) => "InvalidSignatureException",
        }
    }
}

/// What the `Authorization` header holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Authorization {
    access_key: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
}

/// Checks a request's signature. `secret_for` gives the secret key of an access key id, if it
/// is known. Returns the access key id that signed the request.
///
/// # Errors
/// An [`AuthError`] saying what is wrong, in AWS's words.
pub fn verify(
    request: &Signable<'_>,
    expected: &Expected<'_>,
    secret_for: impl Fn(&str) -> Option<String>,
) -> Result<String, AuthError> {
    verify_as(request, expected, secret_for, Flavor::Service)
}

/// Checks a request signed as S3 signs: the path once encoded, and the payload's hash as the
/// client gave it in `x-amz-content-sha256` (the caller checks the body against it, or takes
/// `UNSIGNED-PAYLOAD`). Returns the access key id that signed the request.
///
/// # Errors
/// As [`verify`]; `x-amz-content-sha256` missing or unsigned is
/// [`AuthError::Incomplete`].
pub fn verify_s3(
    request: &Signable<'_>,
    expected: &Expected<'_>,
    secret_for: impl Fn(&str) -> Option<String>,
) -> Result<String, AuthError> {
    verify_as(request, expected, secret_for, Flavor::S3)
}

/// How a service builds its canonical request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// Every service but S3: the path encoded once more, the body hashed.
    Service,
    /// S3: the path as sent, the payload hash from `x-amz-content-sha256`.
    S3,
}

fn verify_as(
    request: &Signable<'_>,
    expected: &Expected<'_>,
    secret_for: impl Fn(&str) -> Option<String>,
    flavor: Flavor,
) -> Result<String, AuthError> {
    let header = header(request.headers, "authorization").ok_or(AuthError::Missing)?;
    let auth = parse_authorization(header)?;
    let amz_date = header_value(request.headers, "x-amz-date")
        .or_else(|| header_value(request.headers, "date"))
        .ok_or_else(|| {
            AuthError::Incomplete(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                    .into(),
            )
        })?;
    require_signed(request.headers, &auth.signed_headers)?;
    if flavor == Flavor::S3 && !auth.signed_headers.iter().any(|h| h == "x-amz-content-sha256") {
        return Err(AuthError::Incomplete(
            "'X-Amz-Content-SHA256' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    let Some(when) = parse_amz_date(&amz_date) else {
        return Err(AuthError::Incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See http://en.wikipedia.org/wiki/ISO_8601"
        )));
    };
    if auth.service != expected.service {
        return Err(AuthError::Invalid(format!(
            "Credential should be scoped to correct service: '{}'. ",
            expected.service
        )));
    }
    if auth.region != expected.region {
        return Err(AuthError::Invalid(format!(
            "Credential should be scoped to a valid region, not '{}'. ",
            auth.region
        )));
    }
    if !amz_date.starts_with(&auth.date) {
        return Err(AuthError::Invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
            auth.date,
            amz_date.get(..8).unwrap_or(&amz_date)
        )));
    }
    if when < expected.now - MAX_SKEW_SECS {
        return Err(AuthError::Invalid(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
            format_amz_date(expected.now - MAX_SKEW_SECS),
            format_amz_date(expected.now)
        )));
    }
    if when > expected.now + MAX_SKEW_SECS {
        return Err(AuthError::Invalid(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
            format_amz_date(expected.now + MAX_SKEW_SECS),
            format_amz_date(expected.now)
        )));
    }
    let secret = secret_for(&auth.access_key).ok_or(AuthError::UnknownKey)?;
    let canonical = canonical_request(request, &auth.signed_headers, flavor);
    let scope = format!("{}/{}/{}/aws4_request", auth.date, auth.region, auth.service);
    let to_sign = string_to_sign(&amz_date, &scope, &canonical);
    let key = signing_key(&secret, &auth.date, &auth.region, &auth.service);
    let given = hex::decode(&auth.signature).unwrap_or_default();
    if !verify_mac(&key, to_sign.as_bytes(), &given) {
        return Err(AuthError::Invalid(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
                .into(),
        ));
    }
    Ok(auth.access_key)
}

/// Headers a signature must cover when the request carries them: without them a signature
/// made for one operation (`X-Amz-Target`), body type or session would be good for another.
const MUST_SIGN_WHEN_PRESENT: [(&str, &str); 4] = [
    ("x-amz-date", "X-Amz-Date"),
    ("x-amz-target", "X-Amz-Target"),
    ("content-type", "Content-Type"),
    ("x-amz-security-token", "X-Amz-Security-Token"),
];

/// Refuses a signature that leaves out `host`, or a header of [`MUST_SIGN_WHEN_PRESENT`] that
/// the request carries (`date` stands in for `x-amz-date` only when that is absent).
fn require_signed(headers: &[(String, String)], signed: &[String]) -> Result<(), AuthError> {
    let is_signed = |name: &str| signed.iter().any(|h| h == name);
    let refuse = |display: &str| {
        Err(AuthError::Incomplete(format!(
            "'{display}' must be a 'SignedHeader' in the AWS Authorization."
        )))
    };
    if !is_signed("host") {
        return refuse("Host");
    }
    for (name, display) in MUST_SIGN_WHEN_PRESENT {
        if header(headers, name).is_some() && !is_signed(name) {
            return refuse(display);
        }
    }
    if header(headers, "x-amz-date").is_none() && !is_signed("date") {
        return refuse("Date");
    }
    Ok(())
}

/// Keys and scope to sign with.
#[derive(Debug, Clone, Copy)]
pub struct SigningKey<'a> {
    #[allow(missing_docs)]
    pub access_key: &'a str,
    #[allow(missing_docs)]
    pub secret_key: &'a str,
    #[allow(missing_docs)]
    pub region: &'a str,
    #[allow(missing_docs)]
    pub service: &'a str,
}

/// Signs a request: returns the `X-Amz-Date` and `Authorization` values to send. Every header
/// in `request.headers` is signed, so it must hold `host` and nothing a proxy would change.
pub fn sign(request: &Signable<'_>, key: &SigningKey<'_>, now: i64) -> (String, String) {
    sign_as(request, key, now, Flavor::Service)
}

/// Signs a request as S3 checks it: the path as sent, and the payload's hash as the request's
/// `x-amz-content-sha256` header gives it (which must be among its headers).
pub fn sign_s3(request: &Signable<'_>, key: &SigningKey<'_>, now: i64) -> (String, String) {
    sign_as(request, key, now, Flavor::S3)
}

fn sign_as(
    request: &Signable<'_>,
    key: &SigningKey<'_>,
    now: i64,
    flavor: Flavor,
) -> (String, String) {
    let amz_date = format_amz_date(now);
    let date = &amz_date[..8];
    let mut headers = request.headers.to_vec();
    headers.retain(|(n, _)| !n.eq_ignore_ascii_case("x-amz-date"));
    headers.push(("x-amz-date".into(), amz_date.clone()));
    let mut names: Vec<String> = headers.iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
    names.sort();
    names.dedup();
    let with_date = Signable { headers: &headers, ..*request };
    let canonical = canonical_request(&with_date, &names, flavor);
    let scope = format!("{date}/{}/{}/aws4_request", key.region, key.service);
    let to_sign = string_to_sign(&amz_date, &scope, &canonical);
    let signature = hex::encode(hmac(
        &signing_key(key.secret_key, date, key.region, key.service),
        to_sign.as_bytes(),
    ));
    let authorization = format!(
        "{ALGORITHM} Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
        key.access_key,
        names.join(";")
    );
    (amz_date, authorization)
}

fn parse_authorization(header: &str) -> Result<Authorization, AuthError> {
    let Some(rest) = header.strip_prefix(ALGORITHM) else {
        if header.starts_with("AWS4-") || header.starts_with("AWS ") {
            return Err(AuthError::Incomplete(format!(
                "Unsupported AWS 'algorithm': '{}'",
                header.split_whitespace().next().unwrap_or_default()
            )));
        }
        return Err(AuthError::Incomplete(format!(
            "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization={header}"
        )));
    };
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let Some((name, value)) = part.trim().split_once('=') else { continue };
        match name.trim() {
            "Credential" => credential = Some(value.trim().to_string()),
            "SignedHeaders" => signed = Some(value.trim().to_string()),
            "Signature" => signature = Some(value.trim().to_string()),
            _ => {}
        }
    }
    let missing: Vec<&str> = [
        ("Credential", credential.is_none()),
        ("Signature", signature.is_none()),
        ("SignedHeaders", signed.is_none()),
    ]
    .iter()
    .filter(|(_, m)| *m)
    .map(|(n, _)| *n)
    .collect();
    if !missing.is_empty() {
        let parts: Vec<String> = missing
            .iter()
            .map(|n| format!("Authorization header requires '{n}' parameter."))
            .collect();
        return Err(AuthError::Incomplete(format!("{} Authorization={header}", parts.join(" "))));
    }
    let credential = credential.unwrap_or_default();
    let fields: Vec<&str> = credential.split('/').collect();
    let [access_key, date, region, service, terminator] = fields[..] else {
        return Err(AuthError::Incomplete(format!(
            "Credential should have 5 parts (access key, date, region, service, aws4_request), not {}: '{credential}'.",
            fields.len()
        )));
    };
    if terminator != "aws4_request" {
        return Err(AuthError::Invalid(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'. "
        )));
    }
    Ok(Authorization {
        access_key: access_key.into(),
        date: date.into(),
        region: region.into(),
        service: service.into(),
        signed_headers: signed
            .unwrap_or_default()
            .split(';')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect(),
        signature: signature.unwrap_or_default(),
    })
}

/// The canonical request over `signed` (lower-case header names).
fn canonical_request(request: &Signable<'_>, signed: &[String], flavor: Flavor) -> String {
    let mut names: Vec<&String> = signed.iter().collect();
    names.sort();
    let headers: String = names
        .iter()
        .map(|name| format!("{name}:{}\n", header_value(request.headers, name).unwrap_or_default()))
        .collect();
    let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
    let (path, payload) = match flavor {
        Flavor::Service => {
            (canonical_path(request.path), hex::encode(Sha256::digest(request.body)))
        }
        Flavor::S3 => (
            if request.path.is_empty() { "/".into() } else { request.path.to_owned() },
            header_value(request.headers, "x-amz-content-sha256").unwrap_or_default(),
        ),
    };
    format!(
        "{}\n{path}\n{}\n{headers}\n{}\n{payload}",
        request.method,
        canonical_query(request.query),
        names.join(";"),
    )
}

fn string_to_sign(amz_date: &str, scope: &str, canonical: &str) -> String {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical)))
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    hmac(&k, b"aws4_request")
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        // HMAC pads or hashes the key, so any length is accepted.
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = mac(key);
    m.update(data);
    m.finalize().into_bytes().into()
}

fn verify_mac(key: &[u8], data: &[u8], given: &[u8]) -> bool {
    let mut m = mac(key);
    m.update(data);
    m.verify_slice(given).is_ok()
}

/// All values of a header, comma-joined, trimmed and with inner spaces collapsed.
fn header_value(headers: &[(String, String)], name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Each path segment URI-encoded once more, as every service but S3 signs it.
fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    path.split('/').map(|s| encode(s.as_bytes())).collect::<Vec<_>>().join("/")
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (encode(&decode(k)), encode(&decode(v)))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_pair = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex_pair.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// `20150830T123600Z` to seconds since the epoch.
pub fn parse_amz_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, s) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3_600 + mi * 60 + s)
}

/// Seconds since the epoch to `20150830T123600Z`.
pub fn format_amz_date(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3_600, rem % 3_600 / 60, rem % 60)
}

// Howard Hinnant's calendar algorithms: exact for the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests;
