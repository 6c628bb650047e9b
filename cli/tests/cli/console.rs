//! The web console of `baton serve`: a real headless Chromium drives a release through it
//! (live graph, retry, approval, a held transition, stop), and plain HTTP checks what a
//! browser cannot show: forms from elsewhere refused, headers, the audit log, the event stream.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;

use serde_json::{Value, json};

use super::api::{Server, call, raw, run_browser};

/// What a declaration can say that a careless page would run.
const EVIL: &str = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\">";

/// The test pipeline, with an approval whose custom data tries to run script.
fn create(server: &Server) {
    let mut input: Value =
        serde_json::from_str(&std::fs::read_to_string(server.pipeline_file()).unwrap()).unwrap();
    input["pipeline"]["stages"][3]["actions"][0]["configuration"] =
        json!({"CustomData": EVIL, "ExternalEntityLink": "javascript:alert(1)"});
    call(server, "CreatePipeline", &input);
}

/// One HTTP/1.1 request to the server: status, lowercased head, body.
fn request(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
) -> (u16, String, String) {
    raw(server.url.trim_start_matches("http://"), method, path, headers, body)
}

fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a form with a CSRF token") + 19;
    page[at..at + 64].to_owned()
}

fn executions(server: &Server) -> usize {
    let listed = call(server, "ListPipelineExecutions", &json!({"pipelineName": "app"}));
    listed["pipelineExecutionSummaries"].as_array().unwrap().len()
}

