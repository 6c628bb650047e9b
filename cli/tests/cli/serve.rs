//! `baton serve` exposed safely: beyond loopback only with credentials of one's own and TLS,
//! a configured secret never printed, https with a certificate, and a private home.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use super::api::{ACCESS_KEY, SECRET_KEY, Server, http, signed};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/tls").join(name)
}

const OWN_KEYS: &str = "\n[api]\naccess_key_id = \"release-bot\"\nsecret_access_key = \"s3cret-that-must-not-print\"\n";

/// Anyone who reached `baton serve` could create a pipeline whose Commands action runs what
/// they like: it listened on every interface with the README's credentials, saying nothing.
#[test]
fn serve_refuses_an_address_beyond_loopback_without_own_credentials_and_tls() {
    let refused = Server::spawn("", &["--bind", "0.0.0.0"], &[]).err().expect("it listened");
    assert!(
        refused.contains("will not listen on 0.0.0.0 with the default credentials"),
        "{refused}"
    );
    assert!(!refused.contains("Listening on"), "{refused}");

    let refused = Server::spawn(OWN_KEYS, &["--bind", "0.0.0.0"], &[]).err().expect("it listened");
    assert!(refused.contains("will not listen on 0.0.0.0 over plain HTTP"), "{refused}");

    // Credentials from the environment count as one's own too; TLS is still wanted.
    let env = [
        ("BATON_API_ACCESS_KEY_ID", "ops"),
        ("BATON_API_SECRET_ACCESS_KEY", "from-the-environment"),
    ];
    let refused = Server::spawn("", &["--bind", "0.0.0.0"], &env).err().expect("it listened");
    assert!(refused.contains("over plain HTTP"), "{refused}");
}

#[test]
fn a_configured_secret_is_never_printed_and_the_default_pair_stops_working() {
    let (server, banner) = Server::spawn(OWN_KEYS, &[], &[]).unwrap();
    assert!(!banner.contains("s3cret-that-must-not-print"), "the secret was printed:\n{banner}");
    assert!(banner.contains("release-bot"), "{banner}");
    assert!(banner.contains("secret access key: from [api] in"), "{banner}");

    let body = b"{}";
    let own = signed(&server, "ListPipelines", body, "release-bot", "s3cret-that-must-not-print");
    assert_eq!(http(&server, &own, body), (200, json!({"pipelines": []})));
    let default = signed(&server, "ListPipelines", body, ACCESS_KEY, SECRET_KEY);
    let (status, reply) = http(&server, &default, body);
    assert_eq!((status, reply["__type"].as_str()), (403, Some("UnrecognizedClientException")));

    // The home is private, whatever the umask made of it.
    let mode = std::fs::metadata(server.home.path()).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn https_with_a_certificate_and_nothing_in_plain_text() {
    let extra = format!(
        "\n[api]\ntls_certificate = \"{}\"\ntls_private_key = \"{}\"\n",
        fixture("loopback.crt").display(),
        fixture("loopback.key").display()
    );
    let (server, banner) = Server::spawn(&extra, &[], &[]).unwrap();
    assert!(server.url.starts_with("https://127.0.0.1:"), "{banner}");
    let body = b"{}";
    let headers = signed(&server, "ListPipelines", body, ACCESS_KEY, SECRET_KEY);
    let (status, reply) = https(&server, &headers, body);
    assert_eq!((status, reply), (200, json!({"pipelines": []})));

    // The baton command over https: trusting the test CA as the AWS CLI would (AWS_CA_BUNDLE),
    // its signed call reaches the API; not trusting it, it refuses to talk, saying why.
    let bundle = fixture("loopback.crt");
    let home = server.home.path();
    let trusted = [("AWS_CA_BUNDLE", bundle.to_str().unwrap())];
    let o = super::remote::baton_with(home, &server.url, &trusted, &["history", "nope"]);
    let err = super::remote::stderr(&o);
    assert!(err.contains("(PipelineNotFoundException)"), "{err}");
    let o = super::remote::baton_with(
        home,
        &server.url,
        &[("AWS_CA_BUNDLE", "")],
        &["history", "nope"],
    );
    let err = super::remote::stderr(&o);
    assert!(err.contains("no trusted TLS connection to https://127.0.0.1:"), "{err}");

    // Plain HTTP to the https port gets no HTTP answer.
    let addr = server.url.trim_start_matches("https://");
    let mut plain = std::net::TcpStream::connect(addr).unwrap();
    plain.set_read_timeout(Some(std::time::Duration::from_secs(15))).unwrap();
    plain.write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(!answer.starts_with(b"HTTP/"), "{}", String::from_utf8_lossy(&answer));
}

/// One request over TLS, trusting only the test certificate: the status and the JSON body.
fn https(server: &Server, headers: &[(String, String)], body: &[u8]) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::TlsConnector;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};

    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(fixture("loopback.crt")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let addr = server.url.trim_start_matches("https://").to_owned();
    let mut request = String::from("POST / HTTP/1.1\r\n");
    for (n, v) in headers {
        request.push_str(&format!("{n}: {v}\r\n"));
    }
    request.push_str(&format!("content-length: {}\r\nconnection: close\r\n\r\n", body.len()));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let response = runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
        tls.write_all(request.as_bytes()).await.unwrap();
        tls.write_all(body).await.unwrap();
        let mut response = Vec::new();
        // A peer that closes without TLS's close_notify ends the read with an error; what
        // arrived before it is the answer.
        let _ = tls.read_to_end(&mut response).await;
        response
    });
    let text = String::from_utf8_lossy(&response).to_string();
    let status = text.split_whitespace().nth(1).unwrap_or_default().parse().unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// ARNs a user builds from their own account (for tags, IAM conditions, event rules) match:
/// the account comes from BATON_ACCOUNT_ID (or `account_id` in baton.toml), or from a 12-digit
/// access key id, as local AWS emulators take it.
#[test]
fn the_account_in_arns_is_the_one_configured_or_the_access_key_s() {
    let arn_of = |server: &Server, key: &str, secret: &str| {
        let body = serde_json::to_vec(&json!({"pipeline": super::api::pipeline()})).unwrap();
        let create = signed(server, "CreatePipeline", &body, key, secret);
        assert_eq!(http(server, &create, &body).0, 200);
        let body = br#"{"name": "app"}"#;
        let get = signed(server, "GetPipeline", body, key, secret);
        let (status, reply) = http(server, &get, body);
        assert_eq!(status, 200, "{reply}");
        reply["metadata"]["pipelineArn"].as_str().unwrap().to_owned()
    };
    let (server, _) = Server::spawn("", &[], &[("BATON_ACCOUNT_ID", "123456789012")]).unwrap();
    assert_eq!(
        arn_of(&server, ACCESS_KEY, SECRET_KEY),
        "arn:aws:codepipeline:us-east-1:123456789012:app"
    );

    let env = [
        ("BATON_API_ACCESS_KEY_ID", "111122223333"),
        ("BATON_API_SECRET_ACCESS_KEY", "a-secret-of-ones-own"),
    ];
    let (server, _) = Server::spawn("", &[], &env).unwrap();
    assert_eq!(
        arn_of(&server, "111122223333", "a-secret-of-ones-own"),
        "arn:aws:codepipeline:us-east-1:111122223333:app"
    );

    let refused =
        Server::spawn("", &[], &[("BATON_ACCOUNT_ID", "12345")]).err().expect("it listened");
    assert!(refused.contains("the account id must be 12 digits, not \"12345\""), "{refused}");
}
