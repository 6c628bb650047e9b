//! Stage conditions and rollbacks, given/when/then.

use super::*;
use crate::plan::StageConditions;
use crate::rules::{ConditionPlan, ConditionResult, RulePlan, Verdict};

/// 2026-12-07 (a Monday) at `hh:mm` UTC.
fn monday(hh: i64, mm: i64) -> Millis {
    1_796_601_600_000 + (hh * 60 + mm) * 60_000
}

fn rule(name: &str, provider: &str, config: &[(&str, &str)], timeout_minutes: u32) -> RulePlan {
    RulePlan {
        name: name.into(),
        provider: provider.into(),
        configuration: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        timeout_minutes,
        commands: vec![],
        input_artifacts: vec![],
        region: None,
        role_arn: None,
    }
}

fn variable_is(value: &str) -> RulePlan {
    rule(
        "IsProd",
        "VariableCheck",
        &[("Variable", "#{variables.env}"), ("Operator", "EQ"), ("Value", value)],
        60,
    )
}

/// Business hours, 09:00-16:59 UTC, waited for at most `timeout` minutes.
fn office_hours(timeout: u32) -> RulePlan {
    rule(
        "OfficeHours",
        "DeploymentWindow",
        &[("Cron", "* * 9-16 ? * MON-FRI *"), ("TimeZone", "UTC")],
        timeout,
    )
}

fn condition(result: ConditionResult, rules: Vec<RulePlan>) -> Option<ConditionPlan> {
    Some(ConditionPlan { result, rules })
}

/// [`three_stages`] with a pipeline variable `env` (default `prod`) and `conditions` on Deploy.
fn gated(mode: ExecutionMode, conditions: StageConditions) -> World {
    let mut p = three_stages(mode);
    p.variables = vec![("env".into(), Some("prod".into()))];
    p.stages[2].conditions = conditions;
    let mut w = World::given(p);
    w.now = monday(8, 0);
    w
}

fn entry(result: ConditionResult, rules: Vec<RulePlan>) -> StageConditions {
    StageConditions { before_entry: condition(result, rules), ..Default::default() }
}

fn start_with(w: &mut World, id: &str, env: &str) -> Step {
    w.ok(Input::Start {
        execution_id: id.into(),
        trigger: Trigger::default(),
        variables: [("env".to_string(), env.to_string())].into(),
        source_revisions: Default::default(),
    })
}

/// Runs `id` through Source and Build; returns the step that finished Build.
fn to_deploy(w: &mut World, id: &str) -> Step {
    w.finish(id, "Source", "Src", true);
    w.finish(id, "Build", "Compile", true)
}

fn deploy<'a>(w: &'a World, id: &str) -> &'a StageRun {
    &w.exec(id).stages[2]
}

/// A `Commands` rule reading the build's artifact, given `timeout` minutes.
fn smoke_test(timeout: u32) -> RulePlan {
    RulePlan {
        commands: vec!["curl -f https://#{variables.env}.example.com/health".into()],
        input_artifacts: vec!["Bundle".into()],
        ..rule("Smoke", "Commands", &[], timeout)
    }
}

fn exit(result: ConditionResult, rules: Vec<RulePlan>) -> StageConditions {
    StageConditions { on_success: condition(result, rules), ..Default::default() }
}

fn rule_requests(step: &Step) -> Vec<&RuleRequest> {
    step.effects
        .iter()
        .filter_map(|e| match e {
            Effect::RequestRule(r) => Some(r.as_ref()),
            _ => None,
        })
        .collect()
}

fn answer(r: &RuleRequest, verdict: Verdict) -> Input {
    answer_holding(r, verdict, None)
}

/// An answer that leaves `handle` for the rule's next request.
fn answer_holding(r: &RuleRequest, verdict: Verdict, handle: Option<&str>) -> Input {
    Input::RuleCompleted {
        execution_id: r.execution_id.clone(),
        stage: r.stage.clone(),
        condition: r.condition,
        rule: r.rule.clone(),
        request: r.request,
        verdict,
        handle: handle.map(str::to_owned),
    }
}

