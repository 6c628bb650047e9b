//! The verifier against signatures made by AWS's own signer (`aws-sigv4`), and against
//! AWS's published example.

use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign as aws_sign};
use aws_sigv4::sign::v4;

use super::*;

const KEY: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const NOW: i64 = 1_440_938_160; // 2015-08-30T12:36:00Z

/// The test key, for our own signer.
const OUR_KEY: SigningKey<'static> = SigningKey {
    access_key: KEY,
    secret_key: SECRET,
    region: "us-east-1",
    service: "codepipeline",
};

/// Headers of a CodePipeline call, signed by `aws-sigv4` at `at`.
fn signed_by_aws(body: &[u8], at: i64, region: &str, service: &str) -> Vec<(String, String)> {
    let mut headers = vec![
        ("host".to_string(), "127.0.0.1:8080".to_string()),
        ("content-type".to_string(), "application/x-amz-json-1.1".to_string()),
        ("x-amz-target".to_string(), "CodePipeline_20150709.ListPipelines".to_string()),
    ];
    let identity = Credentials::new(KEY, SECRET, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(UNIX_EPOCH + Duration::from_secs(at as u64))
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let request = SignableRequest::new(
        "POST",
        "http://127.0.0.1:8080/",
        headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = aws_sign(request, &params).unwrap().into_parts();
    for (name, value) in instructions.headers() {
        headers.push((name.to_string(), value.to_string()));
    }
    headers
}

fn check(headers: &[(String, String)], body: &[u8], now: i64) -> Result<String, AuthError> {
    let request = Signable { method: "POST", path: "/", query: "", headers, body };
    let expected = Expected { region: "us-east-1", service: "codepipeline", now };
    verify(&request, &expected, |k| (k == KEY).then(|| SECRET.to_string()))
}

#[test]
fn a_request_signed_by_aws_sigv4_is_accepted() {
    let body = br#"{"maxResults": 10}"#;
    let headers = signed_by_aws(body, NOW, "us-east-1", "codepipeline");
    assert_eq!(check(&headers, body, NOW + 60), Ok(KEY.to_string()));
}

#[test]
fn a_changed_body_or_signed_header_breaks_the_signature() {
    let body = br#"{"maxResults": 10}"#;
    let headers = signed_by_aws(body, NOW, "us-east-1", "codepipeline");
    let e = check(&headers, br#"{"maxResults": 11}"#, NOW).unwrap_err();
    assert_eq!(e.code(), "InvalidSignatureException");
    assert!(e.to_string().starts_with("The request signature we calculated does not match"));
    let mut other = headers.clone();
    for (n, v) in &mut other {
        if n == "x-amz-target" {
            *v = "CodePipeline_20150709.DeletePipeline".into();
        }
    }
    assert_eq!(check(&other, body, NOW).unwrap_err().code(), "InvalidSignatureException");
}

#[test]
fn a_wrong_secret_is_an_invalid_signature_and_an_unknown_key_is_unrecognized() {
    let body = b"{}";
    let headers = signed_by_aws(body, NOW, "us-east-1", "codepipeline");
    let request = Signable { method: "POST", path: "/", query: "", headers: &headers, body };
    let expected = Expected { region: "us-east-1", service: "codepipeline", now: NOW };
    let wrong = verify(&request, &expected, |_| Some("not-the-secret".into())).unwrap_err();
    assert_eq!(wrong.code(), "InvalidSignatureException");
    let unknown = verify(&request, &expected, |_| None).unwrap_err();
    assert_eq!(unknown, AuthError::UnknownKey);
    assert_eq!(unknown.code(), "UnrecognizedClientException");
}

#[test]
fn another_service_region_or_a_stale_date_is_refused() {
    let body = b"{}";
    let s3 = signed_by_aws(body, NOW, "us-east-1", "s3");
    let e = check(&s3, body, NOW).unwrap_err();
    assert_eq!(e.to_string(), "Credential should be scoped to correct service: 'codepipeline'. ");
    let west = signed_by_aws(body, NOW, "us-west-2", "codepipeline");
    assert_eq!(check(&west, body, NOW).unwrap_err().code(), "InvalidSignatureException");
    let fresh = signed_by_aws(body, NOW, "us-east-1", "codepipeline");
    let late = check(&fresh, body, NOW + MAX_SKEW_SECS + 1).unwrap_err();
    assert!(late.to_string().starts_with("Signature expired: 20150830T123600Z"), "{late}");
    let early = check(&fresh, body, NOW - MAX_SKEW_SECS - 1).unwrap_err();
    assert!(early.to_string().starts_with("Signature not yet current"), "{early}");
    assert!(check(&fresh, body, NOW + MAX_SKEW_SECS).is_ok());
}

#[test]
fn no_authorization_is_missing_and_a_partial_one_is_incomplete() {
    let headers = vec![("host".to_string(), "h".to_string())];
    assert_eq!(check(&headers, b"{}", NOW), Err(AuthError::Missing));
    let mut partial = headers.clone();
    partial.push((
        "authorization".into(),
        format!("{ALGORITHM} Credential={KEY}/20150830/us-east-1/codepipeline/aws4_request"),
    ));
    partial.push(("x-amz-date".into(), "20150830T123600Z".into()));
    let e = check(&partial, b"{}", NOW).unwrap_err();
    assert_eq!(e.code(), "IncompleteSignatureException");
    assert!(e.to_string().contains("requires 'Signature' parameter"), "{e}");
}

#[test]
fn our_signer_agrees_with_aws_sigv4() {
    let body = br#"{"name": "p"}"#;
    let theirs = signed_by_aws(body, NOW, "us-east-1", "codepipeline");
    let base: Vec<(String, String)> = theirs[..3].to_vec();
    let request = Signable { method: "POST", path: "/", query: "", headers: &base, body };
    let (date, ours) = sign(&request, &OUR_KEY, NOW);
    let their_auth = theirs.iter().find(|(n, _)| n == "authorization").unwrap().1.clone();
    assert_eq!(date, "20150830T123600Z");
    assert_eq!(ours, their_auth);
}

/// AWS's documented example ("get-vanilla-query-order-key-case" of the SigV4 test suite): the
/// canonical query sorts and encodes, and the signature is the published one.
#[test]
fn the_published_test_suite_example_verifies() {
    let headers = vec![
        ("Host".to_string(), "example.amazonaws.com".to_string()),
        ("X-Amz-Date".to_string(), "20150830T123600Z".to_string()),
        (
            "Authorization".to_string(),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500".to_string(),
        ),
    ];
    let request = Signable {
        method: "GET",
        path: "/",
        query: "Param2=value2&Param1=value1",
        headers: &headers,
        body: b"",
    };
    let expected = Expected { region: "us-east-1", service: "service", now: NOW };
    assert_eq!(verify(&request, &expected, |_| Some(SECRET.into())), Ok(KEY.to_string()));
}

#[test]
fn amz_dates_round_trip() {
    assert_eq!(parse_amz_date("20150830T123600Z"), Some(NOW));
    assert_eq!(format_amz_date(NOW), "20150830T123600Z");
    assert_eq!(
        parse_amz_date("20240229T000000Z").map(format_amz_date).as_deref(),
        Some("20240229T000000Z")
    );
    assert_eq!(parse_amz_date("2015-08-30T12:36:00Z"), None);
}

/// Headers of a CodePipeline call signed by `aws-sigv4` over only `signed` of them (as a
/// hand-made client could sign), then sent with all of them.
fn signed_over(signed: &[&str], body: &[u8]) -> Vec<(String, String)> {
    let all = signed_by_aws(body, NOW, "us-east-1", "codepipeline");
    let mut base: Vec<(String, String)> =
        all[..3].iter().filter(|(n, _)| signed.contains(&n.as_str())).cloned().collect();
    let request = Signable { method: "POST", path: "/", query: "", headers: &base, body };
    let (date, authorization) = sign(&request, &OUR_KEY, NOW);
    for (n, v) in &all[..3] {
        if !signed.contains(&n.as_str()) {
            base.push((n.clone(), v.clone()));
        }
    }
    base.push(("x-amz-date".into(), date));
    base.push(("authorization".into(), authorization));
    base
}

/// A signature over `host;x-amz-date` alone was good for any operation: `X-Amz-Target` could
/// be changed from a read to a delete. Every header that names what is authorised must be
/// signed when it is sent.
#[test]
fn a_signature_must_cover_the_operation_the_body_type_and_the_date() {
    let body = b"{}";
    let full = signed_over(&["host", "content-type", "x-amz-target"], body);
    assert_eq!(check(&full, body, NOW), Ok(KEY.to_string()));
    for (left_out, display) in [("x-amz-target", "X-Amz-Target"), ("content-type", "Content-Type")]
    {
        let signed: Vec<&str> = ["host", "content-type", "x-amz-target"]
            .into_iter()
            .filter(|h| *h != left_out)
            .collect();
        let mut headers = signed_over(&signed, body);
        // The attack: the operation changed after signing.
        for (n, v) in &mut headers {
            if n == "x-amz-target" {
                *v = "CodePipeline_20150709.DeletePipeline".into();
            }
        }
        let e = check(&headers, body, NOW).unwrap_err();
        assert_eq!(e.code(), "IncompleteSignatureException", "{left_out}");
        assert_eq!(
            e.to_string(),
            format!("'{display}' must be a 'SignedHeader' in the AWS Authorization.")
        );
    }
    // x-amz-date itself, and a session token when one is sent.
    let mut unsigned_date = full.clone();
    for (n, v) in &mut unsigned_date {
        if n == "authorization" {
            *v = v.replace(";x-amz-date", "");
        }
    }
    let e = check(&unsigned_date, body, NOW).unwrap_err();
    assert_eq!(e.to_string(), "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.");
    let mut with_token = full.clone();
    with_token.push(("x-amz-security-token".into(), "session".into()));
    let e = check(&with_token, body, NOW).unwrap_err();
    assert_eq!(
        e.to_string(),
        "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization."
    );
    let mut no_host = full;
    for (n, v) in &mut no_host {
        if n == "authorization" {
            *v = v.replace("SignedHeaders=content-type;host;", "SignedHeaders=content-type;");
        }
    }
    let e = check(&no_host, body, NOW).unwrap_err();
    assert_eq!(e.to_string(), "'Host' must be a 'SignedHeader' in the AWS Authorization.");
}

/// An S3 GET as the console of a deployment signs it: the same signature as `aws-sigv4` makes
/// with S3's settings (the path encoded once, the payload's hash in `x-amz-content-sha256`),
/// and one S3's verifier accepts.
#[test]
fn our_s3_signer_agrees_with_aws_sigv4() {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, UriPathNormalizationMode,
    };
    let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let path = "/bucket/p%401/SourceOutput/1.zip";
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let identity = Credentials::new(KEY, SECRET, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-west-1")
        .name("s3")
        .time(UNIX_EPOCH + Duration::from_secs(NOW as u64))
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let host = [("host", "s3.eu-west-1.amazonaws.com")];
    let request = SignableRequest::new(
        "GET",
        format!("https://s3.eu-west-1.amazonaws.com{path}"),
        host.into_iter(),
        SignableBody::Bytes(&[]),
    )
    .unwrap();
    let (instructions, _) = aws_sign(request, &params).unwrap().into_parts();
    let theirs = instructions.headers().find(|(n, _)| *n == "authorization").unwrap().1.to_owned();

    let headers = vec![
        ("host".to_string(), "s3.eu-west-1.amazonaws.com".to_string()),
        ("x-amz-content-sha256".to_string(), empty.to_string()),
    ];
    let key = SigningKey { region: "eu-west-1", service: "s3", ..OUR_KEY };
    let request = Signable { method: "GET", path, query: "", headers: &headers, body: &[] };
    let (date, ours) = sign_s3(&request, &key, NOW);
    assert_eq!(ours, theirs);

    let mut sent = headers.clone();
    sent.push(("x-amz-date".into(), date));
    sent.push(("authorization".into(), ours));
    let request = Signable { headers: &sent, ..request };
    let expected = Expected { region: "eu-west-1", service: "s3", now: NOW };
    assert_eq!(verify_s3(&request, &expected, |_| Some(SECRET.into())), Ok(KEY.to_string()));
}
