//! Showing an execution: a compact table redrawn in place on a terminal, plain lines of what
//! changed otherwise.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use baton_core::engine::{ActionRun, ActionStatus, ConditionKind, Execution, Millis, StageStatus};
use baton_core::plan::Plan;

/// Follows one execution as it changes.
pub(crate) struct Live {
    terminal: bool,
    drawn_lines: usize,
    printed: Printed,
}

impl Live {
    /// A table redrawn in place on a terminal; plain lines in order on a pipe, with `CI=true`
    /// or on a terminal that cannot move its cursor (`TERM=dumb`).
    pub(crate) fn new() -> Self {
        let plain = std::env::var("CI").is_ok_and(|v| v == "true")
            || std::env::var("TERM").is_ok_and(|t| t == "dumb");
        // Under `--output json` standard output holds the result alone: the view goes to
        // standard error.
        let terminal = if crate::output::json() {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        };
        Self { terminal: terminal && !plain, drawn_lines: 0, printed: Printed::default() }
    }

    /// Shows `e` as it is at `now`.
    pub(crate) fn show(&mut self, plan: &Plan, e: &Execution, now: Millis) {
        if self.terminal {
            self.redraw(plan, e, now);
        } else {
            for line in self.printed.lines(plan, e) {
                crate::output::note(line);
            }
        }
    }

    fn redraw(&mut self, plan: &Plan, e: &Execution, now: Millis) {
        let text = fit(&table(plan, e, now), columns());
        let mut out: Box<dyn Write> = if crate::output::json() {
            Box::new(std::io::stderr().lock())
        } else {
            Box::new(std::io::stdout().lock())
        };
        if self.drawn_lines > 0 {
            let _ = write!(out, "\x1b[{}A\x1b[J", self.drawn_lines);
        }
        let _ = write!(out, "{text}");
        let _ = out.flush();
        self.drawn_lines = text.lines().count();
    }
}

/// The terminal's width: `COLUMNS` where set (shells keep it without exporting it, so it is
/// a user's choice), else the terminal's own, else 120.
fn columns() -> usize {
    let asked = || {
        let size = if crate::output::json() {
            rustix::termios::tcgetwinsize(std::io::stderr())
        } else {
            rustix::termios::tcgetwinsize(std::io::stdout())
        };
        size.ok().map(|w| usize::from(w.ws_col))
    };
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .or_else(asked)
        .filter(|&c| c > 0)
        .unwrap_or(120)
}

/// Each line cut to `width` characters, so none wraps: a wrapped line would throw off the
/// count of lines to move up by on the next redraw.
fn fit(text: &str, width: usize) -> String {
    text.lines().map(|l| format!("{}\n", l.chars().take(width).collect::<String>())).collect()
}

/// The plain view: every state each execution, stage and action went through, once each and
/// in the order they happened, even when a look at the execution came too late to see a
/// state (a quick action is seen only once it has succeeded). Times are the execution's own
/// (its start to each change, as `baton history` shows them), not when a look happened.
#[derive(Default)]
pub(crate) struct Printed(BTreeMap<String, String>);