#[test]
fn a_rule_that_asks_a_service_is_requested_and_its_pass_lets_the_stage_succeed() {
    let mut w = gated(ExecutionMode::Queued, exit(ConditionResult::Fail, vec![smoke_test(55)]));
    start_with(&mut w, "e1", "prod");
    bundle_built(&mut w, "e1", "b1");
    let step = w.finish("e1", "Deploy", "Ship", true);
    let asked = rule_requests(&step);
    assert_eq!(asked.len(), 1, "one request for the one service rule");
    let r = asked[0].clone();
    assert_eq!((r.condition, r.rule.as_str(), r.request), (ConditionKind::OnSuccess, "Smoke", 1));
    assert_eq!(r.commands, vec!["curl -f https://prod.example.com/health"], "resolved");
    assert_eq!(r.input_artifacts[0].location.key, "b1");
    assert_eq!(r.deadline, r.started_at + 55 * 60_000);
    assert_eq!(w.status("e1"), ExecutionStatus::InProgress, "it waits for the answer");
    assert!(rule_requests(&w.ok(Input::Tick)).is_empty(), "asked once, not on every tick");
    w.ok(answer(&r, Verdict::Pass("exit 0".into())));
    assert_eq!(w.status("e1"), ExecutionStatus::Succeeded);
    let run = deploy(&w, "e1").conditions.on_success.clone().unwrap();
    assert_eq!((run.status, run.rules[0].summary.as_str()), (ConditionStatus::Succeeded, "exit 0"));
}

#[test]
fn a_failing_answer_engages_the_result_and_a_stale_one_changes_nothing() {
    let mut w = gated(ExecutionMode::Queued, exit(ConditionResult::Fail, vec![smoke_test(55)]));
    start_with(&mut w, "e1", "prod");
    bundle_built(&mut w, "e1", "b1");
    let r = rule_requests(&w.finish("e1", "Deploy", "Ship", true))[0].clone();
    let stale = RuleRequest { request: 7, ..r.clone() };
    w.ok(answer(&stale, Verdict::Fail("old".into())));
    assert_eq!(w.status("e1"), ExecutionStatus::InProgress, "another request's answer");
    w.ok(answer(&r, Verdict::Fail("HTTP 503".into())));
    assert_eq!(w.status("e1"), ExecutionStatus::Failed);
    let summary = w.exec("e1").status_summary.clone().unwrap();
    assert!(summary.contains("onSuccess condition: rule Smoke: HTTP 503"), "{summary}");
    w.ok(answer(&r, Verdict::Pass("late".into())));
    assert_eq!(w.status("e1"), ExecutionStatus::Failed, "a late answer changes nothing");
}

#[test]
fn a_wait_answer_is_asked_again_on_a_tick_until_the_rule_times_out() {
    let alarm = rule("Alarm", "CloudWatchAlarm", &[("AlarmName", "errors")], 30);
    let mut w = gated(ExecutionMode::Queued, entry(ConditionResult::Fail, vec![alarm]));
    start_with(&mut w, "e1", "prod");
    let first = rule_requests(&to_deploy(&mut w, "e1"))[0].clone();
    assert_eq!(first.condition, ConditionKind::BeforeEntry);
    w.ok(answer(&first, Verdict::Wait("errors is in ALARM".into())));
    w.now = monday(8, 10);
    let again = rule_requests(&w.ok(Input::Tick))[0].clone();
    assert_eq!((again.request, again.started_at), (2, first.started_at), "one rule run");
    w.ok(answer(&again, Verdict::Wait("errors is in ALARM".into())));
    w.now = monday(8, 31);
    w.ok(Input::Tick);
    assert_eq!(w.status("e1"), ExecutionStatus::Failed, "30 minutes passed");
    assert!(requested(&w.ok(Input::Tick)).is_empty(), "Ship never ran");
}

