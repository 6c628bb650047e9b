//! Approvals that reach people, on one machine: the notice arrives by mail through a real SMTP
//! server on loopback, its links open a confirmation page, and only the page's POST decides,
//! once.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use baton::adapters::local::smtp_notifier::SmtpSettings;
use baton::embedded::EmbeddedConfig;
use baton::ports::clock::{Clock, ManualClock, SystemClock};
use baton::ports::state::StateStore;
use baton_core::engine::{ActionStatus, ExecutionStatus, Trigger};

use super::embedded::{
    PIPELINE, home_with_repo, start_runtime_for, start_runtime_with, wait_for, waiting_token,
};

/// aiosmtpd, writing every message it receives into a maildir.
pub(crate) struct SmtpServer {
    pub(crate) port: u16,
    maildir: tempfile::TempDir,
    child: Child,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn venv() -> PathBuf {
    std::env::var_os("BATON_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/emu/venv"))
}

impl SmtpServer {
    pub(crate) fn start() -> Self {
        let python = venv().join("bin/python");
        assert!(
            python.exists(),
            "no {}: run `bash scripts/emulators.sh install` (make test does)",
            python.display()
        );
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let maildir = tempfile::tempdir().unwrap();
        let mut child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self { port, maildir, child };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("the SMTP server did not start on port {port}");
    }

    /// A runtime in `home` that mails its notices here, with links under `http://approvals.test`.
    pub(crate) fn config(&self, home: &Path) -> EmbeddedConfig {
        EmbeddedConfig {
            home: home.to_path_buf(),
            quiet: true,
            workers: 4,
            smtp: Some(SmtpSettings {
                host: "127.0.0.1".into(),
                port: self.port,
                from: "Baton <baton@example.invalid>".into(),
                to: vec!["release@example.invalid".into()],
                tls: None,
                username: None,
                password: None,
                ca_file: None,
            }),
            approval_url: Some("http://approvals.test".into()),
            ..EmbeddedConfig::default()
        }
    }

