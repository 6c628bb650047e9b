//! The embedded runtime's workloads, at any size: the benchmark (`main.rs`) runs them at the
//! figures' sizes, and the integration tests (`shared/tests/it`) compile this file as a module
//! and run them small, so `make test` lints and runs them without building the benchmark, one
//! more executable linking the whole workspace.
//!
//! The no-op providers run in process, so the figures are the runtime's own cost: the engine,
//! SQLite, the delivery queue, the artifact store.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use baton::embedded::{Embedded, EmbeddedConfig};
use baton::ports::clock::{Clock, SystemClock};
use baton::ports::provider::{
    ActionProvider, Job, JobResult, LocalArtifact, ProviderError, ProviderRegistry,
};
use baton::ports::state::{Changes, StateStore, Versioned};
use baton_core::declaration::PipelineDocument;
use baton_core::engine::{Execution, Trigger};
use serde_json::json;
use tokio::sync::watch;

/// Succeeds at once; passes its first input through as its output artifacts; records when it
/// finished, for transition latency.
struct NoOp;

#[async_trait]
impl ActionProvider for NoOp {
    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        let output_artifacts = match job.inputs.first() {
            Some(input) => job
                .request
                .output_artifacts
                .iter()
                .map(|name| LocalArtifact { name: name.clone(), ..input.clone() })
                .collect(),
            None => job
                .request
                .output_artifacts
                .iter()
                .map(|name| LocalArtifact::file(name.clone(), source_zip()))
                .collect(),
        };
        let finished = SystemClock.now().to_string();
        Ok(JobResult::Succeeded {
            output_artifacts,
            output_variables: BTreeMap::from([("finished".to_string(), finished)]),
            summary: None,
            external_id: None,
            external_url: None,
        })
    }
}

/// The artifact W5's source action produces.
static SOURCE_ZIP: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

fn source_zip() -> std::path::PathBuf {
    SOURCE_ZIP.get().cloned().unwrap_or_else(|| "/nonexistent".into())
}

fn registry() -> ProviderRegistry {
    let mut r = ProviderRegistry::default();
    r.register("Source", "Custom", "NoOp", Arc::new(NoOp));
    r.register("Build", "Custom", "NoOp", Arc::new(NoOp));
    r
}

fn action(name: &str, category: &str, inputs: &[&str], outputs: &[&str]) -> serde_json::Value {
    json!({"name": name, "actionTypeId": {"category": category, "owner": "Custom", "provider": "NoOp", "version": "1"},
           "inputArtifacts": inputs.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
           "outputArtifacts": outputs.iter().map(|n| json!({"name": n})).collect::<Vec<_>>()})
}

fn pipeline(name: &str, mode: &str, stages: Vec<Vec<serde_json::Value>>) -> PipelineDocument {
    let stages: Vec<_> = stages
        .into_iter()
        .enumerate()
        .map(|(i, actions)| json!({"name": format!("S{i}"), "actions": actions}))
        .collect();
    let doc = json!({"name": name, "roleArn": "arn:aws:iam::111111111111:role/bench", "executionMode": mode,
        "artifactStore": {"type": "S3", "location": "bench"}, "stages": stages});
    PipelineDocument::from_value(doc).unwrap()
}

fn sequential(n: usize) -> PipelineDocument {
    let mut stages = vec![vec![action("Src", "Source", &[], &[])]];
    for i in 1..n {
        stages.push(vec![action(&format!("A{i}"), "Build", &[], &[])]);
    }
    pipeline("w1", "SUPERSEDED", stages)
}

/// How big each workload is: the figures' sizes, or a smoke test's.
pub(crate) struct Sizes {
    /// W1's stages.
    pub(crate) stages: usize,
    /// W1's and W3's timed runs, of which the median is reported.
    pub(crate) runs: usize,
    /// W3's parallel actions.
    pub(crate) wide: usize,
    /// W4's executions.
    pub(crate) executions: usize,
    /// W5's artifact.
    pub(crate) bytes: u64,
    /// W6's other pipelines.
    pub(crate) pipelines: usize,
    /// W6's past executions of the pipeline it reads.
    pub(crate) history: usize,
}

struct Bench {
    rt: Arc<Embedded>,
    stop: watch::Sender<bool>,
    _home: tempfile::TempDir,
}

async fn runtime() -> Bench {
    let home = tempfile::tempdir().unwrap();
    let config = EmbeddedConfig {
        home: home.path().to_path_buf(),
        quiet: true,
        workers: 64,
        providers: Some(registry()),
        ..EmbeddedConfig::default()
    };
    let rt = Arc::new(Embedded::open(&config).unwrap());
    std::mem::forget(rt.try_lock().unwrap());
    let (stop, rx) = watch::channel(false);
    tokio::spawn(Arc::clone(&rt).dispatch(rx));
    Bench { rt, stop, _home: home }
}

