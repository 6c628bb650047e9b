//! Mail through a relay as mail providers run one (STARTTLS required, then AUTH), on
//! loopback: delivered with the right password and the relay's CA; refused with a wrong
//! password, an unknown CA, or without TLS; and a password that would travel in the clear to
//! another machine is refused before anything is sent.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use baton::adapters::local::smtp_notifier::{SmtpNotifier, SmtpSettings, SmtpTls};
use baton::ports::notices::{Notice, Notifier};

use super::approvals::venv;

struct Relay {
    port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn relay() -> Relay {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/smtp_relay.py");
    let mut child = Command::new(venv().join("bin/python"))
        .arg(script)
        .arg(dir.path())
        .args([&port.to_string(), "baton", "s3cret"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "the relay did not start");
    Relay { port, dir, child }
}

fn settings(relay: &Relay, tls: SmtpTls, password: &str, with_ca: bool) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port: relay.port,
        from: "Baton <baton@example.invalid>".into(),
        to: vec!["release@example.invalid".into()],
        tls: Some(tls),
        username: Some("baton".into()),
        password: Some(password.into()),
        ca_file: with_ca.then(|| relay.dir.path().join("ca.pem")),
    }
}

fn notice() -> Notice {
    Notice { topic: None, subject: "Approval needed".into(), message: "approve".into(), text: None }
}

fn delivered(relay: &Relay) -> usize {
    std::fs::read_dir(relay.dir.path().join("mail/new")).map_or(0, |d| d.count())
}

#[tokio::test]
async fn mail_goes_through_starttls_and_auth_and_nothing_weaker() {
    let relay = relay();
    let good = SmtpNotifier::new(&settings(&relay, SmtpTls::Starttls, "s3cret", true)).unwrap();
    good.send(&notice()).await.expect("delivered over STARTTLS with AUTH");
    assert_eq!(delivered(&relay), 1);

    for (what, s) in [
        ("a wrong password", settings(&relay, SmtpTls::Starttls, "guess", true)),
        ("a relay whose CA is not trusted", settings(&relay, SmtpTls::Starttls, "s3cret", false)),
        ("no TLS to a relay that requires it", settings(&relay, SmtpTls::None, "s3cret", true)),
    ] {
        let notifier = SmtpNotifier::new(&s).unwrap();
        let sent = notifier.send(&notice()).await;
        assert!(sent.is_err(), "sent with {what}");
    }
    assert_eq!(delivered(&relay), 1, "only the good settings delivered");
}

#[test]
fn a_password_in_the_clear_to_another_machine_is_refused_at_start() {
    let s = SmtpSettings {
        host: "smtp.example.com".into(),
        port: 25,
        from: "baton@example.com".into(),
        to: vec![],
        tls: Some(SmtpTls::None),
        username: Some("baton".into()),
        password: Some("s3cret".into()),
        ca_file: None,
    };
    let Err(e) = SmtpNotifier::new(&s) else { panic!("accepted a password in the clear") };
    assert!(e.to_string().contains("in the clear"), "{e}");
}