#[test]
fn what_a_wait_answer_holds_comes_back_with_the_next_request_of_that_run_only() {
    let mut w = gated(ExecutionMode::Queued, exit(ConditionResult::Fail, vec![smoke_test(55)]));
    start_with(&mut w, "e1", "prod");
    bundle_built(&mut w, "e1", "b1");
    let first = rule_requests(&w.finish("e1", "Deploy", "Ship", true))[0].clone();
    assert_eq!(first.handle, None, "nothing started yet");
    w.ok(answer_holding(&first, Verdict::Wait("build running".into()), Some("build:1")));
    w.now = monday(8, 10);
    let again = rule_requests(&w.ok(Input::Tick))[0].clone();
    assert_eq!(again.handle.as_deref(), Some("build:1"), "the build is followed, not restarted");
    w.ok(answer_holding(&again, Verdict::Fail("exit 2".into()), None));
    assert_eq!(w.status("e1"), ExecutionStatus::Failed);

    // A retry of the stage is a new run of its condition: nothing is carried into it.
    w.ok(Input::Retry {
        execution_id: "e1".into(),
        stage: "Deploy".into(),
        mode: RetryMode::AllActions,
    });
    let rerun = rule_requests(&w.finish("e1", "Deploy", "Ship", true))[0].clone();
    assert_eq!((rerun.handle, rerun.request), (None, 3), "asked afresh");
}

#[test]
fn a_skip_rule_answer_skips_the_stage() {
    let lambda = rule("Gate", "LambdaInvoke", &[("FunctionName", "gate")], 60);
    let mut w = gated(ExecutionMode::Queued, entry(ConditionResult::Skip, vec![lambda]));
    start_with(&mut w, "e1", "prod");
    let r = rule_requests(&to_deploy(&mut w, "e1"))[0].clone();
    w.ok(answer(&r, Verdict::Fail("not this time".into())));
    assert_eq!(deploy(&w, "e1").status, Some(StageStatus::Skipped));
    assert_eq!(w.status("e1"), ExecutionStatus::Succeeded);
}

#[test]
fn a_failed_entry_condition_fails_the_stage_before_any_action_runs() {
    let mut w =
        gated(ExecutionMode::Queued, entry(ConditionResult::Fail, vec![variable_is("prod")]));
    start_with(&mut w, "e1", "dev");
    let step = to_deploy(&mut w, "e1");
    assert!(requested(&step).is_empty(), "Ship never starts");
    assert_eq!(w.status("e1"), ExecutionStatus::Failed);
    assert_eq!(deploy(&w, "e1").status, Some(StageStatus::Failed));
    let run = deploy(&w, "e1").conditions.before_entry.as_ref().unwrap();
    assert_eq!(run.status, ConditionStatus::Failed);
    assert_eq!(run.rules[0].resolved_configuration["Variable"], "dev");
    let summary = w.exec("e1").status_summary.clone().unwrap();
    assert!(summary.contains("beforeEntry condition: rule IsProd"), "{summary}");
    assert!(step.effects.iter().any(|e| matches!(e, Effect::NotifyFailure(_))));
    assert!(w.state.lanes.holders[2].is_none(), "the stage is free again");
}

#[test]
fn a_passing_entry_condition_lets_the_actions_run() {
    let mut w =
        gated(ExecutionMode::Queued, entry(ConditionResult::Fail, vec![variable_is("prod")]));
    start_with(&mut w, "e1", "prod");
    assert_eq!(requested(&to_deploy(&mut w, "e1")), vec!["Deploy/Ship#1"]);
    let run = deploy(&w, "e1").conditions.before_entry.as_ref().unwrap();
    assert_eq!(
        (run.status, run.rules[0].status),
        (ConditionStatus::Succeeded, RuleStatus::Succeeded)
    );
}

#[test]
fn a_skip_condition_passes_the_stage_over() {
    let mut p = three_stages(ExecutionMode::Superseded);
    p.variables = vec![("env".into(), Some("prod".into()))];
    p.stages[1].conditions = entry(ConditionResult::Skip, vec![variable_is("prod")]);
    let mut w = World::given(p);
    start_with(&mut w, "e1", "dev");
    let step = w.finish("e1", "Source", "Src", true);
    assert_eq!(requested(&step), vec!["Deploy/Ship#1"], "Build is skipped, Deploy runs");
    let build = &w.exec("e1").stages[1];
    assert_eq!(build.status, Some(StageStatus::Skipped));
    assert_eq!(build.actions[0].status, ActionStatus::Pending, "Compile did not run");
    w.finish("e1", "Deploy", "Ship", true);
    assert_eq!(w.status("e1"), ExecutionStatus::Succeeded);
}

