//! Engine figures for `make bench`, one per line as `name: value unit`.
//!
//! - a 40-stage pipeline of one action per stage, run end to end, repeatedly;
//! - one stage of 50 parallel actions followed by a join stage.
//!
//! Each step applies one input to the state in place, as a handler does after loading it.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use baton_core::engine::*;
use baton_core::plan::{ActionPlan, ExecutionMode, Plan, StagePlan, groups};

fn action(name: String, category: &str, provider: &str) -> ActionPlan {
    let mut action = ActionPlan::new(&name, category, "AWS", provider, 1);
    action.region = "us-east-1".into();
    action.timeout_minutes = 60;
    // Every step resolves a reference, as real configurations do.
    action
        .configuration
        .insert("ProjectName".into(), "bench-#{codepipeline.PipelineExecutionId}".into());
    action
}

fn plan(stages: Vec<Vec<ActionPlan>>) -> Plan {
    Plan {
        name: "bench".into(),
        version: 1,
        mode: ExecutionMode::Superseded,
        account: "111111111111".into(),
        region: "us-east-1".into(),
        event_source: "baton.codepipeline".into(),
        role_arn: None,
        artifact_stores: vec![],
        variables: vec![],
        stages: stages
            .into_iter()
            .enumerate()
            .map(|(i, actions)| StagePlan {
                name: format!("S{i}"),
                groups: groups(&actions),
                actions,
                auto_retry: None,
                conditions: Default::default(),
            })
            .collect(),
    }
}

/// Runs one execution to the end; returns the number of inputs applied.
fn run_once(plan: &Plan, n: u64) -> u64 {
    let mut state = PipelineState::new(plan.stages.len());
    let id = format!("exec-{n}");
    let mut now = 1_700_000_000_000;
    let mut steps = 0;
    let mut pending = vec![Input::Start {
        execution_id: id.clone(),
        trigger: Trigger::default(),
        variables: BTreeMap::new(),
        source_revisions: Default::default(),
    }];
    while let Some(input) = pending.pop() {
        now += 1;
        let step =
            apply(plan, &mut state, &input, Env { now, entropy: u128::from(n) }).expect("accepted");
        steps += 1;
        for effect in step.effects {
            if let Effect::RequestAction(r) = effect {
                pending.push(Input::ActionCompleted {
                    execution_id: r.execution_id,
                    stage: r.stage,
                    action: r.action,
                    attempt: r.attempt,
                    outcome: ActionOutcome::Succeeded {
                        output_variables: BTreeMap::new(),
                        artifacts: vec![],
                        summary: None,
                        external_id: None,
                        external_url: None,
                        targets: Vec::new(),
                    },
                });
            }
        }
    }
    assert_eq!(state.executions[&id].status(), ExecutionStatus::Succeeded);
    black_box(steps)
}

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
    let sequential = plan(
        (0..40)
            .map(|i| {
                vec![action(
                    format!("A{i}"),
                    if i == 0 { "Source" } else { "Build" },
                    if i == 0 { "S3" } else { "CodeBuild" },
                )]
            })
            .collect(),
    );
    measure("engine_sequential_40_stages", &sequential);
    let wide = plan(vec![
        vec![action("Src".into(), "Source", "S3")],
        (0..50).map(|i| action(format!("P{i}"), "Build", "CodeBuild")).collect(),
        vec![action("Join".into(), "Build", "CodeBuild")],
    ]);
    measure("engine_parallel_50_wide", &wide);
}
