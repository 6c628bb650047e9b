//! What one release costs: requests by service and operation, DynamoDB capacity units,
//! EventBridge events and Lambda invocations per pipeline action, and their price.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::proxy::{Call, by_operation};
use crate::runtime::{Carried, Record};

/// us-east-1 list prices in USD, from the AWS pricing pages as published in January 2025
/// (DynamoDB on-demand after its November 2024 price cut), not re-checked since.
pub mod price {
    /// Lambda, per request.
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// Lambda x86, per GB-second.
    pub const LAMBDA_GB_SECOND: f64 = 0.000_016_666_7;
    /// Lambda arm64 (Graviton), per GB-second: a fifth less.
    pub const LAMBDA_ARM64_GB_SECOND: f64 = 0.000_013_333_4;
    /// EventBridge custom events, per event (64 KB chunk) published.
    pub const EVENTBRIDGE_EVENT: f64 = 1.00 / 1e6;
    /// DynamoDB on-demand, per write request unit.
    pub const DYNAMODB_WRITE_UNIT: f64 = 0.625 / 1e6;
    /// DynamoDB on-demand, per read request unit.
    pub const DYNAMODB_READ_UNIT: f64 = 0.125 / 1e6;
    /// S3 Standard PUT, COPY, POST, LIST, per request.
    pub const S3_WRITE: f64 = 0.005 / 1e3;
    /// S3 Standard GET, HEAD and the rest, per request.
    pub const S3_READ: f64 = 0.0004 / 1e3;
    /// SNS publish, per request.
    pub const SNS_PUBLISH: f64 = 0.50 / 1e6;
    /// SQS, per request.
    pub const SQS_REQUEST: f64 = 0.40 / 1e6;
    /// KMS, per request.
    pub const KMS_REQUEST: f64 = 0.03 / 1e4;
    /// CodePipeline V2, per action execution minute: what Baton replaces.
    pub const CODEPIPELINE_V2_ACTION_MINUTE: f64 = 0.002;
}

/// The measured run.
pub struct Run<'a> {
    /// Actions the execution ran.
    pub actions: usize,
    /// Requests the functions made.
    pub calls: &'a [Call],
    /// Invocations.
    pub records: &'a [Record],
    /// Memory by function, MB.
    pub memory_mb: BTreeMap<String, u64>,
    /// Binary sizes by function, bytes: (as run, zipped) for packages, (as run, 0) for
    /// debug builds.
    pub binary_bytes: BTreeMap<String, (u64, u64)>,
    /// Whether the functions ran from their Lambda packages (`make build`).
    pub packaged: bool,
    /// Start-up (spawn to first `/next`) by function.
    pub startup: BTreeMap<String, Duration>,
    /// Priced as arm64 functions (the template's default), from durations measured here.
    pub arm64: bool,
    /// The buckets the release deploys into: requests to them are the deploy's own work
    /// (the objects an S3 deploy writes), which any orchestrator's user pays alike.
    pub deploy_buckets: Vec<String>,
}

/// Whether S3 bills `operation` as a write (PUT, COPY, POST, LIST) rather than a read.
fn s3_write(operation: &str) -> bool {
    matches!(
        operation,
        "PutObject"
            | "CopyObject"
            | "UploadPart"
            | "UploadPartCopy"
            | "CreateMultipartUpload"
            | "CompleteMultipartUpload"
            | "ListObjects"
            | "ListObjectsV2"
    )
}