async fn run_to_end(rt: &Embedded, pipeline: &str, n: usize) -> Vec<Execution> {
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Trigger {
            trigger_type: "StartPipelineExecution".into(),
            trigger_detail: "bench".into(),
        };
        ids.push(rt.trigger.start(pipeline, t, BTreeMap::new()).await.unwrap());
    }
    let mut done = Vec::with_capacity(n);
    for id in ids {
        loop {
            let e = rt.store.execution(pipeline, &id).await.unwrap();
            if let Some(e) = e.filter(|e| e.status().is_ended()) {
                assert_eq!(format!("{:?}", e.status()), "Succeeded", "{:?}", e.status_summary);
                done.push(e);
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    done
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(v: &mut [i64], p: f64) -> i64 {
    v.sort_unstable();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Time from one action's provider finishing to the next action starting, in milliseconds.
fn transition_latencies(e: &Execution) -> Vec<i64> {
    let runs: Vec<_> = e.stages.iter().flat_map(|s| &s.actions).collect();
    runs.windows(2)
        .filter_map(|w| {
            let finished: i64 = w[0].output_variables.get("finished")?.parse().ok()?;
            Some(w[1].started_at? - finished)
        })
        .collect()
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

pub(crate) async fn w1(size: &Sizes) {
    let b = runtime().await;
    b.rt.put_pipeline(&sequential(size.stages), "us-east-1").await.unwrap();
    run_to_end(&b.rt, "w1", 1).await;
    let mut times = Vec::new();
    for _ in 0..size.runs {
        let start = Instant::now();
        run_to_end(&b.rt, "w1", 1).await;
        times.push(start.elapsed().as_secs_f64());
    }
    let m = median(times);
    println!("w1_sequential_40_stages: {:.3} s", m);
    // Each stage is two transitions: the action requested, and its completion applied.
    println!("w1_per_transition: {:.2} ms", m * 1000.0 / (2 * size.stages) as f64);
    let _ = b.stop.send(true);
}

pub(crate) async fn w3(size: &Sizes) {
    let b = runtime().await;
    let wide: Vec<_> =
        (0..size.wide).map(|i| action(&format!("P{i}"), "Build", &[], &[])).collect();
    let doc = pipeline(
        "w3",
        "SUPERSEDED",
        vec![
            vec![action("Src", "Source", &[], &[])],
            wide,
            vec![action("Join", "Build", &[], &[])],
        ],
    );
    b.rt.put_pipeline(&doc, "us-east-1").await.unwrap();
    run_to_end(&b.rt, "w3", 1).await;
    let mut times = Vec::new();
    for _ in 0..size.runs {
        let start = Instant::now();
        run_to_end(&b.rt, "w3", 1).await;
        times.push(start.elapsed().as_secs_f64());
    }
    println!("w3_parallel_50_then_join: {:.3} s", median(times));
    // The join is entered once per execution however the 50 ends arrive: one advance.
    let journal = std::fs::read_to_string(b.rt.home.join("events.jsonl")).unwrap();
    let mut joins: BTreeMap<String, usize> = BTreeMap::new();
    for line in journal.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        let d = &e["detail"];
        if e["detail-type"] == "CodePipeline Stage Execution State Change"
            && d["stage"] == "S2"
            && d["state"] == "STARTED"
        {
            *joins.entry(d["execution-id"].to_string()).or_default() += 1;
        }
    }
    assert_eq!(joins.len(), size.runs + 1, "every execution entered the join");
    let most = joins.values().copied().max().unwrap_or(0);
    assert_eq!(most, 1, "an execution entered the join {most} times");
    println!("w3_join_advances_per_execution: {most} advances");
    let _ = b.stop.send(true);
}

pub(crate) async fn w4(size: &Sizes) {
    let b = runtime().await;
    let stages = (0..5)
        .map(|i| vec![action(&format!("A{i}"), if i == 0 { "Source" } else { "Build" }, &[], &[])])
        .collect();
    b.rt.put_pipeline(&pipeline("w4", "PARALLEL", stages), "us-east-1").await.unwrap();
    let db = b.rt.store.connection();
    let commits = db.commits();
    let start = Instant::now();
    let done = run_to_end(&b.rt, "w4", size.executions).await;
    let secs = start.elapsed().as_secs_f64();
    let commits = db.commits() - commits;
    let transitions = done.len() * 5 * 2;
    let mut latencies: Vec<i64> = done.iter().flat_map(transition_latencies).collect();
    println!("w4_1000_parallel_executions: {:.2} s", secs);
    println!("w4_transitions_per_second: {:.0} transitions/s", transitions as f64 / secs);
    println!("w4_transitions_per_second.goal: 5000 transitions/s");
    // Group commit: many transitions' writes share one SQLite transaction.
    println!(
        "w4_sqlite_commits_per_transition: {:.2} commits",
        commits as f64 / transitions as f64
    );
    println!("w4_transition_latency_p50: {} ms", percentile(&mut latencies, 0.50));
    println!("w4_transition_latency_p99: {} ms", percentile(&mut latencies, 0.99));
    println!("w4_peak_rss: {:.1} MiB", peak_rss_mib());
    let _ = b.stop.send(true);
}

/// Writes a zip holding one stored (uncompressed) member of `size` pseudo-random bytes.
fn big_zip(path: &std::path::Path, size: u64) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    zip.start_file("payload.bin", options).unwrap();
    let mut chunk = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut written = 0;
    while written < size {
        for b in chunk.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        zip.write_all(&chunk).unwrap();
        written += chunk.len() as u64;
    }
    zip.finish().unwrap();
}

pub(crate) async fn w5(size: &Sizes) {
    let scratch = tempfile::tempdir().unwrap();
    let source = scratch.path().join("source.zip");
    big_zip(&source, size.bytes);
    settle_disk();
    SOURCE_ZIP.set(source).unwrap();
    let b = runtime().await;
    let doc = pipeline(
        "w5",
        "SUPERSEDED",
        vec![
            vec![action("Src", "Source", &[], &["Big"])],
            vec![action("Pass", "Build", &["Big"], &["Big2"])],
            vec![action("Last", "Build", &["Big2"], &[])],
        ],
    );
    b.rt.put_pipeline(&doc, "us-east-1").await.unwrap();
    let start = Instant::now();
    run_to_end(&b.rt, "w5", 1).await;
    let secs = start.elapsed().as_secs_f64();
    // Bytes moved: stored by the source, read and stored by Pass, read by Last.
    println!("w5_1gib_through_3_stages: {:.2} s", secs);
    println!("w5_throughput: {:.0} MiB/s", 4.0 * size.bytes as f64 / f64::from(1 << 20) / secs);
    println!("w5_throughput.goal: 1024 MiB/s");
    println!("w5_peak_rss: {:.1} MiB", peak_rss_mib());
    println!("w5_peak_rss.goal: 64.0 MiB");
    let _ = b.stop.send(true);
}

/// The p99 of `n` calls of `operation` with `body`, in milliseconds.
async fn p99_of(api: &baton::api::ControlApi, operation: &str, body: &serde_json::Value) -> f64 {
    let body = body.to_string();
    let mut times = Vec::with_capacity(100);
    for _ in 0..100 {
        let start = Instant::now();
        let reply =
            api.call(operation, body.as_bytes(), "arn:aws:iam::111111111111:user/bench").await;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    }
    times.sort_by(f64::total_cmp);
    times[(times.len() - 1) * 99 / 100]
}

/// W6: ListPipelineExecutions and GetPipelineState, through CodePipeline's API, with one past
/// execution and with `history`, among `pipelines` others: they should not grow with history.
pub(crate) async fn w6(size: &Sizes) {
    let b = runtime().await;
    let stages =
        vec![vec![action("Src", "Source", &[], &[])], vec![action("B", "Build", &[], &[])]];
    for i in 0..size.pipelines {
        b.rt.put_pipeline(&pipeline(&format!("other-{i}"), "QUEUED", stages.clone()), "us-east-1")
            .await
            .unwrap();
    }
    b.rt.put_pipeline(&pipeline("w6", "QUEUED", stages), "us-east-1").await.unwrap();
    let past = run_to_end(&b.rt, "w6", 1).await.remove(0);
    let credentials = baton::api::Credentials::from([("AKID".to_string(), "secret".to_string())]);
    let api = b.rt.control_api("us-east-1", credentials);
    let list = json!({"pipelineName": "w6"});
    let state = json!({"name": "w6"});
    // At 1 past execution, at a full page (1,000) and at `history`: copies of the one run,
    // older than it, written as the runtime writes executions.
    let mut stored = 1;
    for at in [1, 1_000.min(size.history), size.history] {
        while stored < at {
            let chunk = (at - stored).min(10_000);
            let executions = (stored..stored + chunk)
                .map(|n| {
                    let mut e = past.clone();
                    e.id = format!("{n:08x}-0000-4000-8000-{n:012x}");
                    e.started_at -= n as i64;
                    Versioned { version: 0, value: e }
                })
                .collect();
            let changes = Changes { lanes: None, executions, outbox: Vec::new() };
            b.rt.store.save("w6", changes).await.unwrap();
            stored += chunk;
        }
        let list_p99 = p99_of(&api, "ListPipelineExecutions", &list).await;
        let state_p99 = p99_of(&api, "GetPipelineState", &state).await;
        println!("w6_list_executions_p99_at_{at}: {list_p99:.2} ms");
        println!("w6_get_pipeline_state_p99_at_{at}: {state_p99:.2} ms");
    }
    println!("w6_pipelines: {} pipelines", size.pipelines + 1);
    let _ = b.stop.send(true);
}

/// Writes every dirty page back to disk (`sync`), so a workload's timing does not include the
/// kernel flushing what was written before it (the last workload's files, a setup's input).
pub(crate) fn settle_disk() {
    let _ = std::process::Command::new("sync").status();
}