#[test]
fn an_entry_window_holds_the_stage_until_it_opens() {
    let mut w =
        gated(ExecutionMode::Queued, entry(ConditionResult::Fail, vec![office_hours(24 * 60)]));
    start_with(&mut w, "e1", "prod");
    let step = to_deploy(&mut w, "e1");
    assert!(requested(&step).is_empty(), "08:00 is outside the window");
    let run = deploy(&w, "e1").conditions.before_entry.clone().unwrap();
    assert_eq!(run.status, ConditionStatus::InProgress);
    assert_eq!(
        w.state.lanes.holders[2].as_deref(),
        Some("e1"),
        "it holds the stage while it waits"
    );
    // A second execution queues behind it.
    start_with(&mut w, "e2", "prod");
    to_deploy(&mut w, "e2");
    assert_eq!(w.exec("e2").place(), Place::Waiting(2));
    w.now = monday(8, 58);
    assert!(requested(&w.ok(Input::Tick)).is_empty(), "still closed at 08:59");
    w.now = monday(9, 0);
    assert_eq!(requested(&w.ok(Input::Tick)), vec!["Deploy/Ship#1"]);
    let run = deploy(&w, "e1").conditions.before_entry.clone().unwrap();
    assert_eq!(run.status, ConditionStatus::Succeeded);
    assert!(run.started_at < run.updated_at, "one run, looked at again");
}

#[test]
fn an_entry_window_that_stays_closed_fails_the_stage_at_its_timeout() {
    let mut w = gated(ExecutionMode::Queued, entry(ConditionResult::Fail, vec![office_hours(30)]));
    start_with(&mut w, "e1", "prod");
    to_deploy(&mut w, "e1");
    w.now = monday(8, 20);
    w.ok(Input::Tick);
    assert_eq!(w.status("e1"), ExecutionStatus::InProgress);
    w.now = monday(8, 40);
    w.ok(Input::Tick);
    assert_eq!(w.status("e1"), ExecutionStatus::Failed);
    let summary = w.exec("e1").status_summary.clone().unwrap();
    assert!(summary.contains("30 minutes passed"), "{summary}");
}

#[test]
fn a_person_can_override_a_waiting_condition_and_only_a_waiting_one() {
    let mut w = gated(ExecutionMode::Queued, entry(ConditionResult::Fail, vec![office_hours(60)]));
    start_with(&mut w, "e1", "prod");
    to_deploy(&mut w, "e1");
    let over = |kind| Input::OverrideCondition {
        execution_id: "e1".into(),
        stage: "Deploy".into(),
        condition: kind,
        by: "arn:aws:iam::111111111111:user/ana".into(),
    };
    assert!(matches!(
        w.when(over(ConditionKind::OnSuccess)),
        Err(Rejection::ConditionNotOverridable(_))
    ));
    assert_eq!(requested(&w.ok(over(ConditionKind::BeforeEntry))), vec!["Deploy/Ship#1"]);
    let run = deploy(&w, "e1").conditions.before_entry.clone().unwrap();
    assert_eq!(run.status, ConditionStatus::Overridden);
    assert_eq!(run.overridden_by.as_deref(), Some("arn:aws:iam::111111111111:user/ana"));
    assert_eq!(run.rules[0].status, RuleStatus::Abandoned);
    assert!(matches!(
        w.when(over(ConditionKind::BeforeEntry)),
        Err(Rejection::ConditionNotOverridable(_))
    ));
}

