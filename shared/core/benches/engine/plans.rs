//! The engine benchmark's plans and its run of one execution: the benchmark (`main.rs`) times
//! them, and the core's integration tests compile this file as a module and run each once, so
//! `make test` lints and runs them without building the benchmark.
//!
//! Each step applies one input to the state in place, as a handler does after loading it.

use std::collections::BTreeMap;
use std::hint::black_box;

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
pub(crate) fn run_once(plan: &Plan, n: u64) -> u64 {
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

pub(crate) fn sequential() -> Plan {
    plan(
        (0..40)
            .map(|i| {
                vec![action(
                    format!("A{i}"),
                    if i == 0 { "Source" } else { "Build" },
                    if i == 0 { "S3" } else { "CodeBuild" },
                )]
            })
            .collect(),
    )
}

pub(crate) fn wide() -> Plan {
    plan(vec![
        vec![action("Src".into(), "Source", "S3")],
        (0..50).map(|i| action(format!("P{i}"), "Build", "CodeBuild")).collect(),
        vec![action("Join".into(), "Build", "CodeBuild")],
    ])
}