impl Printed {
    /// The lines not printed yet for `e`, in order.
    pub(crate) fn lines(&mut self, plan: &Plan, e: &Execution) -> Vec<String> {
        let at = |millis: Millis| format!("{:>7}", secs(millis - e.started_at));
        let mut out = Vec::new();
        let mut note = |key: String, value: String, line: String| {
            if self.0.get(&key) != Some(&value) {
                self.0.insert(key, value);
                out.push(line);
            }
        };
        let id = short(&e.id);
        note("x".into(), String::new(), format!("{}  execution {id} InProgress", at(e.started_at)));
        if e.runs(plan) {
            for (s, stage) in plan.stages.iter().enumerate() {
                let run = &e.stages[s];
                let Some(status) = run.status else { continue };
                let started: Vec<&ActionRun> =
                    run.actions.iter().filter(|r| r.attempt > 0).collect();
                let began =
                    started.iter().filter_map(|r| r.started_at).min().unwrap_or(e.updated_at);
                let attempt = format!("#{}", run.attempt);
                note(
                    format!("s{s}"),
                    attempt.clone(),
                    format!("{}    {} InProgress", at(began), stage.name),
                );
                // Why a stage waits or ended on a condition: a closed window, a failed check.
                // An entry condition comes before the actions' lines, the others after them.
                let condition = |kind: ConditionKind| {
                    run.conditions.get(kind).map(|c| {
                        let line = format!(
                            "{}      {} condition {:?}: {}",
                            at(c.updated_at),
                            kind.as_str(),
                            c.status,
                            c.summary
                        );
                        (format!("s{s}{}", kind.as_str()), format!("{attempt}{:?}", c.status), line)
                    })
                };
                if let Some((key, value, line)) = condition(ConditionKind::BeforeEntry) {
                    note(key, value, line);
                }
                for (a, action) in stage.actions.iter().enumerate() {
                    let r = &run.actions[a];
                    if r.attempt == 0 {
                        continue;
                    }
                    let name = format!("{}/{} (attempt {})", stage.name, action.name, r.attempt);
                    let first = r.started_at.unwrap_or(began);
                    let waiting = if r.status == ActionStatus::InProgress {
                        action_detail(r)
                    } else {
                        String::new()
                    };
                    note(
                        format!("s{s}a{a}"),
                        format!("#{}", r.attempt),
                        format!("{}      {name} InProgress{waiting}", at(first)),
                    );
                    if r.status == ActionStatus::InProgress && r.token.is_some() {
                        note(
                            format!("s{s}a{a}approve"),
                            format!("#{}", r.attempt),
                            format!("{:>7}        {}", "", approve_hint(plan, stage, action)),
                        );
                    }
                    if r.status != ActionStatus::InProgress {
                        note(
                            format!("s{s}a{a}end"),
                            format!("{:?}#{}", r.status, r.attempt),
                            format!(
                                "{}      {name} {:?}{}",
                                at(r.updated_at.unwrap_or(first)),
                                r.status,
                                action_detail(r)
                            ),
                        );
                    }
                }
                for kind in [ConditionKind::OnSuccess, ConditionKind::OnFailure] {
                    if let Some((key, value, line)) = condition(kind) {
                        note(key, value, line);
                    }
                }
                if status != StageStatus::InProgress {
                    let ended = started.iter().filter_map(|r| r.updated_at).max().unwrap_or(began);
                    note(
                        format!("s{s}end"),
                        format!("{status:?}{attempt}"),
                        format!("{}    {} {}", at(ended), stage.name, stage_label(status)),
                    );
                }
            }
        }
        if e.status().is_ended() {
            let summary = e.status_summary.as_ref().map(|m| format!(": {m}")).unwrap_or_default();
            note(
                "xend".into(),
                format!("{:?}", e.status()),
                format!("{}  execution {id} {:?}{summary}", at(e.updated_at), e.status()),
            );
        }
        out
    }
}

/// How to decide a waiting approval, said where the approval is (the notice itself, with its
/// links, is in the home's `notices.log` and in the mail).
fn approve_hint(
    plan: &Plan,
    stage: &baton_core::plan::StagePlan,
    action: &baton_core::plan::ActionPlan,
) -> String {
    format!(
        "approve with: baton approve {} {} {} (or reject; the links are in notices.log)",
        plan.name, stage.name, action.name
    )
}

fn action_detail(r: &ActionRun) -> String {
    match (&r.status, &r.error, &r.token) {
        (ActionStatus::Failed, Some(err), _) => format!(": {}", err.message),
        (ActionStatus::InProgress, _, Some(_)) => ": waiting for approval".into(),
        _ => String::new(),
    }
}