/// The figures as `name: value unit` lines.
pub fn render(run: &Run<'_>) -> String {
    let per = |n: f64| n / run.actions.max(1) as f64;
    let mut out = String::new();
    let mut line = |name: &str, value: String, unit: &str| {
        let _ = writeln!(out, "{name}: {value} {unit}");
    };
    line("e2e.release.actions", run.actions.to_string(), "actions");
    line(
        "e2e.requests_per_action.total",
        format!("{:.2}", per(run.calls.len() as f64)),
        "requests",
    );
    for (op, n) in by_operation(run.calls) {
        line(&format!("e2e.requests_per_action.{op}"), format!("{:.2}", per(n as f64)), "requests");
    }
    let mut by_function: BTreeMap<&str, usize> = BTreeMap::new();
    for c in run.calls {
        *by_function.entry(&c.function).or_default() += 1;
    }
    for (f, n) in &by_function {
        line(
            &format!("e2e.requests_per_action.by_function.{f}"),
            format!("{:.2}", per(*n as f64)),
            "requests",
        );
    }
    let write_units: f64 = run.calls.iter().map(|c| c.write_units).sum();
    let read_units: f64 = run.calls.iter().map(|c| c.read_units).sum();
    line("e2e.dynamodb_write_units_per_action", format!("{:.2}", per(write_units)), "WRU");
    line("e2e.dynamodb_write_units_per_action.goal", "4".into(), "WRU");
    let mut by_item: BTreeMap<String, f64> = BTreeMap::new();
    for c in run.calls {
        for (kind, units) in &c.write_units_by_item {
            *by_item.entry(format!("{}:{kind}", c.operation)).or_default() += units;
        }
    }
    for (kind, units) in by_item {
        line(
            &format!("e2e.dynamodb_write_units_per_action.{kind}"),
            format!("{:.2}", per(units)),
            "WRU",
        );
    }
    let mut sizes: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (kind, size) in run.calls.iter().flat_map(|c| c.item_bytes.iter()) {
        sizes.entry(kind).or_default().push(*size);
    }
    for (kind, all) in sizes {
        let mean = all.iter().sum::<usize>() / all.len().max(1);
        line(&format!("e2e.dynamodb_item_bytes_mean.{kind}"), mean.to_string(), "bytes");
        let max = all.iter().max().copied().unwrap_or(0);
        line(&format!("e2e.dynamodb_item_bytes_max.{kind}"), max.to_string(), "bytes");
    }
    line("e2e.dynamodb_read_units_per_action", format!("{:.2}", per(read_units)), "RRU");
    line("e2e.dynamodb_read_units_per_action.goal", "6".into(), "RRU");
    let mut reads: BTreeMap<String, f64> = BTreeMap::new();
    for c in run.calls.iter().filter(|c| c.operation == "GetItem") {
        *reads.entry(format!("{}.{}", c.function, c.read_kind)).or_default() += 1.0;
    }
    for (kind, n) in reads {
        line(&format!("e2e.dynamodb_gets_per_action.{kind}"), format!("{:.2}", per(n)), "requests");
    }
    let mut read_units_by: BTreeMap<String, f64> = BTreeMap::new();
    for c in run.calls.iter().filter(|c| c.read_units > 0.0) {
        let kind = if c.operation == "GetItem" { c.read_kind } else { "query" };
        *read_units_by.entry(format!("{}.{kind}", c.function)).or_default() += c.read_units;
    }
    for (kind, units) in read_units_by {
        line(
            &format!("e2e.dynamodb_read_units_per_action.{kind}"),
            format!("{:.2}", per(units)),
            "RRU",
        );
    }
    let events: Vec<&String> = run.calls.iter().flat_map(|c| c.events.iter()).collect();
    line("e2e.eventbridge_events_per_action", format!("{:.2}", per(events.len() as f64)), "events");
    let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
    for e in &events {
        *by_type.entry(e.replace(' ', "_")).or_default() += 1;
    }
    for (t, n) in by_type {
        line(
            &format!("e2e.eventbridge_events_per_action.{t}"),
            format!("{:.2}", per(n as f64)),
            "events",
        );
    }
    line(
        "e2e.lambda_invocations_per_action",
        format!("{:.2}", per(run.records.len() as f64)),
        "invocations",
    );
    line("e2e.lambda_invocations_per_action.goal", "2".into(), "invocations");
    let mut gb_seconds = 0.0;
    let mut invocations: BTreeMap<&str, usize> = BTreeMap::new();
    for r in run.records {
        *invocations.entry(&r.function).or_default() += 1;
        let memory = run.memory_mb.get(&r.function).copied().unwrap_or(128) as f64 / 1024.0;
        // Lambda bills each invocation by the millisecond.
        gb_seconds += memory * (r.duration.as_millis().max(1) as f64 / 1000.0);
    }
    for (f, n) in invocations {
        line(
            &format!("e2e.lambda_invocations_per_action.{f}"),
            format!("{:.2}", per(n as f64)),
            "invocations",
        );
    }
    let mut by_kind: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for r in run.records {
        *by_kind.entry((&r.function, r.kind.replace(' ', "_"))).or_default() += 1;
    }
    for ((f, kind), n) in by_kind {
        line(
            &format!("e2e.lambda_invocations_per_action.{f}.{kind}"),
            format!("{:.2}", per(n as f64)),
            "invocations",
        );
    }
    line("e2e.lambda_gb_seconds_per_action", format!("{:.4}", per(gb_seconds)), "GB-s");
    let mut durations: BTreeMap<&str, Vec<u128>> = BTreeMap::new();
    for r in run.records {
        durations.entry(&r.function).or_default().push(r.duration.as_millis());
    }
    for (f, all) in durations {
        let max = all.iter().max().copied().unwrap_or(0);
        line(&format!("e2e.lambda_longest_invocation.{f}"), max.to_string(), "ms");
    }

    for (name, value, unit) in hops(run.records) {
        line(&format!("e2e.{name}"), value, unit);
    }

    let count = |service: &str, pred: &dyn Fn(&str) -> bool| {
        run.calls.iter().filter(|c| c.service == service && pred(&c.operation)).count() as f64
    };
    let s3_cost = |calls: &mut dyn Iterator<Item = &Call>| -> f64 {
        calls
            .filter(|c| c.service == "s3")
            .map(|c| if s3_write(&c.operation) { price::S3_WRITE } else { price::S3_READ })
            .sum()
    };
    let deploys_into = |c: &&Call| {
        let bucket = c.path.trim_start_matches('/').split('/').next().unwrap_or_default();
        run.deploy_buckets.iter().any(|b| b == bucket)
    };
    let deploy_targets = s3_cost(&mut run.calls.iter().filter(deploys_into));
    let costs = [
        ("lambda_requests", run.records.len() as f64 * price::LAMBDA_REQUEST),
        (
            "lambda_compute",
            gb_seconds
                * if run.arm64 { price::LAMBDA_ARM64_GB_SECOND } else { price::LAMBDA_GB_SECOND },
        ),
        ("eventbridge", events.len() as f64 * price::EVENTBRIDGE_EVENT),
        (
            "dynamodb",
            write_units * price::DYNAMODB_WRITE_UNIT + read_units * price::DYNAMODB_READ_UNIT,
        ),
        ("s3", s3_cost(&mut run.calls.iter())),
        ("sns", count("sns", &|op| op == "Publish") * price::SNS_PUBLISH),
        ("sqs", count("sqs", &|_| true) * price::SQS_REQUEST),
        ("kms", count("kms", &|_| true) * price::KMS_REQUEST),
    ];
    let total: f64 = costs.iter().map(|(_, c)| c).sum();
    for (name, cost) in costs {
        line(&format!("e2e.cost_per_action.{name}"), format!("{:.9}", per(cost)), "USD");
    }
    line("e2e.cost_per_action.total", format!("{:.9}", per(total)), "USD");
    line("e2e.cost_per_action.goal", "0.000012000".into(), "USD");
    // What Baton itself spends: the total less the deploy's own object writes.
    line("e2e.cost_per_action.deploy_targets", format!("{:.9}", per(deploy_targets)), "USD");
    line("e2e.cost_per_action.orchestration", format!("{:.9}", per(total - deploy_targets)), "USD");
    line(
        "e2e.cost_per_action.codepipeline_v2_one_minute",
        format!("{:.9}", price::CODEPIPELINE_V2_ACTION_MINUTE),
        "USD",
    );
    // Named after what ran: a debug build's size and start-up say little about Lambda's.
    let kind = if run.packaged { "package" } else { "debug_build" };
    for (f, (bytes, zipped)) in &run.binary_bytes {
        line(&format!("e2e.{kind}_size.{f}"), (bytes / 1024).to_string(), "KiB");
        if run.packaged {
            line(&format!("e2e.package_zipped.{f}"), (zipped / 1024).to_string(), "KiB");
        }
    }
    for (f, d) in &run.startup {
        line(
            &format!("e2e.{kind}_startup_to_ready.{f}"),
            format!("{:.1}", d.as_secs_f64() * 1000.0),
            "ms",
        );
    }
    out
}