#[test]
fn stopping_an_execution_that_waits_on_a_condition_cancels_the_condition() {
    let mut w = gated(ExecutionMode::Queued, entry(ConditionResult::Fail, vec![office_hours(60)]));
    start_with(&mut w, "e1", "prod");
    to_deploy(&mut w, "e1");
    w.ok(Input::Stop { execution_id: "e1".into(), abandon: false, reason: "not today".into() });
    assert_eq!(w.status("e1"), ExecutionStatus::Stopped);
    let run = deploy(&w, "e1").conditions.before_entry.clone().unwrap();
    assert_eq!(run.status, ConditionStatus::Cancelled);
    w.now = monday(8, 10);
    assert!(requested(&w.ok(Input::Tick)).is_empty(), "a stopped execution does not start");
    // Retried, the stage looks at its window again: still closed, it waits again.
    let retry = Input::Retry {
        execution_id: "e1".into(),
        stage: "Deploy".into(),
        mode: RetryMode::FailedActions,
    };
    assert!(requested(&w.ok(retry)).is_empty(), "the window is still closed");
    let run = deploy(&w, "e1").conditions.before_entry.clone().unwrap();
    assert_eq!(run.status, ConditionStatus::InProgress);
    w.now = monday(9, 0);
    assert_eq!(requested(&w.ok(Input::Tick)), vec!["Deploy/Ship#1"]);
}

#[test]
fn an_on_success_condition_fails_a_stage_whose_actions_succeeded() {
    let checks_output = rule(
        "Healthy",
        "VariableCheck",
        &[("Variable", "#{DeployVars.Health}"), ("Operator", "EQ"), ("Value", "ok")],
        60,
    );
    let mut w = gated(
        ExecutionMode::Queued,
        StageConditions {
            on_success: condition(ConditionResult::Fail, vec![checks_output]),
            ..Default::default()
        },
    );
    w.plan.stages[2].actions[0].namespace = Some("DeployVars".into());
    start_with(&mut w, "e1", "prod");
    to_deploy(&mut w, "e1");
    let step = w.ok(Input::ActionCompleted {
        execution_id: "e1".into(),
        stage: "Deploy".into(),
        action: "Ship".into(),
        attempt: 1,
        outcome: ActionOutcome::Succeeded {
            output_variables: [("Health".to_string(), "degraded".to_string())].into(),
            artifacts: vec![],
            summary: None,
            external_id: None,
            external_url: None,
            targets: Vec::new(),
        },
    });
    assert!(published(&step).contains(&"Deploy FAILED".to_string()));
    assert_eq!(w.status("e1"), ExecutionStatus::Failed);
    assert_eq!(w.action("e1", "Deploy", "Ship").status, ActionStatus::Succeeded);
    let summary = w.exec("e1").status_summary.clone().unwrap();
    assert!(summary.contains("onSuccess condition: rule Healthy"), "{summary}");
}

// ---- rollback -----------------------------------------------------------------------------

fn artifact(key: &str) -> Vec<Artifact> {
    vec![Artifact {
        name: "Bundle".into(),
        location: ArtifactLocation { bucket: "b".into(), key: key.into() },
    }]
}

/// Source -> Build (makes Bundle) -> Deploy (reads Bundle), Deploy rolling back on failure.
fn rolls_back(mode: ExecutionMode) -> World {
    let mut p = three_stages(mode);
    p.stages[1].actions[0].output_artifacts = vec!["Bundle".into()];
    p.stages[2].actions[0].input_artifacts = vec!["Bundle".into()];
    p.stages[2].conditions.rollback_on_failure = true;
    World::given(p)
}

/// Runs `id` to Deploy with Bundle at `key`; returns the step that started Deploy.
fn build_bundle(w: &mut World, id: &str, key: &str) -> Step {
    w.start(id);
    bundle_built(w, id, key)
}

/// Runs a started `id` to Deploy with Bundle at `key`.
fn bundle_built(w: &mut World, id: &str, key: &str) -> Step {
    w.finish(id, "Source", "Src", true);
    w.ok(Input::ActionCompleted {
        execution_id: id.into(),
        stage: "Build".into(),
        action: "Compile".into(),
        attempt: 1,
        outcome: ActionOutcome::Succeeded {
            output_variables: BTreeMap::new(),
            artifacts: artifact(key),
            summary: None,
            external_id: None,
            external_url: None,
            targets: Vec::new(),
        },
    })
}

