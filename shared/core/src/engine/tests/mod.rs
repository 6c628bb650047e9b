//! Given/when/then tests of each transition and each duplicate or stale arm.

use std::collections::BTreeMap;

use super::*;
use crate::plan::{ActionPlan, ExecutionMode, Plan, RetryMode, StagePlan, groups};

fn action(name: &str, category: &str, provider: &str, run_order: u32) -> ActionPlan {
    ActionPlan {
        region: "us-east-1".into(),
        ..ActionPlan::new(name, category, "AWS", provider, run_order)
    }
}

fn build(name: &str, order: u32) -> ActionPlan {
    action(name, "Build", "CodeBuild", order)
}

fn plan(mode: ExecutionMode, stages: Vec<(&str, Vec<ActionPlan>)>) -> Plan {
    Plan {
        name: "p".into(),
        version: 1,
        mode,
        account: "111111111111".into(),
        region: "us-east-1".into(),
        event_source: "baton.codepipeline".into(),
        role_arn: None,
        artifact_stores: vec![],
        variables: vec![],
        stages: stages
            .into_iter()
            .map(|(n, actions)| StagePlan {
                name: n.into(),
                groups: groups(&actions),
                actions,
                auto_retry: None,
                conditions: Default::default(),
            })
            .collect(),
    }
}

/// Source -> Build -> Deploy, one action each.
fn three_stages(mode: ExecutionMode) -> Plan {
    plan(
        mode,
        vec![
            ("Source", vec![action("Src", "Source", "CodeCommit", 1)]),
            ("Build", vec![build("Compile", 1)]),
            ("Deploy", vec![action("Ship", "Deploy", "S3", 1)]),
        ],
    )
}

struct World {
    plan: Plan,
    state: PipelineState,
    now: Millis,
}

impl World {
    fn given(plan: Plan) -> Self {
        let state = PipelineState::new(plan.stages.len());
        Self { plan, state, now: 1_700_000_000_000 }
    }

    fn when(&mut self, input: Input) -> Result<Step, Rejection> {
        self.now += 1000;
        let env = Env { now: self.now, entropy: u128::from(self.now as u64) << 3 };
        apply(&self.plan, &mut self.state, &input, env)
    }

    fn ok(&mut self, input: Input) -> Step {
        self.when(input).expect("input accepted")
    }

    fn start(&mut self, id: &str) -> Step {
        self.ok(Input::Start {
            execution_id: id.into(),
            trigger: Trigger::default(),
            variables: BTreeMap::new(),
            source_revisions: Default::default(),
        })
    }

    fn finish(&mut self, id: &str, stage: &str, action: &str, ok: bool) -> Step {
        let attempt = self.action(id, stage, action).attempt;
        self.ok(completion(id, stage, action, attempt, ok))
    }

    fn exec(&self, id: &str) -> &Execution {
        &self.state.executions[id]
    }

    fn action(&self, id: &str, stage: &str, action: &str) -> &ActionRun {
        let s = self.plan.stage_index(stage).unwrap();
        let a = self.plan.stages[s].action_index(action).unwrap();
        &self.exec(id).stages[s].actions[a]
    }

    fn status(&self, id: &str) -> ExecutionStatus {
        self.exec(id).status()
    }
}

fn completion(id: &str, stage: &str, action: &str, attempt: u32, ok: bool) -> Input {
    let outcome = if ok {
        ActionOutcome::Succeeded {
            output_variables: BTreeMap::new(),
            artifacts: vec![],
            summary: None,
            external_id: None,
            external_url: None,
            targets: Vec::new(),
        }
    } else {
        ActionOutcome::Failed {
            error: ActionError { code: "JobFailed".into(), message: "boom".into() },
            external_id: None,
            external_url: None,
            targets: Vec::new(),
        }
    };
    Input::ActionCompleted {
        execution_id: id.into(),
        stage: stage.into(),
        action: action.into(),
        attempt,
        outcome,
    }
}

fn requested(step: &Step) -> Vec<String> {
    step.effects
        .iter()
        .filter_map(|e| match e {
            Effect::RequestAction(r) => Some(format!("{}/{}#{}", r.stage, r.action, r.attempt)),
            _ => None,
        })
        .collect()
}