    /// Waits until `count` messages arrived; returns them all, oldest first, decoded.
    pub(crate) async fn wait_for_mail(&self, count: usize) -> Vec<String> {
        let new = self.maildir.path().join("mail/new");
        for _ in 0..200 {
            let mut files: Vec<_> = std::fs::read_dir(&new)
                .map(|d| d.flatten().map(|e| e.path()).collect())
                .unwrap_or_default();
            if files.len() >= count {
                files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
                return files
                    .iter()
                    .map(|f| quoted_printable(&std::fs::read_to_string(f).unwrap()))
                    .collect();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("fewer than {count} mails arrived");
    }
}

/// Undoes quoted-printable (soft line breaks and `=XX`), enough to read links and words.
fn quoted_printable(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The path of the link on the line that starts with `label`.
fn link(mail: &str, label: &str) -> String {
    let line = mail.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("{mail}"));
    let url = line[label.len()..].trim();
    let path = url.strip_prefix("http://approvals.test").unwrap_or_else(|| panic!("{url}"));
    path.to_owned()
}

/// `path` with the character at `at` (counted from the end) changed.
fn altered(path: &str, at: usize) -> String {
    let mut chars: Vec<char> = path.chars().collect();
    let i = chars.len() - 1 - at;
    chars[i] = if chars[i] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_mail_link_shows_a_page_and_only_its_post_decides_once() {
    let smtp = SmtpServer::start();
    let home = home_with_repo(false);
    let running = start_runtime_with(smtp.config(home.path())).await;
    let rt = &running.rt;
    let trigger =
        Trigger { trigger_type: "StartPipelineExecution".into(), trigger_detail: "t".into() };
    let id = rt.trigger.start("app", trigger, Default::default()).await.unwrap();
    let waiting = wait_for(rt, &id, "reached the approval", |e| waiting_token(e).is_some()).await;
    let commit = waiting.outputs["SourceVariables"]["CommitId"].clone();

    let mail = smtp.wait_for_mail(1).await.remove(0);
    assert!(
        mail.contains("Subject: APPROVAL NEEDED: Baton pipeline app for action Gate"),
        "{mail}"
    );
    assert!(mail.contains("To: release@example.invalid"), "{mail}");
    assert!(mail.contains(&format!("commit {commit} \"first\"")), "the revision is named: {mail}");
    // CodePipeline's approval JSON rides along for machines.
    assert!(
        mail.contains("\"pipelineName\":\"app\"") && mail.contains("\"stageName\":\"Approve\"")
    );
    let approve = link(&mail, "Approve: ");
    let reject = link(&mail, "Reject:  ");
    assert_ne!(approve, reject);
    let approvals = &rt.approvals;

    // Opening the link (a mail scanner, a preview) shows the page and decides nothing.
    let page = approvals.serve("GET", &approve, b"").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("Approve this release?") && page.html.contains(&commit));
    assert!(page.html.contains("<form method=\"post\">"));
    // Decisions apply synchronously (no bus hop), so what a GET would have decided is stored
    // by the time it answers: read at once.
    let still = rt.store.execution("app", &id).await.unwrap().unwrap();
    assert_eq!(waiting_token(&still), waiting_token(&waiting), "a GET decided the approval");
    let link_id = approve.split('/').nth(2).unwrap();
    let record = baton::ports::approvals::ApprovalLinks::get_link(rt.store.as_ref(), link_id);
    assert_eq!(record.await.unwrap().unwrap().used, None, "a GET spent the link");

    // A link with one character changed, in the secret or in the id, is refused, and says no more.
    for path in [altered(&approve, 0), altered(&approve, 50), altered(&approve, 60)] {
        for method in ["GET", "POST"] {
            let page = approvals.serve(method, &path, b"name=mallory").await;
            assert_eq!(page.status, 404, "{method} {path}");
            assert!(page.html.contains("This approval link is not valid."));
        }
    }

    let page = approvals.serve("POST", &approve, b"name=Ana+Lima&comment=ship+it").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        page.html.contains("<h1>Approved</h1>") && page.html.contains("Ana Lima (approval link)")
    );

    // The same link again, and the other link of the pair: already decided.
    for path in [&approve, &reject] {
        let page = approvals.serve("POST", path, b"name=Bo").await;
        assert_eq!(page.status, 409, "{}", page.html);
        assert!(
            page.html.contains("already approved by Ana Lima (approval link)"),
            "{}",
            page.html
        );
    }

    let done = wait_for(rt, &id, "ended", |e| e.status().is_ended()).await;
    assert_eq!(done.status(), ExecutionStatus::Succeeded, "{:?}", done.status_summary);
    let gate = &done.stages[2].actions[0];
    assert_eq!(gate.decided_by.as_deref(), Some("Ana Lima (approval link)"));
    assert_eq!(gate.summary.as_deref(), Some("ship it"));
    let _ = running.stop.send(true);
    running.dispatcher.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_past_its_deadline_fails_and_its_links_say_expired() {
    let smtp = SmtpServer::start();
    let home = home_with_repo(false);
    let clock = Arc::new(ManualClock::at(SystemClock.now()));
    let running = start_runtime_with(EmbeddedConfig {
        clock: Some(clock.clone()),
        ..smtp.config(home.path())
    })
    .await;
    let rt = &running.rt;
    let trigger =
        Trigger { trigger_type: "StartPipelineExecution".into(), trigger_detail: "t".into() };
    let id = rt.trigger.start("app", trigger, Default::default()).await.unwrap();
    wait_for(rt, &id, "reached the approval", |e| waiting_token(e).is_some()).await;
    let mail = smtp.wait_for_mail(1).await.remove(0);
    let approve = link(&mail, "Approve: ");

    // The default approval timeout is 7 days.
    clock.advance(7 * 24 * 3600 * 1000 + 1);
    let page = approvals_page(rt, &approve).await;
    assert_eq!(page.status, 410);
    assert!(page.html.contains("<h1>Expired</h1>"), "{}", page.html);
    let refused = rt.approvals.serve("POST", &approve, b"name=late").await;
    assert_eq!(refused.status, 410, "an expired link decides nothing");

    let done = wait_for(rt, &id, "ended", |e| e.status().is_ended()).await;
    assert_eq!(done.status(), ExecutionStatus::Failed);
    let gate = &done.stages[2].actions[0];
    assert_eq!(gate.status, ActionStatus::Failed);
    assert_eq!(gate.error.as_ref().map(|e| e.code.as_str()), Some("TimedOut"));
    // The failure reaches people too.
    let mails = smtp.wait_for_mail(2).await;
    assert!(mails[1].contains("Subject: Pipeline app failed in stage Approve"), "{}", mails[1]);
    let _ = running.stop.send(true);
    running.dispatcher.await.unwrap();
}

async fn approvals_page(rt: &baton::embedded::Embedded, path: &str) -> baton::service::Page {
    rt.approvals.serve("GET", path, b"").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_supersede_waiting_approval_the_older_links_say_which_execution_replaced_them() {
    let smtp = SmtpServer::start();
    let home = home_with_repo(false);
    let pipeline = PIPELINE.replace(
        r#""actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}"#,
        r#""actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
           "configuration": {"SupersedeWaitingApproval": "true"}"#,
    );
    assert_ne!(pipeline, PIPELINE);
    let config = smtp.config(home.path());
    let running = start_runtime_for(config, &pipeline).await;
    let rt = &running.rt;
    let trigger =
        || Trigger { trigger_type: "StartPipelineExecution".into(), trigger_detail: "t".into() };
    let first = rt.trigger.start("app", trigger(), Default::default()).await.unwrap();
    wait_for(rt, &first, "reached the approval", |e| waiting_token(e).is_some()).await;
    let old = link(&smtp.wait_for_mail(1).await[0], "Approve: ");

    let second = rt.trigger.start("app", trigger(), Default::default()).await.unwrap();
    wait_for(rt, &second, "reached the approval", |e| waiting_token(e).is_some()).await;
    let replaced = rt.store.execution("app", &first).await.unwrap().unwrap();
    assert_eq!(replaced.status(), ExecutionStatus::Superseded);
    let page = rt.approvals.serve("POST", &old, b"name=late").await;
    assert_eq!(page.status, 410, "{}", page.html);
    assert!(page.html.contains(&format!("superseded by execution {second}")), "{}", page.html);
    let new = link(&smtp.wait_for_mail(2).await[1], "Approve: ");
    assert_eq!(rt.approvals.serve("GET", &new, b"").await.status, 200);
    let _ = running.stop.send(true);
    running.dispatcher.await.unwrap();
}

/// Keeps the notices it is given.
#[derive(Default)]
struct Kept(std::sync::Mutex<Vec<baton::ports::notices::Notice>>);

#[async_trait::async_trait]
impl baton::ports::notices::Notifier for Kept {
    async fn send(
        &self,
        notice: &baton::ports::notices::Notice,
    ) -> Result<(), baton::ports::notices::NoticeError> {
        self.0.lock().unwrap().push(notice.clone());
        Ok(())
    }
}

/// A link was once spent before its decision was applied: when applying failed, the click was
/// lost and the link said "already used". Now the decision's own write spends it.
#[tokio::test]
async fn a_decision_that_cannot_be_saved_leaves_its_link_usable_on_sqlite() {
    use baton::adapters::local::local_bus::LocalBus;
    use baton::adapters::local::sql_state::SqlStateStore;
    use baton::service::{ApprovalSettings, Approvals};
    use baton_testkit::FailingSaves;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("baton.db");
    let store = Arc::new(SqlStateStore::open(&db).unwrap());
    let bus = Arc::new(LocalBus::open(&db, None).unwrap());
    let (_plan, request) = super::aws_approvals::waiting_at_the_approval(store.as_ref()).await;
    let kept = Arc::new(Kept::default());
    let approvals_over = |state: Arc<dyn StateStore>| {
        Approvals::new(
            state,
            store.clone(),
            bus.clone(),
            kept.clone(),
            Arc::new(SystemClock),
            ApprovalSettings { base_url: "http://approvals.test".into() },
        )
    };
    let approvals = approvals_over(store.clone());
    approvals.handle(&request).await.unwrap();
    let notice = kept.0.lock().unwrap()[0].clone();
    let message: serde_json::Value = serde_json::from_str(&notice.message).unwrap();
    let approve = message["approval"]["approveLink"].as_str().unwrap();
    let approve = approve.trim_start_matches("http://approvals.test").to_owned();

    let failing = approvals_over(Arc::new(FailingSaves::new(store.clone(), 1)));
    let failed = failing.serve("POST", &approve, b"name=Ana").await;
    assert_eq!(failed.status, 503, "{}", failed.html);
    let gate = |e: baton_core::engine::Execution| e.stages[1].actions[0].clone();
    let stored = gate(store.execution("web", "e-1").await.unwrap().unwrap());
    assert_eq!(stored.status, ActionStatus::InProgress, "nothing was decided");

    let page = approvals.serve("POST", &approve, b"name=Ana").await;
    assert_eq!(page.status, 200, "the link still decides: {}", page.html);
    let stored = gate(store.execution("web", "e-1").await.unwrap().unwrap());
    assert_eq!(stored.status, ActionStatus::Succeeded);
    assert_eq!(stored.decided_by.as_deref(), Some("Ana (approval link)"));
    // And it decides once.
    let again = approvals.serve("POST", &approve, b"name=Bo").await;
    assert_eq!(again.status, 409, "{}", again.html);
}