fn request(step: &Step) -> &ActionRequest {
    step.effects
        .iter()
        .find_map(|e| match e {
            Effect::RequestAction(r) => Some(r.as_ref()),
            _ => None,
        })
        .expect("an action requested")
}

/// [`rolls_back`], the rollback decided by an alarm rule (`onFailure` with `ROLLBACK`).
fn rolls_back_on_alarm(mode: ExecutionMode) -> World {
    let mut w = rolls_back(mode);
    w.plan.stages[2].conditions = StageConditions {
        on_failure: condition(
            ConditionResult::Rollback,
            vec![rule("Errors", "CloudWatchAlarm", &[("AlarmName", "errors")], 30)],
        ),
        ..Default::default()
    };
    w
}

#[test]
fn after_a_failure_a_service_rule_decides_the_rollback_while_the_stage_stays_held() {
    let mut w = rolls_back_on_alarm(ExecutionMode::Queued);
    build_bundle(&mut w, "e1", "v1");
    w.finish("e1", "Deploy", "Ship", true);
    build_bundle(&mut w, "e2", "v2");
    let failed = w.finish("e2", "Deploy", "Ship", false);
    let asked = rule_requests(&failed)[0].clone();
    assert_eq!(asked.condition, ConditionKind::OnFailure);
    assert_eq!(w.status("e2"), ExecutionStatus::Failed, "failed, and deciding");
    assert_eq!(w.state.lanes.holders[2].as_deref(), Some("e2"), "holds the stage meanwhile");
    build_bundle(&mut w, "e3", "v3");
    assert_eq!(w.exec("e3").place(), Place::Waiting(2), "a newer execution waits behind it");

    let step = w.ok(answer(&asked, Verdict::Fail("errors is ALARM".into())));
    let redeploy = request(&step);
    assert_eq!(redeploy.input_artifacts[0].location.key, "v1", "the rollback goes in first");
    assert_eq!(w.exec(&redeploy.execution_id.clone()).rollback.as_ref().unwrap().target, "e1");
    assert_eq!(w.exec("e3").place(), Place::Waiting(2));
}

#[test]
fn after_a_failure_a_passing_service_rule_rolls_nothing_back_and_frees_the_stage() {
    let mut w = rolls_back_on_alarm(ExecutionMode::Queued);
    build_bundle(&mut w, "e1", "v1");
    w.finish("e1", "Deploy", "Ship", true);
    build_bundle(&mut w, "e2", "v2");
    let asked = rule_requests(&w.finish("e2", "Deploy", "Ship", false))[0].clone();
    build_bundle(&mut w, "e3", "v3");
    let step = w.ok(answer(&asked, Verdict::Pass("errors is OK".into())));
    assert_eq!(requested(&step), vec!["Deploy/Ship#1"], "e3 gets the stage");
    assert_eq!(w.exec("e3").place(), Place::InStage(2));
    assert!(w.state.executions.values().all(|e| e.rollback.is_none()), "no rollback");
}

/// [`rolls_back`], the rollback decided by a window (`onFailure` with `ROLLBACK`): a failure
/// outside office hours is rolled back once the window has stayed shut for `timeout` minutes.
fn rolls_back_outside_the_window(timeout: u32) -> World {
    let mut w = rolls_back(ExecutionMode::Queued);
    w.plan.stages[2].conditions = StageConditions {
        on_failure: condition(ConditionResult::Rollback, vec![office_hours(timeout)]),
        ..Default::default()
    };
    w.now = monday(8, 0);
    w
}