fn published(step: &Step) -> Vec<String> {
    step.effects
        .iter()
        .filter_map(|e| match e {
            Effect::Publish(p) => {
                let d = &p.detail;
                let place = [d.get("stage"), d.get("action")]
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join("/");
                Some(
                    format!("{} {}", place, d["state"].as_str().unwrap_or_default())
                        .trim()
                        .to_string(),
                )
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_start_enters_the_first_stage_and_requests_its_actions() {
    let mut w = World::given(three_stages(ExecutionMode::Superseded));
    let step = w.start("e1");
    assert_eq!(requested(&step), vec!["Source/Src#1"]);
    assert_eq!(published(&step), vec!["STARTED", "Source STARTED", "Source/Src STARTED"]);
    assert_eq!(w.exec("e1").place(), Place::InStage(0));
}

#[test]
fn an_execution_runs_every_stage_in_order_and_succeeds() {
    let mut w = World::given(three_stages(ExecutionMode::Superseded));
    w.start("e1");
    assert_eq!(requested(&w.finish("e1", "Source", "Src", true)), vec!["Build/Compile#1"]);
    assert_eq!(requested(&w.finish("e1", "Build", "Compile", true)), vec!["Deploy/Ship#1"]);
    let last = w.finish("e1", "Deploy", "Ship", true);
    assert_eq!(published(&last), vec!["Deploy/Ship SUCCEEDED", "Deploy SUCCEEDED", "SUCCEEDED"]);
    assert_eq!(w.status("e1"), ExecutionStatus::Succeeded);
    assert!(w.state.lanes.holders.iter().all(Option::is_none));
}

#[test]
fn run_order_groups_run_in_order_and_actions_of_a_group_in_parallel() {
    let mut w = World::given(plan(
        ExecutionMode::Superseded,
        vec![
            ("Source", vec![action("Src", "Source", "S3", 1)]),
            ("Test", vec![build("A", 1), build("B", 1), build("C", 2)]),
        ],
    ));
    w.start("e1");
    assert_eq!(requested(&w.finish("e1", "Source", "Src", true)), vec!["Test/A#1", "Test/B#1"]);
    assert!(requested(&w.finish("e1", "Test", "A", true)).is_empty(), "B still runs");
    assert_eq!(requested(&w.finish("e1", "Test", "B", true)), vec!["Test/C#1"]);
}

#[test]
fn a_stage_fails_only_after_the_other_actions_of_its_group_finish() {
    let mut w = World::given(plan(
        ExecutionMode::Superseded,
        vec![
            ("Source", vec![action("Src", "Source", "S3", 1)]),
            ("Test", vec![build("A", 1), build("B", 1), build("C", 2)]),
            ("Deploy", vec![action("Ship", "Deploy", "S3", 1)]),
        ],
    ));
    w.start("e1");
    w.finish("e1", "Source", "Src", true);
    let step = w.finish("e1", "Test", "A", false);
    assert_eq!(published(&step), vec!["Test/A FAILED"]);
    assert_eq!(w.status("e1"), ExecutionStatus::InProgress);
    let step = w.finish("e1", "Test", "B", true);
    assert!(requested(&step).is_empty(), "C and Deploy never start");
    assert_eq!(published(&step), vec!["Test/B SUCCEEDED", "Test FAILED", "FAILED"]);
    assert_eq!(w.status("e1"), ExecutionStatus::Failed);
    assert_eq!(w.exec("e1").stages[2].status, None);
    assert!(
        step.effects.iter().any(|e| matches!(e, Effect::NotifyFailure(n) if n.stage == "Test"))
    );
}

#[test]
fn a_duplicate_action_completed_changes_nothing() {
    let mut w = World::given(three_stages(ExecutionMode::Superseded));
    w.start("e1");
    let input = completion("e1", "Source", "Src", 1, true);
    w.ok(input.clone());
    let before = w.state.clone();
    let again = w.ok(input);
    assert!(again.is_noop());
    assert_eq!(w.state, before);
}

#[test]
fn a_completion_for_an_older_attempt_changes_nothing() {
    let mut w = World::given(three_stages(ExecutionMode::Superseded));
    w.start("e1");
    w.finish("e1", "Source", "Src", true);
    w.finish("e1", "Build", "Compile", false);
    w.ok(Input::Retry {
        execution_id: "e1".into(),
        stage: "Build".into(),
        mode: RetryMode::FailedActions,
    });
    assert_eq!(w.action("e1", "Build", "Compile").attempt, 2);
    let before = w.state.clone();
    assert!(w.ok(completion("e1", "Build", "Compile", 1, true)).is_noop());
    assert_eq!(w.state, before);
}

#[test]
fn a_duplicate_start_changes_nothing() {
    let mut w = World::given(three_stages(ExecutionMode::Superseded));
    w.start("e1");
    let before = w.state.clone();
    assert!(w.start("e1").is_noop());
    assert_eq!(w.state, before);
}

#[test]
fn a_completion_for_an_unknown_execution_or_action_is_rejected() {
    let mut w = World::given(three_stages(ExecutionMode::Superseded));
    assert_eq!(
        w.when(completion("nope", "Source", "Src", 1, true)),
        Err(Rejection::ExecutionNotFound("nope".into()))
    );
    w.start("e1");
    assert!(matches!(
        w.when(completion("e1", "Source", "Nope", 1, true)),
        Err(Rejection::ActionNotFound { .. })
    ));
}

#[test]
fn a_disabled_transition_holds_executions_until_it_is_enabled() {
    let mut w = World::given(three_stages(ExecutionMode::Superseded));
    w.ok(Input::DisableTransition { stage: "Build".into(), reason: "freeze".into(), by: None });
    w.start("e1");
    assert!(requested(&w.finish("e1", "Source", "Src", true)).is_empty());
    assert_eq!(w.exec("e1").place(), Place::Waiting(1));
    assert!(
        w.ok(Input::DisableTransition { stage: "Build".into(), reason: "again".into(), by: None })
            .is_noop()
    );
    let step = w.ok(Input::EnableTransition { stage: "Build".into() });
    assert_eq!(requested(&step), vec!["Build/Compile#1"]);
    assert!(w.ok(Input::EnableTransition { stage: "Build".into() }).is_noop());
}

#[test]
fn in_superseded_mode_a_newer_waiting_execution_supersedes_an_older_one() {
    let mut w = World::given(three_stages(ExecutionMode::Superseded));
    w.start("e1");
    w.finish("e1", "Source", "Src", true); // e1 holds Build
    w.start("e2");
    w.finish("e2", "Source", "Src", true); // e2 waits before Build
    w.start("e3");
    let step = w.finish("e3", "Source", "Src", true); // e3 waits too and supersedes e2
    assert_eq!(w.status("e2"), ExecutionStatus::Superseded);
    assert!(published(&step).contains(&"SUPERSEDED".to_string()));
    assert_eq!(w.exec("e3").place(), Place::Waiting(1));
    let step = w.finish("e1", "Build", "Compile", true);
    // e1 leaves Build (letting e3 in) before it joins the line for Deploy.
    assert_eq!(requested(&step), vec!["Build/Compile#1", "Deploy/Ship#1"]);
    assert_eq!(w.exec("e3").place(), Place::InStage(1));
}

#[test]
fn in_superseded_mode_a_start_waits_while_the_first_stage_is_held() {
    let mut w = World::given(three_stages(ExecutionMode::Superseded));
    w.start("e1");
    assert!(requested(&w.start("e2")).is_empty());
    w.start("e3");
    assert_eq!(w.status("e2"), ExecutionStatus::Superseded);
    assert_eq!(
        requested(&w.finish("e1", "Source", "Src", true)),
        vec!["Source/Src#1", "Build/Compile#1"]
    );
}

#[test]
fn in_queued_mode_waiting_executions_go_first_in_first_out() {
    let mut w = World::given(three_stages(ExecutionMode::Queued));
    w.start("e1");
    w.start("e2");
    w.start("e3");
    assert_eq!(w.status("e2"), ExecutionStatus::InProgress);
    w.finish("e1", "Source", "Src", true);
    assert_eq!(w.exec("e2").place(), Place::InStage(0));
    assert_eq!(w.exec("e3").place(), Place::Waiting(0));
    w.finish("e2", "Source", "Src", true);
    assert_eq!(w.exec("e3").place(), Place::InStage(0));
}

#[test]
fn in_parallel_mode_executions_share_stages() {
    let mut w = World::given(three_stages(ExecutionMode::Parallel));
    w.start("e1");
    w.start("e2");
    assert_eq!(w.exec("e1").place(), Place::InStage(0));
    assert_eq!(w.exec("e2").place(), Place::InStage(0));
    assert!(w.state.lanes.holders.iter().all(Option::is_none));
}

#[test]
fn parallel_executions_start_and_move_without_writing_the_lanes() {
    // The lanes are one item per pipeline: written by every start and stage entry, they would
    // serialise a PARALLEL pipeline's executions on it.
    let mut w = World::given(three_stages(ExecutionMode::Parallel));
    let fresh = w.state.lanes.clone();
    for id in ["e1", "e2"] {
        assert!(!w.start(id).lanes_changed, "{id}'s start wrote the lanes");
    }
    let step = w.finish("e1", "Source", "Src", true);
    assert!(!step.lanes_changed, "entering Build wrote the lanes");
    assert_eq!(w.exec("e1").place(), Place::InStage(1));
    assert_eq!(w.state.lanes, fresh);

    // A disabled transition still holds executions at its door, in the lanes.
    w.ok(Input::DisableTransition { stage: "Build".into(), reason: "freeze".into(), by: None });
    let step = w.finish("e2", "Source", "Src", true);
    assert!(step.lanes_changed);
    assert_eq!(w.exec("e2").place(), Place::Waiting(1));
    w.ok(Input::EnableTransition { stage: "Build".into() });
    assert_eq!(w.exec("e2").place(), Place::InStage(1));
    assert!(w.state.lanes.waiting[1].is_empty());
}

#[test]
fn stop_and_wait_lets_running_actions_finish_then_stops() {
    let mut w = World::given(three_stages(ExecutionMode::Superseded));
    w.start("e1");
    let step =
        w.ok(Input::Stop { execution_id: "e1".into(), abandon: false, reason: "hold".into() });
    assert_eq!(published(&step), vec!["STOPPING", "Source STOPPING"]);
    assert_eq!(w.status("e1"), ExecutionStatus::Stopping);
    assert_eq!(
        w.when(Input::Stop { execution_id: "e1".into(), abandon: false, reason: "again".into() }),
        Err(Rejection::DuplicatedStopRequest("e1".into()))
    );
    let step = w.finish("e1", "Source", "Src", true);
    assert!(requested(&step).is_empty());
    assert_eq!(published(&step), vec!["Source/Src SUCCEEDED", "Source STOPPED", "STOPPED"]);
    assert_eq!(w.status("e1"), ExecutionStatus::Stopped);
    assert!(w.state.lanes.holders[0].is_none());
}

#[test]
fn stop_and_abandon_abandons_running_actions_and_ignores_their_late_results() {
    let mut w = World::given(three_stages(ExecutionMode::Superseded));
    w.start("e1");
    let step = w.ok(Input::Stop { execution_id: "e1".into(), abandon: true, reason: "now".into() });
    assert_eq!(
        published(&step),
        vec!["STOPPING", "Source STOPPING", "Source/Src ABANDONED", "Source STOPPED", "STOPPED"]
    );
    assert_eq!(w.action("e1", "Source", "Src").status, ActionStatus::Abandoned);
    assert!(w.ok(completion("e1", "Source", "Src", 1, true)).is_noop());
    assert!(matches!(
        w.when(Input::Stop { execution_id: "e1".into(), abandon: true, reason: "x".into() }),
        Err(Rejection::NotStoppable(_))
    ));
}

#[test]
fn a_stop_and_wait_can_be_escalated_to_abandon() {
    let mut w = World::given(three_stages(ExecutionMode::Superseded));
    w.start("e1");
    w.ok(Input::Stop { execution_id: "e1".into(), abandon: false, reason: "a".into() });
    w.ok(Input::Stop { execution_id: "e1".into(), abandon: true, reason: "b".into() });
    assert_eq!(w.status("e1"), ExecutionStatus::Stopped);
}

#[test]
fn a_waiting_execution_can_be_stopped() {
    let mut w = World::given(three_stages(ExecutionMode::Queued));
    w.start("e1");
    w.start("e2");
    w.ok(Input::Stop { execution_id: "e2".into(), abandon: false, reason: "no".into() });
    assert_eq!(w.status("e2"), ExecutionStatus::Stopped);
    assert!(w.state.lanes.waiting[0].is_empty());
}

#[test]
fn retry_failed_actions_reruns_only_the_failed_ones() {
    let mut w = World::given(plan(
        ExecutionMode::Superseded,
        vec![
            ("Source", vec![action("Src", "Source", "S3", 1)]),
            ("Test", vec![build("A", 1), build("B", 1)]),
        ],
    ));
    w.start("e1");
    w.finish("e1", "Source", "Src", true);
    w.finish("e1", "Test", "A", false);
    w.finish("e1", "Test", "B", true);
    let step = w.ok(Input::Retry {
        execution_id: "e1".into(),
        stage: "Test".into(),
        mode: RetryMode::FailedActions,
    });
    assert_eq!(requested(&step), vec!["Test/A#2"]);
    assert_eq!(published(&step)[..2], ["RESUMED".to_string(), "Test RESUMED".to_string()]);
    assert_eq!(w.status("e1"), ExecutionStatus::InProgress);
    w.finish("e1", "Test", "A", true);
    assert_eq!(w.status("e1"), ExecutionStatus::Succeeded);
    // The failed attempt is kept as it ended, for ListActionExecutions.
    let a = w.action("e1", "Test", "A");
    assert_eq!((a.attempt, a.status), (2, ActionStatus::Succeeded));
    let earlier: Vec<_> = a.earlier.iter().map(|r| (r.attempt, r.status)).collect();
    assert_eq!(earlier, [(1, ActionStatus::Failed)]);
    assert!(a.earlier[0].error.is_some() && a.error.is_none());
    assert!(w.action("e1", "Test", "B").earlier.is_empty(), "B never ran again");
}

#[test]
fn an_action_keeps_a_bounded_number_of_earlier_attempts() {
    let mut w = World::given(plan(
        ExecutionMode::Superseded,
        vec![("Source", vec![action("Src", "Source", "S3", 1)]), ("Test", vec![build("A", 1)])],
    ));
    w.start("e1");
    w.finish("e1", "Source", "Src", true);
    let retries = u32::try_from(crate::engine::KEPT_ATTEMPTS).unwrap() + 3;
    for _ in 0..retries {
        w.finish("e1", "Test", "A", false);
        w.ok(Input::Retry {
            execution_id: "e1".into(),
            stage: "Test".into(),
            mode: RetryMode::FailedActions,
        });
    }
    let a = w.action("e1", "Test", "A");
    assert_eq!(a.attempt, retries + 1);
    assert_eq!(a.earlier.len(), crate::engine::KEPT_ATTEMPTS);
    // The oldest go first; the newest ended attempt is last.
    assert_eq!(a.earlier.last().map(|r| r.attempt), Some(retries));
    assert!(a.earlier.iter().all(|r| r.earlier.is_empty()), "attempts nest");
}

#[test]
fn a_deploys_targets_are_kept_with_its_attempt_and_only_the_latest_ended_one_keeps_them() {
    let mut w = World::given(plan(
        ExecutionMode::Superseded,
        vec![("Source", vec![action("Src", "Source", "S3", 1)]), ("Test", vec![build("A", 1)])],
    ));
    w.start("e1");
    w.finish("e1", "Source", "Src", true);
    let reached = |attempt: u32| {
        let event = DeployTargetEvent {
            name: "ApplicationStart".into(),
            status: "Failed".into(),
            started_at: Some(10),
            ended_at: Some(20),
            message: Some("ScriptFailed (start.sh): exit code 1".into()),
        };
        vec![DeployTarget {
            id: format!("i-{attempt}"),
            kind: "InstanceTarget".into(),
            status: "Failed".into(),
            started_at: Some(10),
            ended_at: Some(20),
            events: vec![event],
        }]
    };
    for attempt in 1..=3 {
        let failed = ActionOutcome::Failed {
            error: ActionError { code: "JobFailed".into(), message: "deployment failed".into() },
            external_id: Some(format!("d-{attempt}")),
            external_url: None,
            targets: Vec::new(),
        }
        .with_targets(reached(attempt));
        w.ok(Input::ActionCompleted {
            execution_id: "e1".into(),
            stage: "Test".into(),
            action: "A".into(),
            attempt,
            outcome: failed,
        });
        assert_eq!(w.action("e1", "Test", "A").targets, reached(attempt));
        w.ok(Input::Retry {
            execution_id: "e1".into(),
            stage: "Test".into(),
            mode: RetryMode::FailedActions,
        });
        assert!(
            w.action("e1", "Test", "A").targets.is_empty(),
            "a new attempt reached nothing yet"
        );
    }
    let a = w.action("e1", "Test", "A");
    let kept: Vec<_> = a.earlier.iter().map(|r| (r.attempt, r.targets.len())).collect();
    assert_eq!(kept, [(1, 0), (2, 0), (3, 1)]);
    assert_eq!(a.earlier[2].targets, reached(3));
}

#[test]
fn retry_all_actions_reruns_the_whole_stage() {
    let mut w = World::given(plan(
        ExecutionMode::Superseded,
        vec![
            ("Source", vec![action("Src", "Source", "S3", 1)]),
            ("Test", vec![build("A", 1), build("B", 2)]),
        ],
    ));
    w.start("e1");
    w.finish("e1", "Source", "Src", true);
    w.finish("e1", "Test", "A", true);
    w.finish("e1", "Test", "B", false);
    let step = w.ok(Input::Retry {
        execution_id: "e1".into(),
        stage: "Test".into(),
        mode: RetryMode::AllActions,
    });
    // Every action runs again, in its runOrder: A (which had succeeded) first, then B.
    assert_eq!(requested(&step), vec!["Test/A#2"]);
    assert_eq!(w.status("e1"), ExecutionStatus::InProgress);
    let next = w.finish("e1", "Test", "A", true);
    assert_eq!(requested(&next), vec!["Test/B#2"], "the second runOrder group runs again");
    assert_eq!(w.status("e1"), ExecutionStatus::InProgress, "not done before B's new attempt");
    w.finish("e1", "Test", "B", true);
    assert_eq!(w.status("e1"), ExecutionStatus::Succeeded);
}

#[test]
fn a_running_stage_or_another_stage_cannot_be_retried() {
    let mut w = World::given(three_stages(ExecutionMode::Superseded));
    w.start("e1");
    let retry = |stage: &str| Input::Retry {
        execution_id: "e1".into(),
        stage: stage.into(),
        mode: RetryMode::AllActions,
    };
    assert!(matches!(w.when(retry("Source")), Err(Rejection::StageNotRetryable(_))));
    w.finish("e1", "Source", "Src", true);
    w.finish("e1", "Build", "Compile", false);
    assert!(matches!(w.when(retry("Deploy")), Err(Rejection::StageNotRetryable(_))));
    assert!(matches!(w.when(retry("Nope")), Err(Rejection::StageNotFound(_))));
}

#[test]
fn only_the_latest_execution_in_a_stage_can_retry_it() {
    let mut w = World::given(three_stages(ExecutionMode::Superseded));
    w.start("e1");
    w.finish("e1", "Source", "Src", true);
    w.start("e2");
    w.finish("e2", "Source", "Src", true); // waits for Build
    w.finish("e1", "Build", "Compile", false); // e1 fails, e2 enters Build
    assert_eq!(
        w.when(Input::Retry {
            execution_id: "e1".into(),
            stage: "Build".into(),
            mode: RetryMode::FailedActions
        }),
        Err(Rejection::NotLatestPipelineExecution {
            execution: "e1".into(),
            stage: "Build".into()
        })
    );
}

#[test]
fn an_automatic_retry_happens_once() {
    let mut p = three_stages(ExecutionMode::Superseded);
    p.stages[1].auto_retry = Some(RetryMode::FailedActions);
    let mut w = World::given(p);
    w.start("e1");
    w.finish("e1", "Source", "Src", true);
    let step = w.finish("e1", "Build", "Compile", false);
    assert_eq!(requested(&step), vec!["Build/Compile#2"]);
    w.finish("e1", "Build", "Compile", false);
    assert_eq!(w.status("e1"), ExecutionStatus::Failed);
}

fn approval_plan() -> Plan {
    let mut gate = action("Gate", "Approval", "Manual", 1);
    gate.timeout_minutes = 10;
    plan(
        ExecutionMode::Superseded,
        vec![
            ("Source", vec![action("Src", "Source", "S3", 1)]),
            ("Approve", vec![gate]),
            ("Deploy", vec![action("Ship", "Deploy", "S3", 1)]),
        ],
    )
}

fn decide(token: &str, approved: bool) -> Input {
    Input::ApprovalDecided {
        stage: "Approve".into(),
        action: "Gate".into(),
        token: token.into(),
        approved,
        summary: "looks good".into(),
        by: "alice".into(),
    }
}

#[test]
fn an_approval_waits_with_a_token_and_continues_when_approved() {
    let mut w = World::given(approval_plan());
    w.start("e1");
    let step = w.finish("e1", "Source", "Src", true);
    let token = match &step.effects.iter().find(|e| matches!(e, Effect::RequestAction(_))) {
        Some(Effect::RequestAction(r)) => r.token.clone().expect("approval token"),
        _ => panic!("approval requested"),
    };
    assert_eq!(token.len(), 36);
    assert_eq!(w.when(decide("wrong", true)), Err(Rejection::InvalidApprovalToken));
    assert_eq!(requested(&w.ok(decide(&token, true))), vec!["Deploy/Ship#1"]);
    assert_eq!(w.action("e1", "Approve", "Gate").decided_by.as_deref(), Some("alice"));
    let before = w.state.clone();
    assert_eq!(w.when(decide(&token, false)), Err(Rejection::ApprovalAlreadyCompleted));
    assert_eq!(w.state, before);
}

#[test]
fn by_default_a_newer_execution_waits_behind_a_waiting_approval() {
    let mut w = World::given(approval_plan());
    w.start("e1");
    w.finish("e1", "Source", "Src", true);
    w.start("e2");
    w.finish("e2", "Source", "Src", true);
    assert_eq!(w.exec("e2").place(), Place::Waiting(1), "CodePipeline's behaviour");
    assert_eq!(w.action("e1", "Approve", "Gate").status, ActionStatus::InProgress);
}

#[test]
fn with_supersede_waiting_approval_a_newer_execution_replaces_the_one_waiting_for_people() {
    let mut p = approval_plan();
    p.stages[1].actions[0].configuration.insert("SupersedeWaitingApproval".into(), "true".into());
    let mut w = World::given(p);
    w.start("e1");
    w.finish("e1", "Source", "Src", true);
    let old_token = w.action("e1", "Approve", "Gate").token.clone().unwrap();
    w.start("e2");
    let step = w.finish("e2", "Source", "Src", true);
    assert_eq!(w.status("e1"), ExecutionStatus::Superseded);
    assert_eq!(w.exec("e1").status_summary.as_deref(), Some("Superseded by execution e2"));
    assert_eq!(w.action("e1", "Approve", "Gate").status, ActionStatus::Abandoned);
    assert_eq!(w.exec("e1").stages[1].status, Some(StageStatus::Cancelled));
    assert_eq!(requested(&step), vec!["Approve/Gate#1"], "e2 waits for approval in its place");
    assert_eq!(w.exec("e2").place(), Place::InStage(1));
    assert_eq!(w.state.lanes.holders[1].as_deref(), Some("e2"));
    assert_eq!(
        w.when(decide(&old_token, true)),
        Err(Rejection::InvalidApprovalToken),
        "the old approval can no longer be decided"
    );
    let token = w.action("e2", "Approve", "Gate").token.clone().unwrap();
    w.ok(decide(&token, true));
    w.finish("e2", "Deploy", "Ship", true);
    assert_eq!(w.status("e2"), ExecutionStatus::Succeeded);
}

#[test]
fn a_rejected_approval_fails_the_execution() {
    let mut w = World::given(approval_plan());
    w.start("e1");
    w.finish("e1", "Source", "Src", true);
    let token = w.action("e1", "Approve", "Gate").token.clone().unwrap();
    w.ok(decide(&token, false));
    assert_eq!(w.status("e1"), ExecutionStatus::Failed);
    assert_eq!(w.action("e1", "Approve", "Gate").error.as_ref().unwrap().code, "Rejected");
}

#[test]
fn an_approval_times_out_after_its_timeout() {
    let mut w = World::given(approval_plan());
    w.start("e1");
    w.finish("e1", "Source", "Src", true);
    assert!(w.ok(Input::Tick).is_noop(), "not yet due");
    w.now += 10 * 60_000;
    let step = w.ok(Input::Tick);
    assert!(published(&step).contains(&"Approve/Gate FAILED".to_string()));
    assert_eq!(w.status("e1"), ExecutionStatus::Failed);
    assert_eq!(w.action("e1", "Approve", "Gate").error.as_ref().unwrap().code, "TimedOut");
    assert!(w.ok(Input::Tick).is_noop());
}

#[test]
fn actions_time_out_after_their_provider_default() {
    let mut w = World::given(three_stages(ExecutionMode::Superseded));
    w.start("e1");
    w.finish("e1", "Source", "Src", true);
    w.now += 59 * 60_000;
    assert!(w.ok(Input::Tick).is_noop());
    w.now += 60_000;
    w.ok(Input::Tick);
    assert_eq!(w.status("e1"), ExecutionStatus::Failed);
}

#[test]
fn variables_resolve_when_the_action_starts_and_outputs_feed_later_actions() {
    let mut p = three_stages(ExecutionMode::Superseded);
    p.variables = vec![("env".into(), Some("dev".into()))];
    p.stages[0].actions[0].namespace = Some("SourceVariables".into());
    p.stages[1].actions[0].configuration.insert(
        "EnvironmentVariables".into(),
        "#{SourceVariables.CommitId}@#{variables.env}/#{codepipeline.PipelineExecutionId}".into(),
    );
    let mut w = World::given(p);
    w.ok(Input::Start {
        execution_id: "e1".into(),
        trigger: Trigger::default(),
        variables: [("env".to_string(), "prod".to_string())].into(),
        source_revisions: Default::default(),
    });
    let step = w.ok(Input::ActionCompleted {
        execution_id: "e1".into(),
        stage: "Source".into(),
        action: "Src".into(),
        attempt: 1,
        outcome: ActionOutcome::Succeeded {
            output_variables: [("CommitId".to_string(), "abc123".to_string())].into(),
            artifacts: vec![],
            summary: None,
            external_id: None,
            external_url: None,
            targets: Vec::new(),
        },
    });
    let Some(Effect::RequestAction(r)) =
        step.effects.iter().find(|e| matches!(e, Effect::RequestAction(_)))
    else {
        panic!("build requested")
    };
    assert_eq!(r.configuration["EnvironmentVariables"], "abc123@prod/e1");
}

#[test]
fn an_unresolvable_variable_fails_the_action_without_running_it() {
    let mut p = three_stages(ExecutionMode::Superseded);
    p.stages[0].actions[0].namespace = Some("Src".into());
    p.stages[1].actions[0].configuration.insert("X".into(), "#{Src.Missing}".into());
    let mut w = World::given(p);
    w.start("e1");
    let step = w.finish("e1", "Source", "Src", true);
    assert!(requested(&step).is_empty());
    assert_eq!(w.status("e1"), ExecutionStatus::Failed);
    assert_eq!(
        w.action("e1", "Build", "Compile").error.as_ref().unwrap().code,
        "VariableNotResolved"
    );
}

#[test]
fn a_start_with_an_undeclared_variable_is_rejected() {
    let mut w = World::given(three_stages(ExecutionMode::Superseded));
    let r = w.when(Input::Start {
        execution_id: "e1".into(),
        trigger: Trigger::default(),
        variables: [("nope".to_string(), "1".to_string())].into(),
        source_revisions: Default::default(),
    });
    assert!(matches!(r, Err(Rejection::InvalidVariables(_))));
    assert!(w.state.executions.is_empty());
}

#[test]
fn input_artifacts_come_from_the_producing_action() {
    let mut p = three_stages(ExecutionMode::Superseded);
    p.stages[0].actions[0].output_artifacts = vec!["SourceOutput".into()];
    p.stages[1].actions[0].input_artifacts = vec!["SourceOutput".into()];
    let mut w = World::given(p);
    w.start("e1");
    let step = w.ok(Input::ActionCompleted {
        execution_id: "e1".into(),
        stage: "Source".into(),
        action: "Src".into(),
        attempt: 1,
        outcome: ActionOutcome::Succeeded {
            output_variables: BTreeMap::new(),
            artifacts: vec![Artifact {
                name: "SourceOutput".into(),
                location: ArtifactLocation { bucket: "b".into(), key: "k".into() },
            }],
            summary: None,
            external_id: None,
            external_url: None,
            targets: Vec::new(),
        },
    });
    let Some(Effect::RequestAction(r)) =
        step.effects.iter().find(|e| matches!(e, Effect::RequestAction(_)))
    else {
        panic!("build requested")
    };
    assert_eq!(r.input_artifacts[0].location.key, "k");
}

#[test]
fn a_source_revision_rides_with_its_artifact_to_the_actions_that_read_it() {
    let mut p = three_stages(ExecutionMode::Superseded);
    p.stages[0].actions[0].output_artifacts = vec!["SourceOutput".into()];
    p.stages[1].actions[0].input_artifacts = vec!["SourceOutput".into()];
    p.stages[1].actions[0].output_artifacts = vec!["Built".into()];
    p.stages[2].actions[0].input_artifacts = vec!["Built".into(), "SourceOutput".into()];
    let mut w = World::given(p);
    w.start("e1");
    let made = |name: &str, variables: &[(&str, &str)]| ActionOutcome::Succeeded {
        output_variables: variables.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        artifacts: vec![Artifact {
            name: name.into(),
            location: ArtifactLocation { bucket: "b".into(), key: name.into() },
        }],
        summary: None,
        external_id: None,
        external_url: None,
        targets: Vec::new(),
    };
    let complete = |stage: &str, action: &str, outcome| Input::ActionCompleted {
        execution_id: "e1".into(),
        stage: stage.into(),
        action: action.into(),
        attempt: 1,
        outcome,
    };
    w.ok(complete("Source", "Src", made("SourceOutput", &[("CommitId", "abc123")])));
    // A build's own CommitId output is not a source revision.
    let step = w.ok(complete("Build", "Compile", made("Built", &[("CommitId", "nope")])));
    let Some(Effect::RequestAction(r)) =
        step.effects.iter().find(|e| matches!(e, Effect::RequestAction(_)))
    else {
        panic!("deploy requested")
    };
    assert_eq!(r.input_revisions, vec![("SourceOutput".to_string(), "abc123".to_string())]);
    assert_eq!(w.exec("e1").revisions.len(), 1);
}

#[test]
fn a_start_may_pin_a_source_actions_revision_and_only_as_its_provider_takes_it() {
    let mut w = World::given(three_stages(ExecutionMode::Superseded));
    let start = |id: &str, action: &str, kind: &str| Input::Start {
        execution_id: id.into(),
        trigger: Trigger::default(),
        variables: BTreeMap::new(),
        source_revisions: [(
            action.to_string(),
            SourceRevision { revision_type: kind.into(), value: "abc123".into(), branch: None },
        )]
        .into(),
    };
    let unknown = w.when(start("e1", "Compile", "COMMIT_ID"));
    assert!(
        matches!(unknown, Err(Rejection::InvalidSourceRevision(m)) if m.contains("not a source action"))
    );
    // Src is a CodeCommit source: commits, not object versions.
    let wrong = w.when(start("e1", "Src", "S3_OBJECT_VERSION_ID"));
    assert!(matches!(wrong, Err(Rejection::InvalidSourceRevision(m)) if m.contains("COMMIT_ID")));
    assert!(w.state.executions.is_empty());
    let step = w.ok(start("e1", "Src", "COMMIT_ID"));
    let Some(Effect::RequestAction(r)) =
        step.effects.iter().find(|e| matches!(e, Effect::RequestAction(_)))
    else {
        panic!("source requested")
    };
    assert_eq!(r.source_revision.as_ref().map(|s| s.value.as_str()), Some("abc123"));
}

// ---- a declaration updated under running executions -------------------------------------

/// Version 2 of [`three_stages`]: a Test stage before Deploy.
fn updated(mode: ExecutionMode) -> Plan {
    let mut p = plan(
        mode,
        vec![
            ("Source", vec![action("Src", "Source", "CodeCommit", 1)]),
            ("Build", vec![build("Compile", 1)]),
            ("Test", vec![action("Check", "Test", "CodeBuild", 1)]),
            ("Deploy", vec![action("Ship", "Deploy", "S3", 1)]),
        ],
    );
    p.version = 2;
    p
}

#[test]
fn an_update_cancels_the_running_execution_and_frees_its_stage_for_the_new_declaration() {
    let mut w = World::given(three_stages(ExecutionMode::Superseded));
    w.start("e1");
    w.finish("e1", "Source", "Src", true);
    let stale_build = w.action("e1", "Build", "Compile").attempt;
    // e2 waits in front of Build, which e1 holds.
    w.start("e2");
    w.finish("e2", "Source", "Src", true);
    assert_eq!(w.exec("e2").place(), Place::Waiting(1));

    w.plan = updated(ExecutionMode::Superseded);
    // e2 started on version 1 too: both are of the old declaration.
    let step = w.ok(Input::Tick);
    assert_eq!(w.status("e1"), ExecutionStatus::Cancelled);
    assert_eq!(w.status("e2"), ExecutionStatus::Cancelled);
    assert_eq!(w.exec("e1").stages[1].actions[0].status, ActionStatus::Abandoned);
    assert!(w.exec("e1").status_summary.as_deref().unwrap_or("").contains("updated"));
    assert!(published(&step).iter().any(|p| p.contains("CANCELED")), "{:?}", published(&step));
    assert_eq!(w.state.lanes.holders[1], None, "the Build lock is released");
    assert!(w.state.lanes.waiting.iter().all(|l| l.is_empty()));

    // The old build's late completion changes nothing and crashes nothing.
    let late = w.when(completion("e1", "Build", "Compile", stale_build, true));
    assert!(late.map_or(true, |s| s.effects.is_empty()));
    assert_eq!(w.status("e1"), ExecutionStatus::Cancelled);

    // An execution of the new declaration runs through all four stages.
    w.start("e3");
    for (stage, action) in
        [("Source", "Src"), ("Build", "Compile"), ("Test", "Check"), ("Deploy", "Ship")]
    {
        w.finish("e3", stage, action, true);
    }
    assert_eq!(w.status("e3"), ExecutionStatus::Succeeded);
}

#[test]
fn a_rejected_input_leaves_an_outdated_execution_as_it_was() {
    let mut w = World::given(three_stages(ExecutionMode::Superseded));
    w.start("e1");
    let before = w.state.clone();
    w.plan = updated(ExecutionMode::Superseded);
    let refused = w.when(Input::Retry {
        execution_id: "e1".into(),
        stage: "Build".into(),
        mode: RetryMode::FailedActions,
    });
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(w.state, before, "nothing changed, not even the cancellation");
    // The next tick cancels it for good.
    w.ok(Input::Tick);
    assert_eq!(w.status("e1"), ExecutionStatus::Cancelled);
}

#[test]
fn a_failed_execution_of_an_older_declaration_cannot_be_retried_or_stopped() {
    let mut w = World::given(three_stages(ExecutionMode::Superseded));
    w.start("e1");
    w.finish("e1", "Source", "Src", false);
    assert_eq!(w.status("e1"), ExecutionStatus::Failed);
    w.plan = updated(ExecutionMode::Superseded);
    let retry = Input::Retry {
        execution_id: "e1".into(),
        stage: "Source".into(),
        mode: RetryMode::FailedActions,
    };
    match w.when(retry) {
        Err(Rejection::StageNotRetryable(why)) => {
            assert!(why.contains("ran version 1"), "{why}");
        }
        other => panic!("the retry was not refused as not retryable: {other:?}"),
    }
    let stop = Input::Stop { execution_id: "e1".into(), abandon: true, reason: "x".into() };
    assert!(matches!(w.when(stop), Err(Rejection::NotStoppable(_))));
    // An ended execution is left as it ended.
    w.ok(Input::Tick);
    assert_eq!(w.status("e1"), ExecutionStatus::Failed);
}

/// The worker announces an attempt's end itself ([`crate::events::action_end`]); stage-advance
/// then leaves out the engine's own copy, so the two must be the same event.
#[test]
fn an_announced_end_is_the_event_the_engine_publishes() {
    let requests = |step: &Step| -> Vec<ActionRequest> {
        step.effects
            .iter()
            .filter_map(|e| match e {
                Effect::RequestAction(r) => Some((**r).clone()),
                _ => None,
            })
            .collect()
    };
    let ended = |step: &Step| -> Vec<crate::events::PublicEvent> {
        step.effects
            .iter()
            .filter_map(|e| match e {
                Effect::Publish(p)
                    if p.detail_type == crate::events::ACTION_DETAIL_TYPE
                        && p.detail["state"] != "STARTED" =>
                {
                    Some(p.clone())
                }
                _ => None,
            })
            .collect()
    };
    let mut w = World::given(three_stages(ExecutionMode::Superseded));
    let source = requests(&w.start("e1")).remove(0);
    let built = ActionOutcome::Succeeded {
        output_variables: BTreeMap::from([("k".into(), "v".into())]),
        artifacts: vec![Artifact {
            name: "Out".into(),
            location: ArtifactLocation { bucket: "b".into(), key: "k/out.zip".into() },
        }],
        summary: Some("done".into()),
        external_id: Some("x-1".into()),
        external_url: Some("https://example.test/x-1".into()),
        targets: Vec::new(),
    };
    let step = w.ok(Input::ActionCompleted {
        execution_id: "e1".into(),
        stage: "Source".into(),
        action: "Src".into(),
        attempt: source.attempt,
        outcome: built.clone(),
    });
    let end = ended(&step).remove(0);
    let announced = crate::events::action_end(&source, &built, w.now);
    assert_eq!((&announced.source, &announced.resources), (&end.source, &end.resources));
    assert_eq!(announced.detail, end.detail);
    assert_eq!(announced.id, end.id, "a re-sent copy keeps its id");

    // A failure, in the stage's second attempt.
    let compile = requests(&step).remove(0);
    let step = w.finish("e1", "Build", "Compile", false);
    let failed = completion("e1", "Build", "Compile", compile.attempt, false);
    let Input::ActionCompleted { outcome, .. } = failed else { unreachable!() };
    assert_eq!(crate::events::action_end(&compile, &outcome, w.now).detail, ended(&step)[0].detail);
    let step = w.ok(Input::Retry {
        execution_id: "e1".into(),
        stage: "Build".into(),
        mode: RetryMode::FailedActions,
    });
    let again = requests(&step).remove(0);
    assert_eq!(again.announce.execution_attempt, 2);
    let step = w.finish("e1", "Build", "Compile", false);
    let announced = crate::events::action_end(&again, &outcome, w.now);
    assert_eq!(announced.detail, ended(&step)[0].detail);
    assert_eq!(announced.detail["pipeline-execution-attempt"], 2);
}

mod conditions;
