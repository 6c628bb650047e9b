//! `baton --endpoint URL proxy`: the stock AWS CLI against a deployment whose API is a Lambda
//! function URL with IAM auth. A loopback server plays the function URL: it accepts only
//! requests signed for `lambda` by a principal it knows (as IAM would), and records what it
//! was asked. The AWS CLI signs for `codepipeline`, as it always does.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use super::api::tool;

/// The principal the function URL's IAM lets in.
const ALLOWED: (&str, &str) = ("AKIAALLOWEDEXAMPLE", "allowed-secret");
/// A principal IAM does not let in.
const DENIED: (&str, &str) = ("AKIADENIEDEXAMPLE1", "denied-secret");

/// What the function URL saw: the access key and the operation of each call it let in or
/// refused.
type Seen = Arc<Mutex<Vec<(String, String, u16)>>>;

fn function_url() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut headers = Vec::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end().to_owned();
                if h.is_empty() {
                    break;
                }
                let (n, v) = h.split_once(':').unwrap();
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
            let header = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
            let length: usize = header("content-length").unwrap().parse().unwrap();
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            let signable = baton::api::sigv4::Signable {
                method: "POST",
                path: "/",
                query: "",
                headers: &headers,
                body: &body,
            };
            let expected =
                baton::api::sigv4::Expected { region: "us-east-1", service: "lambda", now };
            let verdict = baton::api::sigv4::verify(&signable, &expected, |key| {
                (key == ALLOWED.0).then(|| ALLOWED.1.to_owned())
            });
            let key = header("authorization")
                .and_then(|a| {
                    a.split("Credential=")
                        .nth(1)
                        .map(|c| c.split('/').next().unwrap_or_default().to_owned())
                })
                .unwrap_or_default();
            let target = header("x-amz-target").unwrap_or_default();
            let (status, reply) = match verdict {
                Ok(_) => (
                    200,
                    r#"{"pipelines": [{"name": "seen-through-the-function-url", "version": 1}]}"#,
                ),
                Err(_) => (
                    403,
                    r#"{"Message": "Forbidden. For troubleshooting Function URL authorization issues, see: https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"}"#,
                ),
            };
            log.lock().unwrap().push((key, target, status));
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    (url, seen)
}

struct Proxy {
    child: Child,
    url: String,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `baton --endpoint URL proxy` holding `credentials`.
fn proxy(endpoint: &str, credentials: (&str, &str)) -> Proxy {
    let mut command = Command::new(env!("CARGO_BIN_EXE_baton"));
    command
        .env("AWS_ACCESS_KEY_ID", credentials.0)
        .env("AWS_SECRET_ACCESS_KEY", credentials.1)
        .env_remove("AWS_SESSION_TOKEN");
    start_proxy(endpoint, command)
}

fn start_proxy(endpoint: &str, mut command: Command) -> Proxy {
    let mut child = command
        .args(["--endpoint", endpoint, "proxy", "--port", "0", "--region", "us-east-1"])
        .env_remove("BATON_ENDPOINT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("the proxy stopped before listening").unwrap();
        if let Some(url) = line.strip_prefix("Listening on ") {
            break url.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Proxy { child, url }
}

fn aws(proxy: &Proxy, credentials: (&str, &str), home: &Path) -> Output {
    Command::new(tool("BATON_TEST_AWS_CLI", "aws"))
        .args(["codepipeline", "list-pipelines", "--endpoint-url", &proxy.url, "--output", "json"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AWS_ACCESS_KEY_ID", credentials.0)
        .env("AWS_SECRET_ACCESS_KEY", credentials.1)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", home.join("no-aws-config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.join("no-aws-credentials"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_PAGER", "")
        .output()
        .unwrap()
}

#[test]
fn the_aws_cli_reaches_a_function_url_through_the_proxy_and_iam_decides() {
    let home = tempfile::tempdir().unwrap();
    let (url, seen) = function_url();

    // The AWS CLI, signing for codepipeline, gets through: the call arrives signed for lambda
    // by the same principal.
    let allowed = proxy(&url, ALLOWED);
    let o = aws(&allowed, ALLOWED, home.path());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("seen-through-the-function-url"), "{out}");
    assert_eq!(
        seen.lock().unwrap().clone(),
        [(ALLOWED.0.to_owned(), "CodePipeline_20150709.ListPipelines".to_owned(), 200)]
    );

    // Nobody else borrows the proxy's credentials: a call signed with others never leaves it.
    let o = aws(&allowed, DENIED, home.path());
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("UnrecognizedClientException"), "{err}");
    assert_eq!(seen.lock().unwrap().len(), 1, "a borrowed call reached the function URL");

    // A principal IAM does not let in is refused by the function URL, not by the proxy.
    let denied = proxy(&url, DENIED);
    let o = aws(&denied, DENIED, home.path());
    assert!(!o.status.success(), "a denied principal got in");
    let last = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!((last.0.as_str(), last.2), (DENIED.0, 403));
}

/// With no keys in the environment, the proxy signs with what the AWS tools' chain gives: here
/// a profile whose `credential_process` hands out the allowed principal's keys, as an SSO
/// login or any credential helper would.
#[test]
fn without_keys_the_proxy_signs_with_the_aws_profile() {
    let home = tempfile::tempdir().unwrap();
    let (url, seen) = function_url();
    let config = home.path().join("aws-config");
    let process = format!(
        r#"printf '{{"Version": 1, "AccessKeyId": "{}", "SecretAccessKey": "{}"}}'"#,
        ALLOWED.0, ALLOWED.1
    );
    std::fs::write(&config, format!("[profile deploy]\ncredential_process = {process}\n")).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_baton"));
    command
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", home.path().join("no-aws-credentials"))
        .env("AWS_PROFILE", "deploy")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let from_profile = start_proxy(&url, command);
    let o = aws(&from_profile, ALLOWED, home.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let last = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!((last.0.as_str(), last.2), (ALLOWED.0, 200), "signed with the profile's keys");
}

#[test]
fn the_proxy_needs_the_deployments_url() {
    let o = Command::new(env!("CARGO_BIN_EXE_baton"))
        .args(["proxy", "--port", "0"])
        .env_remove("BATON_ENDPOINT")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--endpoint") && err.contains("ApiUrl"), "{err}");
}

#[test]
fn the_console_of_a_deployment_says_in_one_sentence_when_it_cannot_start() {
    let (url, seen) = function_url();
    let console = |args: &[&str], credentials: (&str, &str)| {
        Command::new(env!("CARGO_BIN_EXE_baton"))
            .args(args)
            .args(["console", "--port", "0", "--region", "us-east-1"])
            .env("AWS_ACCESS_KEY_ID", credentials.0)
            .env("AWS_SECRET_ACCESS_KEY", credentials.1)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("BATON_ENDPOINT")
            .output()
            .unwrap()
    };
    let o = console(&["--endpoint", &url], DENIED);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("refused ListPipelines: Forbidden"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one sentence: {err}");
    let asked = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        (asked.0.as_str(), asked.2),
        (DENIED.0, 403),
        "signed for Lambda with the caller's keys"
    );

    let o = console(&[], ALLOWED);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--endpoint") && err.contains("baton serve"), "{err}");
}
