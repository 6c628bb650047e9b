//! Engine figures for `make bench`, one per line as `name: value unit`.
//!
//! - a 40-stage pipeline of one action per stage, run end to end, repeatedly;
//! - one stage of 50 parallel actions followed by a join stage.

mod plans;

use std::time::{Duration, Instant};

use baton_core::plan::Plan;
use plans::{run_once, sequential, wide};

fn measure(name: &str, plan: &Plan) {
    // Warm up, then run for about a second.
    run_once(plan, 0);
    let started = Instant::now();
    let (mut steps, mut runs) = (0u64, 0u64);
    while started.elapsed() < Duration::from_secs(1) {
        runs += 1;
        steps += run_once(plan, runs);
    }
    let secs = started.elapsed().as_secs_f64();
    println!("{name}_steps_per_second: {:.0} steps/s", steps as f64 / secs);
    println!("{name}_time_per_step: {:.2} us", secs * 1e6 / steps as f64);
    println!("{name}_execution_time: {:.3} ms", secs * 1e3 / runs as f64);
}

fn main() {
    measure("engine_sequential_40_stages", &sequential());
    measure("engine_parallel_50_wide", &wide());
}