#[test]
fn the_console_drives_a_release_in_a_real_browser() {
    let server = Server::start();
    create(&server);
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let pass_flag = server.pass_flag();
    let args = [server.url.as_ref(), pass_flag.as_os_str(), screenshots.as_os_str()];
    run_browser("console_browser.py", &args);
    for shot in [
        "narrow",
        "pipeline-approval",
        "log",
        "pipeline-succeeded",
        "execution-timeline",
        "pipeline-held",
        "pipeline-stopped",
    ] {
        let png = std::fs::read(screenshots.join(format!("{shot}.png"))).unwrap();
        assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{shot} is not a screenshot");
    }

    // What the browser did, as the API and the audit log tell it.
    let listed = call(&server, "ListPipelineExecutions", &json!({"pipelineName": "app"}));
    let statuses: Vec<&str> = listed["pipelineExecutionSummaries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["Succeeded", "Stopped", "Succeeded"], "{listed}");
    let rollback = &listed["pipelineExecutionSummaries"][0];
    assert_eq!(rollback["trigger"]["triggerType"], json!("ManualRollback"), "{rollback}");
    let actions = call(&server, "ListActionExecutions", &json!({"pipelineName": "app"}));
    let approved = actions["actionExecutionDetails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["actionName"] == "Release" && a["status"] == "Succeeded")
        .unwrap_or_else(|| panic!("no approval succeeded: {actions}"));
    assert_eq!(
        approved["output"]["executionResult"]["externalExecutionSummary"],
        json!("ship it from the console")
    );
    let audit = std::fs::read_to_string(server.home.path().join("console-audit.log")).unwrap();
    let lines: Vec<Value> = audit.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let operations: Vec<&str> = lines.iter().map(|l| l["operation"].as_str().unwrap()).collect();
    assert_eq!(
        operations,
        [
            "StartPipelineExecution",
            "RetryStageExecution",
            "PutApprovalResult",
            "DisableStageTransition",
            "StartPipelineExecution",
            "EnableStageTransition",
            "StopPipelineExecution",
            "RollbackStage",
        ],
        "{audit}"
    );
    for line in &lines {
        assert_eq!(line["who"], json!("arn:aws:iam::000000000000:user/baton"), "{line}");
        assert_eq!(line["from"], json!("127.0.0.1"), "{line}");
        assert!(line["refused"].is_null(), "{line}");
        assert!(line["input"].get("token").is_none(), "an approval token was logged: {line}");
    }
}

#[test]
fn forms_from_elsewhere_are_refused_and_pages_allow_no_inline_script() {
    let server = Server::start();
    create(&server);
    let (status, head, page) = request(&server, "GET", "/pipelines/app", &[], "");
    assert_eq!(status, 200, "{page}");
    for header in [
        "content-security-policy: default-src 'none'; script-src 'self'",
        "frame-ancestors 'none'",
        "x-content-type-options: nosniff",
        "cache-control: no-store",
    ] {
        assert!(head.contains(header), "{header} missing from {head}");
    }
    let token = csrf(&page);
    let form = "content-type: application/x-www-form-urlencoded";

    // No token, a wrong one, or the right one from another site's page: nothing starts.
    for (headers, body) in [
        (vec![form], String::new()),
        (vec![form], format!("csrf={}", "0".repeat(64))),
        (vec![form, "sec-fetch-site: cross-site"], format!("csrf={token}")),
    ] {
        let (status, _, answer) = request(&server, "POST", "/pipelines/app/start", &headers, &body);
        assert_eq!(status, 403, "{answer}");
        assert!(answer.contains("did not come from this console"), "{answer}");
    }
    assert_eq!(executions(&server), 0, "a refused form started an execution");
    assert!(!server.home.path().join("console-audit.log").exists(), "a refused form was audited");

    let (status, head, _) = request(
        &server,
        "POST",
        "/pipelines/app/start",
        &[form, "sec-fetch-site: same-origin"],
        &format!("csrf={token}"),
    );
    assert_eq!(status, 303);
    assert!(head.contains("location: /pipelines/app?notice=startpipelineexecution"), "{head}");
    assert_eq!(executions(&server), 1);

    // A refusal from the API comes back as the API's own message on the page.
    let (status, head, _) = request(
        &server,
        "POST",
        "/pipelines/app/retry",
        &[form],
        &format!("csrf={token}&stage=Build&execution=nope&mode=FAILED_ACTIONS"),
    );
    assert_eq!(status, 303);
    assert!(head.contains("retrystageexecution%20was%20refused"), "{head}");

    // Assets are content-hashed and cached for good; another name is not served.
    let js = page.split("<script src=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let (status, head, body) = request(&server, "GET", &js, &[], "");
    assert_eq!(status, 200);
    assert!(head.contains("immutable") && body.contains("EventSource"), "{head}");
    let (status, _, _) =
        request(&server, "GET", "/console/assets/console.000000000000.js", &[], "");
    assert_eq!(status, 404);

    // Logs are found by names the execution knows, never by a path taken from the URL.
    let listed = call(&server, "ListPipelineExecutions", &json!({"pipelineName": "app"}));
    let id =
        listed["pipelineExecutionSummaries"][0]["pipelineExecutionId"].as_str().unwrap().to_owned();
    for (path, said) in [
        (format!("/pipelines/app/executions/{id}/logs/..%2F..%2F..%2Fetc/passwd"), "has not run"),
        (format!("/pipelines/app/executions/{id}/logs/Nowhere/Nothing"), "has not run"),
        (
            "/pipelines/app/executions/not-an-execution/logs/Build/Compile".to_owned(),
            "not-an-execution",
        ),
    ] {
        let (status, _, body) = request(&server, "GET", &path, &[], "");
        assert_eq!(status, 404, "{path}: {body}");
        assert!(body.contains(said) && !body.contains("root:"), "{path}: {body}");
    }

    let (status, _, body) = request(&server, "GET", "/pipelines/nothing-here", &[], "");
    assert_eq!(status, 404);
    assert!(body.contains("nothing-here"), "{body}");
}

#[test]
fn the_event_stream_says_when_a_pipeline_changes() {
    let server = Server::start();
    create(&server);
    let addr = server.url.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(
            format!(
                "GET /console/events HTTP/1.1\r\nhost: {addr}\r\naccept: text/event-stream\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    let mut lines = BufReader::new(stream).lines();
    let status = lines.next().unwrap().unwrap();
    assert!(status.contains("200"), "{status}");
    // The subscription is made when the response starts; only then start.
    let head: Vec<String> =
        lines.by_ref().map_while(Result::ok).take_while(|l| !l.is_empty()).collect();
    assert!(
        head.iter().any(|h| h.eq_ignore_ascii_case("content-type: text/event-stream")),
        "{head:?}"
    );
    call(&server, "StartPipelineExecution", &json!({"name": "app"}));
    let mut seen = Vec::new();
    let change = loop {
        let line = lines.next().expect("the stream ended").expect("nothing arrived in 30 s");
        seen.push(line.clone());
        if let Some(data) = line.strip_prefix("data: ") {
            let d: Value = serde_json::from_str(data).unwrap_or_default();
            if d["type"] == "CodePipeline Pipeline Execution State Change" {
                break d;
            }
        }
    };
    assert_eq!(change["pipeline"], json!("app"), "{seen:?}");
    assert_eq!(change["state"], json!("STARTED"), "{seen:?}");
    assert!(seen.iter().any(|l| l == "event: change"), "{seen:?}");
}

#[test]
fn with_credentials_of_ones_own_the_console_asks_for_them() {
    let env =
        [("BATON_API_ACCESS_KEY_ID", "ops"), ("BATON_API_SECRET_ACCESS_KEY", "a long secret")];
    let (server, _) = Server::spawn("", &[], &env).unwrap();
    let form = "content-type: application/x-www-form-urlencoded";
    for path in ["/", "/pipelines/app", "/console/events"] {
        let (status, head, _) = request(&server, "GET", path, &[], "");
        assert_eq!(status, 303, "{path} without logging in");
        assert!(head.contains("location: /console/login"), "{head}");
    }
    let (status, _, page) = request(&server, "GET", "/console/login", &[], "");
    assert_eq!(status, 200);
    assert!(page.contains("Secret access key"), "{page}");
    let (_, head, _) =
        request(&server, "POST", "/console/login", &[form], "access_key=ops&secret=wrong");
    assert!(
        head.contains("location: /console/login?failed=1") && !head.contains("set-cookie"),
        "{head}"
    );
    let (status, head, _) =
        request(&server, "POST", "/console/login", &[form], "access_key=ops&secret=a+long+secret");
    assert_eq!(status, 303, "{head}");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .unwrap_or_else(|| panic!("no session cookie: {head}"));
    assert!(cookie.contains("httponly") && cookie.contains("samesite=strict"), "{cookie}");
    let session = format!("cookie: {}", cookie.split(';').next().unwrap());
    let (status, _, page) = request(&server, "GET", "/", &[&session], "");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<h1>Pipelines</h1>"), "{page}");
}

/// One GET whose answer is bytes: the lowercased head and the body as sent.
fn get_bytes(server: &Server, path: &str) -> (String, Vec<u8>) {
    use std::io::Read;
    let mut stream = TcpStream::connect(server.url.trim_start_matches("http://")).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut all = Vec::new();
    stream.read_to_end(&mut all).unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP answer") + 4;
    (String::from_utf8_lossy(&all[..split]).to_lowercase(), all[split..].to_vec())
}

/// An action's output artifact has a page with its size and SHA-256, and downloads whole: the
/// bytes are a zip of exactly that size and digest. Only what the execution lists is found.
#[test]
fn an_artifact_shows_its_size_and_digest_and_downloads_whole() {
    use sha2::Digest;
    let server = Server::start();
    create(&server);
    let started = call(&server, "StartPipelineExecution", &json!({"name": "app"}));
    let id = started["pipelineExecutionId"].as_str().unwrap().to_owned();
    super::api::poll("the source's artifact is made", || {
        let listed = call(
            &server,
            "ListActionExecutions",
            &json!({"pipelineName": "app", "filter": {"pipelineExecutionId": id}}),
        );
        let details = listed["actionExecutionDetails"].as_array()?.clone();
        details.into_iter().find(|d| d["actionName"] == "Checkout" && d["status"] == "Succeeded")
    });
    let path = format!("/pipelines/app/executions/{id}/artifacts/Source/Checkout/Src");
    let (_, _, execution) =
        request(&server, "GET", &format!("/pipelines/app/executions/{id}"), &[], "");
    assert!(execution.contains(&format!("href=\"{path}\"")), "the execution links it: {execution}");

    let (status, _, page) = request(&server, "GET", &path, &[], "");
    assert_eq!(status, 200, "{page}");
    let after = |label: &str| -> String {
        let at = page.find(label).unwrap_or_else(|| panic!("{label} missing from {page}"));
        page[at + label.len()..].chars().take_while(char::is_ascii_hexdigit).collect()
    };
    let size: usize = after("<dt>Size</dt><dd>").parse().unwrap();
    let digest = after("<dt>SHA-256</dt><dd><code>");
    assert_eq!(digest.len(), 64, "{page}");

    let (head, body) = get_bytes(&server, &format!("{path}?download=1"));
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: application/zip"), "{head}");
    assert!(head.contains("content-disposition: attachment; filename=\"src.zip\""), "{head}");
    assert!(body.starts_with(b"PK"), "not a zip");
    assert_eq!(body.len(), size, "the page's size is the download's");
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&body)),
        digest,
        "the page's digest is the download's"
    );

    // Names the execution does not list find nothing, whatever they look like.
    for other in ["Source/Checkout/Nope", "Build/Compile/Src", "Source/Checkout/..%2F..%2Fkeys"] {
        let (status, _, answer) = request(
            &server,
            "GET",
            &format!("/pipelines/app/executions/{id}/artifacts/{other}"),
            &[],
            "",
        );
        assert_eq!(status, 404, "{other}: {answer}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(server.home.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".artifact-"))
        .collect();
    assert!(leftovers.is_empty(), "decrypted copies were left behind: {leftovers:?}");
}
