//! Embedded-runtime figures for `make bench`, one per line as `name: value unit`.
//!
//! - W1: 40 sequential stages of one no-op action, end to end, durable writes (median of runs).
//! - W3: one stage of 50 parallel no-op actions, then a join.
//! - W4: 1,000 executions of a 5-stage no-op pipeline started at once in PARALLEL mode.
//! - W5: a 1 GiB artifact through 3 stages (pass-through actions), throughput and peak RSS.
//! - W6: ListPipelineExecutions and GetPipelineState at 1 and at 1,000,000 past executions,
//!   beside 10,000 other pipelines.

#![allow(clippy::unwrap_used)]

mod workloads;

use workloads::{Sizes, w1, w3, w4, w5, w6};

/// As the `baton` binary runs the runtime.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const FULL: Sizes = Sizes {
    stages: 40,
    runs: 5,
    wide: 50,
    executions: 1000,
    bytes: 1 << 30,
    pipelines: 10_000,
    history: 1_000_000,
};

/// Each workload runs in a process of its own, so peak memory is that workload's alone.
fn main() {
    let workload = std::env::args().skip(1).find(|a| a.starts_with('w'));
    let Some(workload) = workload else {
        let me = std::env::current_exe().unwrap();
        for w in ["w1", "w3", "w4", "w5", "w6"] {
            // What the workload before wrote is flushed now, not while the next one is timed.
            workloads::settle_disk();
            let status = std::process::Command::new(&me).arg(w).status().unwrap();
            assert!(status.success(), "{w} failed");
        }
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    match workload.as_str() {
        "w1" => rt.block_on(w1(&FULL)),
        "w3" => rt.block_on(w3(&FULL)),
        "w4" => rt.block_on(w4(&FULL)),
        "w5" => rt.block_on(w5(&FULL)),
        "w6" => rt.block_on(w6(&FULL)),
        other => panic!("unknown workload {other}"),
    }
}
