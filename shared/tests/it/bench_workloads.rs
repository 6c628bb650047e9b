//! The embedded benchmark's workloads, run small: `make test` builds no benchmark.

#[path = "../../benches/embedded/workloads.rs"]
mod workloads;

use workloads::{Sizes, w1, w3, w4, w5, w6};

/// Every workload at a small size: each execution runs to Succeeded (the workloads check).
#[tokio::test(flavor = "multi_thread")]
async fn every_workload_runs_to_the_end_at_a_small_size() {
    let size = Sizes {
        stages: 3,
        runs: 1,
        wide: 4,
        executions: 5,
        bytes: 1 << 20,
        pipelines: 3,
        history: 12_001,
    };
    w1(&size).await;
    w3(&size).await;
    w4(&size).await;
    w5(&size).await;
    w6(&size).await;
}