/// The size of `path` zipped as Lambda takes it (one `bootstrap` entry, deflated).
///
/// # Errors
/// When the file cannot be read.
pub fn zipped_size(path: &std::path::Path) -> std::io::Result<u64> {
    use std::io::Write as _;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("bootstrap", options).map_err(std::io::Error::other)?;
    zip.write_all(&std::fs::read(path)?)?;
    let bytes = zip.finish().map_err(std::io::Error::other)?.into_inner();
    Ok(bytes.len() as u64)
}

/// Published per-hop delays, for the projection. EventBridge to Lambda: about 150 ms at p50
/// since EventBridge's latency improvement of February 2023. DynamoDB stream to Lambda: Lambda
/// polls each shard four times a second (Lambda Developer Guide, "Using AWS Lambda with Amazon
/// DynamoDB"), 125 ms on average, plus the relay's PutEvents, about 25 ms.
const EVENTBRIDGE_HOP_MS: f64 = 150.0;
const STREAM_HOP_MS: f64 = 150.0;

/// The asynchronous hops on the critical path of each transition the harness saw: from an
/// action's end to the next one's start (in the worker, or the approval function that asks
/// for an approval). The next action's request always
/// comes by EventBridge (one hop) from the stream relay (another); when the save that started
/// it did not carry the previous action's end, that end was applied by stage-advance, which it
/// reached by EventBridge first (a third).
fn hops(records: &[Record]) -> Vec<(&'static str, String, &'static str)> {
    let relayed: Vec<&Record> = records.iter().filter(|r| r.kind == "stream").collect();
    let (mut transitions, mut hops, mut by_bus) = (0usize, 0usize, 0usize);
    let starts = |r: &&Record| matches!(r.function.as_str(), "action-worker" | "approval");
    for r in records.iter().filter(starts) {
        let Some(start) = r.carried.iter().find(|c| c.state == "STARTED") else { continue };
        // The stream record (the save) that carried this start, among its relay's batch.
        let same = |c: &Carried| {
            (&c.execution, &c.action, &c.state) == (&start.execution, &start.action, &start.state)
        };
        let Some((batch, saved)) =
            relayed.iter().find_map(|b| Some((b, b.carried.iter().find(|c| same(c))?)))
        else {
            continue;
        };
        let of_execution = || {
            batch
                .carried
                .iter()
                .filter(|c| c.record == saved.record && c.execution == start.execution)
        };
        // The execution's first action, started with the execution, is no transition.
        if of_execution().any(|c| c.action.is_empty() && c.state == "STARTED") {
            continue;
        }
        let ended_with_it = of_execution().any(|c| {
            c.action != start.action && matches!(c.state.as_str(), "SUCCEEDED" | "FAILED")
        });
        transitions += 1;
        hops += if ended_with_it { 2 } else { 3 };
        by_bus += usize::from(!ended_with_it);
    }
    let per = |n: usize| n as f64 / transitions.max(1) as f64;
    let mean = per(hops);
    // The relay's EventBridge hop and the stream's, and EventBridge again for an end by bus.
    let projected = EVENTBRIDGE_HOP_MS + STREAM_HOP_MS + per(by_bus) * EVENTBRIDGE_HOP_MS;
    vec![
        ("critical_path.transitions", transitions.to_string(), "transitions"),
        ("critical_path.hops_per_transition", format!("{mean:.2}"), "hops"),
        ("critical_path.hops_per_transition.goal", "2".into(), "hops"),
        ("critical_path.ends_by_bus_per_transition", format!("{:.2}", per(by_bus)), "ends"),
        ("critical_path.projected_p50_per_transition", format!("{projected:.0}"), "ms"),
        ("critical_path.projected_p50_per_transition.goal", "350".into(), "ms"),
    ]
}