/// The whole execution as a table.
pub(crate) fn table(plan: &Plan, e: &Execution, now: Millis) -> String {
    let end = if e.status().is_ended() { e.updated_at } else { now };
    let mut out = format!(
        "Pipeline {}  execution {}  {:?}  {}\n",
        plan.name,
        short(&e.id),
        e.status(),
        secs(end - e.started_at)
    );
    if !e.runs(plan) {
        out.push_str(&format!(
            "  It ran version {} of the pipeline, which is now at version {}: its stages are not shown.\n",
            e.pipeline_version, plan.version
        ));
        return out;
    }
    let width = plan
        .stages
        .iter()
        .flat_map(|s| s.actions.iter())
        .map(|a| a.name.len())
        .max()
        .unwrap_or(6)
        .max(6);
    let swidth = plan.stages.iter().map(|s| s.name.len()).max().unwrap_or(5).max(5);
    for (s, stage) in plan.stages.iter().enumerate() {
        let run = &e.stages[s];
        let stage_status =
            run.status.map_or_else(|| waiting_label(e, s), |st| stage_label(st).to_string());
        for (a, action) in stage.actions.iter().enumerate() {
            let r = &run.actions[a];
            let name = if a == 0 { stage.name.as_str() } else { "" };
            let sstatus = if a == 0 { stage_status.as_str() } else { "" };
            let (status, attempt, took) = if r.attempt == 0 {
                ("-".to_string(), String::new(), String::new())
            } else {
                let until = if r.status == ActionStatus::InProgress {
                    now
                } else {
                    r.updated_at.unwrap_or(now)
                };
                (
                    format!("{:?}", r.status),
                    format!("#{}", r.attempt),
                    secs(until - r.started_at.unwrap_or(until)),
                )
            };
            out.push_str(&format!(
                "  {name:<swidth$}  {sstatus:<11} {:<width$}  {status:<10} {attempt:<3} {took:>7}{}\n",
                action.name,
                action_detail(r)
            ));
            if r.status == ActionStatus::InProgress && r.token.is_some() {
                out.push_str(&format!("    {}\n", approve_hint(plan, stage, action)));
            }
        }
    }
    if let Some(summary) = &e.status_summary {
        out.push_str(&format!("  {summary}\n"));
    }
    out
}

fn waiting_label(e: &Execution, s: usize) -> String {
    match e.place() {
        baton_core::engine::Place::Waiting(w) if w == s => "Waiting".into(),
        _ => "-".into(),
    }
}

fn stage_label(s: StageStatus) -> &'static str {
    match s {
        StageStatus::InProgress => "InProgress",
        StageStatus::Stopping => "Stopping",
        StageStatus::Stopped => "Stopped",
        StageStatus::Succeeded => "Succeeded",
        StageStatus::Failed => "Failed",
        StageStatus::Cancelled => "Cancelled",
        StageStatus::Skipped => "Skipped",
    }
}

pub(crate) fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