#[test]
fn after_a_failure_a_closed_window_holds_the_stage_until_it_opens_then_frees_it() {
    let mut w = rolls_back_outside_the_window(120);
    build_bundle(&mut w, "e1", "v1");
    w.finish("e1", "Deploy", "Ship", true);
    build_bundle(&mut w, "e2", "v2");
    let failed = w.finish("e2", "Deploy", "Ship", false);
    assert!(requested(&failed).is_empty(), "nothing rolled back yet");
    assert_eq!(deploy(&w, "e2").conditions.waiting(), Some(ConditionKind::OnFailure));
    build_bundle(&mut w, "e3", "v3");
    assert_eq!(w.exec("e3").place(), Place::Waiting(2), "the failed execution holds the stage");
    w.now = monday(8, 59);
    assert!(requested(&w.ok(Input::Tick)).is_empty(), "still shut");
    w.now = monday(9, 0);
    let opened = w.ok(Input::Tick);
    assert_eq!(requested(&opened), vec!["Deploy/Ship#1"], "e3 gets the stage");
    assert_eq!(w.exec("e3").place(), Place::InStage(2));
    assert!(w.state.executions.values().all(|e| e.rollback.is_none()), "no rollback");
}

#[test]
fn after_a_failure_a_window_that_stays_shut_past_its_time_out_rolls_back() {
    let mut w = rolls_back_outside_the_window(30);
    build_bundle(&mut w, "e1", "v1");
    w.finish("e1", "Deploy", "Ship", true);
    build_bundle(&mut w, "e2", "v2");
    w.finish("e2", "Deploy", "Ship", false);
    w.now = monday(8, 29);
    assert!(requested(&w.ok(Input::Tick)).is_empty());
    w.now = monday(8, 31);
    let step = w.ok(Input::Tick);
    let redeploy = request(&step);
    assert_eq!(redeploy.input_artifacts[0].location.key, "v1");
    assert_eq!(w.exec(&redeploy.execution_id.clone()).rollback.as_ref().unwrap().target, "e1");
    let summary = &deploy(&w, "e2").conditions.on_failure.as_ref().unwrap().summary;
    assert!(summary.contains("30 minutes passed"), "{summary}");
}

#[test]
fn a_failed_stage_rolls_back_to_the_last_execution_that_succeeded_in_it() {
    let mut w = rolls_back(ExecutionMode::Queued);
    build_bundle(&mut w, "e1", "v1");
    w.finish("e1", "Deploy", "Ship", true);
    build_bundle(&mut w, "e2", "v2");
    let step = w.finish("e2", "Deploy", "Ship", false);
    assert_eq!(w.status("e2"), ExecutionStatus::Failed);
    let redeploy = request(&step);
    assert_eq!(
        (redeploy.stage.as_str(), redeploy.input_artifacts[0].location.key.as_str()),
        ("Deploy", "v1")
    );
    let rollback_id = redeploy.execution_id.clone();
    let rollback = w.exec(&rollback_id).clone();
    assert_eq!(rollback.rollback, Some(Rollback { target: "e1".into(), stage: 2 }));
    assert_eq!(rollback.trigger.trigger_type, "AutomatedRollback");
    assert_eq!(rollback.trigger.trigger_detail, "e2");
    let end = w.finish(&rollback_id, "Deploy", "Ship", true);
    assert_eq!(published(&end), vec!["Deploy/Ship SUCCEEDED", "Deploy SUCCEEDED", "SUCCEEDED"]);
    assert_eq!(w.status(&rollback_id), ExecutionStatus::Succeeded);
    assert!(w.exec(&rollback_id).stages[..2].iter().all(|s| s.status.is_none()), "only Deploy ran");
    assert_eq!(
        w.state.lanes.rollback_points[2].as_ref().map(|p| p.execution_id.as_str()),
        Some("e1"),
        "a rollback's success is not a new rollback point"
    );
}

#[test]
fn with_nothing_to_roll_back_to_the_failure_says_so() {
    let mut w = rolls_back(ExecutionMode::Queued);
    build_bundle(&mut w, "e1", "v1");
    let step = w.finish("e1", "Deploy", "Ship", false);
    assert!(requested(&step).is_empty());
    let summary = w.exec("e1").status_summary.clone().unwrap();
    assert!(summary.contains("not rolled back: no earlier execution"), "{summary}");
}

