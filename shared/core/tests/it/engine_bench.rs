//! The engine benchmark's plans, run once: `make test` builds no benchmark.

#[path = "../../benches/engine/plans.rs"]
mod plans;

/// Both plans run once to Succeeded (`run_once` checks): one input to start and one per action
/// requested, so 1 + 40 and 1 + 52 steps.
#[test]
fn both_plans_run_to_the_end() {
    assert_eq!(plans::run_once(&plans::sequential(), 1), 41);
    assert_eq!(plans::run_once(&plans::wide(), 1), 53);
}
