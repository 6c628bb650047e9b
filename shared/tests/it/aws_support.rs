//! AWS on loopback for the adapter tests: one moto server per test binary, SDK configuration
//! pointing at it, and unique resource names.
//!
//! `make test` starts moto itself and exports `BATON_TEST_AWS_ENDPOINT`; without it, the first
//! test that needs AWS starts `moto_server` on a free loopback port and every later test
//! shares it. Tests isolate themselves by naming their tables, buses and queues with
//! [`unique`], never by resetting the server (a reset would wipe the other tests' resources).
//! AWS tests are never skipped: without moto they fail, saying how to get it.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

const ENDPOINT_VARIABLE: &str = "BATON_TEST_AWS_ENDPOINT";

/// The server this binary started; kept (never dropped) so its control pipe stays open.
static SERVER: OnceLock<(String, Child)> = OnceLock::new();

/// The AWS endpoint the tests use: `BATON_TEST_AWS_ENDPOINT`, or a moto server started once
/// for the whole test binary.
pub(crate) async fn endpoint() -> String {
    if let Ok(endpoint) = std::env::var(ENDPOINT_VARIABLE) {
        return endpoint;
    }
    // Starting and probing block for about a second, once; the other tests wait for it.
    tokio::task::spawn_blocking(|| SERVER.get_or_init(start_moto).0.clone())
        .await
        .expect("starting moto_server panicked")
}

/// SDK configuration for `region` on the test endpoint, with moto's conventional static
/// credentials (no real credentials are ever read).
pub(crate) async fn sdk_config(region: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .endpoint_url(endpoint().await)
        .credentials_provider(Credentials::new("testing", "testing", None, None, "static"))
        .load()
        .await
}

/// A resource name no other test (or earlier run against the same server) uses: `prefix`,
/// the time in milliseconds and a counter, lowercase.
pub(crate) fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{millis}-{n}").to_lowercase()
}

/// The installed emulator: moto with DynamoDB's atomic requests (`scripts/moto-server.py`), or
/// a `moto_server` on the PATH.
fn moto_binary() -> Option<PathBuf> {
    let pinned = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/emu/moto-server");
    if pinned.is_file() {
        return Some(pinned);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("moto_server")).find(|p| p.is_file())
}

fn start_moto() -> (String, Child) {
    let moto = moto_binary().unwrap_or_else(|| {
        panic!("moto_server not found: run `bash scripts/emulators.sh install` or `make test`")
    });
    // Port 0 lets the kernel pick a free port; moto binds it right after we release it.
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("no free loopback port")
        .port();
    let log_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/emu");
    std::fs::create_dir_all(&log_dir).expect("cannot create target/emu");
    let log = log_dir.join(format!("moto-test-{port}.log"));
    // moto runs under a shell that holds our end of a pipe on stdin: when this test binary
    // exits (however it exits), the pipe closes, `read` returns, and the shell stops moto.
    // No server outlives the tests, and no PID file is needed.
    let script = r#"
        "$0" -H 127.0.0.1 -p "$1" >"$2" 2>&1 </dev/null &
        moto=$!
        read _ || true
        kill "$moto" 2>/dev/null
        wait "$moto" 2>/dev/null
    "#;
    let child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(&moto)
        .arg(port.to_string())
        .arg(&log)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot run sh to start moto_server");
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !answers(port) {
        assert!(
            Instant::now() < deadline,
            "{} did not answer on {endpoint} within 30 s; see {}",
            moto.display(),
            log.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (endpoint, child)
}

/// Whether moto answers an HTTP request on its management API.
fn answers(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    let mut head = [0u8; 12];
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_exact(&mut head).is_ok()
        && head.starts_with(b"HTTP/1.")
}

/// Drains `queue`, waiting up to `patience` for `expected` messages; returns their bodies.
/// Stops early once `expected` arrived; with `expected == 0` it waits the whole time.
pub(crate) async fn receive(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    expected: usize,
    patience: Duration,
) -> Vec<String> {
    let mut bodies = Vec::new();
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline && (expected == 0 || bodies.len() < expected) {
        let out = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        for m in out.messages() {
            bodies.push(m.body().unwrap_or_default().to_owned());
            if let Some(handle) = m.receipt_handle() {
                sqs.delete_message().queue_url(queue).receipt_handle(handle).send().await.unwrap();
            }
        }
    }
    bodies
}

/// Creates a queue; returns its URL and ARN.
pub(crate) async fn queue(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
    let url = sqs.create_queue().queue_name(name).send().await.unwrap().queue_url.unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let arn =
        attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    (url, arn)
}

/// Every event the table's stream carries, in stream order: what the outbox relay publishes.
pub(crate) async fn stream_events(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> Vec<baton::bus_events::BusEvent> {
    use aws_sdk_dynamodbstreams::types::{AttributeValue as StreamValue, ShardIteratorType};
    let arn = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .unwrap()
        .table
        .and_then(|t| t.latest_stream_arn)
        .expect("the table has a stream");
    let region = client.config().region().map_or("us-east-1".into(), ToString::to_string);
    let streams = aws_sdk_dynamodbstreams::Client::new(&sdk_config(&region).await);
    let description = streams.describe_stream().stream_arn(&arn).send().await.unwrap();
    let mut all = Vec::new();
    for shard in description.stream_description().unwrap().shards() {
        let mut iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id().unwrap())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator;
        while let Some(i) = iterator {
            let out = streams.get_records().shard_iterator(i).send().await.unwrap();
            if out.records().is_empty() {
                break;
            }
            for record in out.records() {
                let image = record.dynamodb().and_then(|d| d.new_image.as_ref());
                // The events may be deflated against executions on the same item.
                let Some(image) = image.filter(|i| i.contains_key("events")) else { continue };
                let item = image
                    .iter()
                    .filter_map(|(name, value)| match value {
                        StreamValue::B(blob) => Some((
                            name.clone(),
                            aws_sdk_dynamodb::types::AttributeValue::B(
                                blob.as_ref().to_vec().into(),
                            ),
                        )),
                        _ => None,
                    })
                    .collect();
                all.extend(baton::adapters::aws::dynamodb_relay::item_events(&item).unwrap());
            }
            iterator = out.next_shard_iterator;
        }
    }
    all
}

/// Sets moto's configuration (`/moto-api/config`), such as running state machines for real.
pub(crate) async fn moto_config(config: &str) {
    let endpoint = endpoint().await;
    let host = endpoint.trim_start_matches("http://").to_owned();
    let request = format!(
        "POST /moto-api/config HTTP/1.0\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{config}",
        config.len()
    );
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&host).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).unwrap();
        let status = reply.split_whitespace().nth(1).unwrap_or_default();
        assert!(status.starts_with('2'), "{reply}");
    })
    .await
    .unwrap();
}

/// Serves `app` (a fake of a service or API) on a free loopback port; returns its URL.
pub(crate) async fn serve_on_loopback(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}