#[test]
fn a_failed_rollback_is_not_rolled_back() {
    let mut w = rolls_back(ExecutionMode::Queued);
    build_bundle(&mut w, "e1", "v1");
    w.finish("e1", "Deploy", "Ship", true);
    build_bundle(&mut w, "e2", "v2");
    let rollback_id = request(&w.finish("e2", "Deploy", "Ship", false)).execution_id.clone();
    let step = w.finish(&rollback_id, "Deploy", "Ship", false);
    assert!(requested(&step).is_empty());
    assert_eq!(w.status(&rollback_id), ExecutionStatus::Failed);
}

#[test]
fn an_on_success_rollback_result_fails_the_stage_and_rolls_back() {
    let mut w = rolls_back(ExecutionMode::Queued);
    w.plan.variables = vec![("env".into(), Some("prod".into()))];
    w.plan.stages[2].conditions = StageConditions {
        on_success: condition(ConditionResult::Rollback, vec![variable_is("prod")]),
        ..Default::default()
    };
    build_bundle(&mut w, "e1", "v1");
    w.finish("e1", "Deploy", "Ship", true);
    w.ok(Input::Start {
        execution_id: "e2".into(),
        trigger: Trigger::default(),
        variables: [("env".to_string(), "canary".to_string())].into(),
        source_revisions: Default::default(),
    });
    bundle_built(&mut w, "e2", "v2");
    let step = w.finish("e2", "Deploy", "Ship", true);
    assert_eq!(w.status("e2"), ExecutionStatus::Failed);
    let rollback = request(&step);
    assert_eq!(rollback.stage, "Deploy");
    assert_eq!(w.exec(&rollback.execution_id).variables["env"], "prod", "the target's variables");
}

#[test]
fn a_manual_rollback_reruns_the_target_and_is_refused_where_codepipeline_refuses_it() {
    let mut w = rolls_back(ExecutionMode::Queued);
    build_bundle(&mut w, "e1", "v1");
    w.finish("e1", "Deploy", "Ship", true);
    let point = RollbackPoint::of(w.exec("e1"), 2).expect("e1 succeeded in Deploy");
    let rollback = |stage: &str, point: &RollbackPoint| Input::Rollback {
        execution_id: "r1".into(),
        stage: stage.into(),
        point: point.clone(),
        trigger: Trigger { trigger_type: "ManualRollback".into(), trigger_detail: "ana".into() },
    };
    assert!(matches!(w.when(rollback("Source", &point)), Err(Rejection::UnableToRollbackStage(_))));
    let old = RollbackPoint { pipeline_version: 0, ..point.clone() };
    assert!(matches!(w.when(rollback("Deploy", &old)), Err(Rejection::ExecutionOutdated(_))));
    let step = w.ok(rollback("Deploy", &point));
    assert_eq!(request(&step).input_artifacts[0].location.key, "v1");
    assert!(w.ok(rollback("Deploy", &point)).is_noop(), "the same rollback again");
    let mut parallel = rolls_back(ExecutionMode::Parallel);
    assert!(matches!(
        parallel.when(rollback("Deploy", &point)),
        Err(Rejection::UnableToRollbackStage(_))
    ));
}

#[test]
fn a_waiting_rollback_goes_first_and_supersedes_nobody() {
    let mut w = rolls_back(ExecutionMode::Superseded);
    build_bundle(&mut w, "e1", "v1");
    w.finish("e1", "Deploy", "Ship", true);
    build_bundle(&mut w, "e2", "v2");
    // e3 reaches Deploy's door while e2 deploys.
    build_bundle(&mut w, "e3", "v3");
    assert_eq!(w.exec("e3").place(), Place::Waiting(2));
    let step = w.finish("e2", "Deploy", "Ship", false);
    let rollback_id = request(&step).execution_id.clone();
    assert_eq!(w.exec(&rollback_id).place(), Place::InStage(2), "the rollback went first");
    assert_eq!(w.status("e3"), ExecutionStatus::InProgress, "e3 still waits");
    w.finish(&rollback_id, "Deploy", "Ship", true);
    assert_eq!(w.exec("e3").place(), Place::InStage(2));
}
