//! Approvals through `baton serve`: the mail arrives through a real SMTP server, its link opens
//! the confirmation page over HTTP, a real headless Chromium presses the button, and the
//! release carries on. A second use, an altered link and a bare GET decide nothing.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use super::api::{Server, call, poll, raw, run_browser, stage, tool};

/// aiosmtpd writing what it receives into a maildir; killed when dropped.
struct Smtp {
    port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smtp {
    fn start() -> Self {
        let python = tool("BATON_TEST_PYTHON", "python");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir.path().join("mail"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let smtp = Self { port, dir, child };
        poll("the SMTP server listens", || TcpStream::connect(("127.0.0.1", port)).ok());
        smtp
    }

    /// The first mail whose subject contains `subject`, quoted-printable undone.
    fn mail(&self, subject: &str) -> String {
        poll("the approval mail arrives", || {
            let files = std::fs::read_dir(self.dir.path().join("mail/new")).ok()?;
            files
                .flatten()
                .map(|f| std::fs::read_to_string(f.path()).unwrap_or_default())
                .map(|raw| raw.replace("=\r\n", "").replace("=\n", "").replace("=3D", "="))
                .find(|m| m.contains(subject))
        })
    }
}

/// A page request: the status, the headers (lowercase names) and the HTML.
fn page(url: &str, method: &str, form: &str) -> (u16, String, String) {
    let rest = url.trim_start_matches("http://");
    let (addr, path) = rest.split_at(rest.find('/').unwrap());
    raw(addr, method, path, &["content-type: application/x-www-form-urlencoded"], form)
}

fn approval_status(server: &Server) -> Value {
    let state = call(server, "GetPipelineState", &json!({"name": "app"}));
    stage(&state, "Approve")["actionStates"][0]["latestExecution"]["status"].clone()
}

#[test]
fn an_approval_link_from_the_mail_is_approved_in_a_real_browser_once() {
    let smtp = Smtp::start();
    let server = Server::start_with(&format!(
        "\n[smtp]\nhost = \"127.0.0.1\"\nport = {}\nfrom = \"baton@example.invalid\"\n\
         to = [\"release@example.invalid\"]\n",
        smtp.port
    ));
    std::fs::write(server.pass_flag(), "").unwrap();
    let input: Value =
        serde_json::from_str(&std::fs::read_to_string(server.pipeline_file()).unwrap()).unwrap();
    call(&server, "CreatePipeline", &input);
    let started = call(&server, "StartPipelineExecution", &json!({"name": "app"}));
    let id = started["pipelineExecutionId"].as_str().unwrap().to_owned();

    let mail = smtp.mail("APPROVAL NEEDED: Baton pipeline app");
    let link = |label: &str| {
        let line = mail.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("{mail}"));
        line[label.len()..].trim().to_owned()
    };
    let approve = link("Approve: ");
    assert!(approve.starts_with(&format!("{}/approvals/", server.url)), "{approve}");

    let (status, head, html) = page(&approve, "GET", "");
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("Approve this release?") && html.contains("app"));
    assert!(head.contains("referrer-policy: no-referrer"), "{head}");
    assert!(head.contains("cache-control: no-store"), "{head}");
    assert!(head.contains("frame-ancestors 'none'"), "{head}");
    assert_eq!(approval_status(&server), json!("InProgress"), "a GET decided the approval");

    let (status, _, html) = page(&format!("{approve}x"), "POST", "name=mallory");
    assert_eq!(status, 404, "an altered link is refused: {html}");
    assert!(html.contains("This approval link is not valid."));

    let args = [approve.as_str(), id.as_str(), "Browser Tester"];
    run_browser("approval_browser.py", &args.map(std::ffi::OsStr::new));

    poll("the execution succeeds", || {
        let e = call(
            &server,
            "GetPipelineExecution",
            &json!({"pipelineName": "app", "pipelineExecutionId": id}),
        );
        (e["pipelineExecution"]["status"] == "Succeeded").then_some(())
    });
    let (status, _, html) = page(&approve, "POST", "name=again");
    assert_eq!(status, 409, "{html}");
    assert!(html.contains("already approved by Browser Tester (approval link)"), "{html}");
    let actions = call(
        &server,
        "ListActionExecutions",
        &json!({"pipelineName": "app", "filter": {"pipelineExecutionId": id}}),
    );
    let release = actions["actionExecutionDetails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["actionName"] == "Release")
        .unwrap()
        .clone();
    assert_eq!(release["status"], json!("Succeeded"));
    assert_eq!(
        release["output"]["executionResult"]["externalExecutionSummary"],
        json!("looks good in the browser"),
        "{release}"
    );
}