pub(crate) fn secs(millis: Millis) -> String {
    format!("{:.1}s", millis.max(0) as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use baton_core::declaration::PipelineDocument;
    use baton_core::engine::{
        self, ActionOutcome, Artifact, ArtifactLocation, Env, Input, PipelineState, Trigger,
    };
    use baton_core::plan::{Placement, Plan};

    use super::*;

    const PIPELINE: &str = r#"{"name": "release", "roleArn": "arn:aws:iam::111111111111:role/r",
      "artifactStore": {"type": "S3", "location": "artifacts"},
      "stages": [
        {"name": "Source", "actions": [{"name": "Checkout",
          "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
          "configuration": {"S3Bucket": "b", "S3ObjectKey": "k"}, "outputArtifacts": [{"name": "Src"}]}]},
        {"name": "Test", "actions": [
          {"name": "Lint", "actionTypeId": {"category": "Test", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
           "configuration": {"ProjectName": "l"}, "inputArtifacts": [{"name": "Src"}]},
          {"name": "Smoke", "actionTypeId": {"category": "Test", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
           "configuration": {"ProjectName": "s"}, "inputArtifacts": [{"name": "Src"}]}]},
        {"name": "Approve", "actions": [{"name": "Gate",
          "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}]},
        {"name": "Deploy", "actions": [{"name": "Site",
          "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
          "configuration": {"BucketName": "site", "Extract": "true"}, "inputArtifacts": [{"name": "Src"}]}]}]}"#;

    fn plan_of(declaration: serde_json::Value) -> Plan {
        let doc = PipelineDocument::from_value(declaration).unwrap();
        let placement = Placement {
            account: "111111111111".into(),
            region: "us-east-1".into(),
            event_source: "baton.codepipeline".into(),
        };
        Plan::from_declaration(&doc.pipeline, &placement).unwrap()
    }

    /// A recorded release: the execution after each step, with whether the view looked then.
    /// It looks rarely, as a poll does: quick actions are only seen once they have ended.
    fn recorded() -> (Plan, Vec<(bool, Execution)>) {
        let plan = plan_of(serde_json::from_str(PIPELINE).unwrap());
        let mut state = PipelineState::new(plan.stages.len());
        let id = "1234abcd-0000-4000-8000-000000000000";
        let mut seen = Vec::new();
        let mut step = |state: &mut PipelineState, now: i64, input: Input, looked: bool| {
            engine::apply(&plan, state, &input, Env { now, entropy: 7 }).unwrap();
            seen.push((looked, state.executions[id].clone()));
        };
        let done = |stage: &str, action: &str| Input::ActionCompleted {
            execution_id: id.into(),
            stage: stage.into(),
            action: action.into(),
            attempt: 1,
            outcome: ActionOutcome::Succeeded {
                output_variables: BTreeMap::new(),
                artifacts: if stage == "Source" {
                    vec![Artifact {
                        name: "Src".into(),
                        location: ArtifactLocation { bucket: "artifacts".into(), key: "k".into() },
                    }]
                } else {
                    vec![]
                },
                summary: None,
                external_id: None,
                external_url: None,
                targets: Vec::new(),
            },
        };
        let start = Input::Start {
            execution_id: id.into(),
            trigger: Trigger {
                trigger_type: "StartPipelineExecution".into(),
                trigger_detail: "t".into(),
            },
            variables: BTreeMap::new(),
            source_revisions: Default::default(),
        };
        step(&mut state, 1_000, start, true);
        step(&mut state, 1_400, done("Source", "Checkout"), false);
        step(&mut state, 1_900, done("Test", "Lint"), false);
        step(&mut state, 2_300, done("Test", "Smoke"), true);
        let token = state.executions[id].stages[2].actions[0].token.clone().unwrap();
        let decided = Input::ApprovalDecided {
            stage: "Approve".into(),
            action: "Gate".into(),
            token,
            approved: true,
            summary: "ok".into(),
            by: "ana".into(),
        };
        step(&mut state, 5_000, decided, false);
        step(&mut state, 5_600, done("Deploy", "Site"), true);
        (plan, seen)
    }

    #[test]
    fn the_plain_view_prints_every_state_once_in_the_order_it_happened() {
        let (plan, recorded) = recorded();
        let mut printed = Printed::default();
        let mut lines = Vec::new();
        for (looked, e) in &recorded {
            if *looked {
                lines.extend(printed.lines(&plan, e));
            }
        }
        let expected = [
            "   0.0s  execution 1234abcd InProgress",
            "   0.0s    Source InProgress",
            "   0.0s      Source/Checkout (attempt 1) InProgress",
            "   0.4s      Source/Checkout (attempt 1) Succeeded",
            "   0.4s    Source Succeeded",
            "   0.4s    Test InProgress",
            "   0.4s      Test/Lint (attempt 1) InProgress",
            "   0.9s      Test/Lint (attempt 1) Succeeded",
            "   0.4s      Test/Smoke (attempt 1) InProgress",
            "   1.3s      Test/Smoke (attempt 1) Succeeded",
            "   1.3s    Test Succeeded",
            "   1.3s    Approve InProgress",
            "   1.3s      Approve/Gate (attempt 1) InProgress: waiting for approval",
            "               approve with: baton approve release Approve Gate (or reject; the links are in notices.log)",
            "   4.0s      Approve/Gate (attempt 1) Succeeded",
            "   4.0s    Approve Succeeded",
            "   4.0s    Deploy InProgress",
            "   4.0s      Deploy/Site (attempt 1) InProgress",
            "   4.6s      Deploy/Site (attempt 1) Succeeded",
            "   4.6s    Deploy Succeeded",
            "   4.6s  execution 1234abcd Succeeded",
        ];
        assert_eq!(lines, expected, "\n{}", lines.join("\n"));
        // Looking again changes nothing; the last line's time is the execution's own, as
        // `baton history` shows it.
        assert!(printed.lines(&plan, &recorded[5].1).is_empty());
        let last = &recorded[5].1;
        assert_eq!(secs(last.updated_at - last.started_at), "4.6s");
    }

    /// The plain view's lines once execution `e` of `declaration` started (at 1 s) and its
    /// source succeeded (at 2 s).
    fn lines_after_the_source(declaration: serde_json::Value) -> Vec<String> {
        let plan = plan_of(declaration);
        let mut state = PipelineState::new(plan.stages.len());
        let start = Input::Start {
            execution_id: "e".into(),
            trigger: Trigger::default(),
            variables: BTreeMap::new(),
            source_revisions: Default::default(),
        };
        let source = Input::ActionCompleted {
            execution_id: "e".into(),
            stage: "Source".into(),
            action: "Checkout".into(),
            attempt: 1,
            outcome: ActionOutcome::Succeeded {
                output_variables: BTreeMap::new(),
                artifacts: vec![],
                summary: None,
                external_id: None,
                external_url: None,
                targets: Vec::new(),
            },
        };
        for (now, input) in [(1_000, start), (2_000, source)] {
            engine::apply(&plan, &mut state, &input, Env { now, entropy: 7 }).unwrap();
        }
        Printed::default().lines(&plan, &state.executions["e"])
    }

    #[test]
    fn a_stage_held_by_its_entry_condition_says_why() {
        let mut doc: serde_json::Value = serde_json::from_str(PIPELINE).unwrap();
        doc["pipelineType"] = "V2".into();
        doc["stages"][1]["beforeEntry"] = serde_json::json!({"conditions": [{"result": "FAIL",
            "rules": [{"name": "Never", "configuration": {"Cron": "* * * * * ? 2199"},
                "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "DeploymentWindow", "version": "1"}}]}]});
        let lines = lines_after_the_source(doc);
        assert_eq!(
            lines.last().map(String::as_str),
            Some(
                "   1.0s      beforeEntry condition InProgress: rule Never: Outside the window * * * * * ? 2199; waiting for it"
            ),
            "{lines:#?}"
        );
    }

    /// A check after the actions is printed after their lines, even when one look sees both.
    #[test]
    fn an_exit_condition_comes_after_the_actions_it_checked() {
        let mut doc: serde_json::Value = serde_json::from_str(PIPELINE).unwrap();
        doc["pipelineType"] = "V2".into();
        doc["stages"][0]["onSuccess"] = serde_json::json!({"conditions": [{"result": "FAIL",
            "rules": [{"name": "Never", "configuration": {"Variable": "a", "Operator": "EQ", "Value": "b"},
                "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "VariableCheck", "version": "1"}}]}]});
        let lines = lines_after_the_source(doc);
        let position = |text: &str| lines.iter().position(|l| l.contains(text)).unwrap();
        assert!(
            position("Source/Checkout (attempt 1) Succeeded")
                < position("onSuccess condition Failed"),
            "{lines:#?}"
        );
        assert!(position("onSuccess condition Failed") < position("Source Failed"), "{lines:#?}");
    }

    #[test]
    fn a_terminal_table_is_cut_to_the_width() {
        assert_eq!(fit("abcdef\nxy\n", 4), "abcd\nxy\n");
    }
}
