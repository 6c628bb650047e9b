//! Showing an execution: a compact table redrawn in place on a terminal, plain lines of what
//! changed otherwise.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use baton_core::engine::{ActionRun, ActionStatus, Execution, Millis, StageStatus};
use baton_core::plan::Plan;

/// Follows one execution as it changes.
pub(crate) struct Live {
    terminal: bool,
    drawn_lines: usize,
    seen: BTreeMap<String, String>,
}

impl Live {
    pub(crate) fn new() -> Self {
        Self { terminal: std::io::stdout().is_terminal(), drawn_lines: 0, seen: BTreeMap::new() }
    }

    /// Shows `e` as it is at `now`.
    pub(crate) fn show(&mut self, plan: &Plan, e: &Execution, now: Millis) {
        if self.terminal {
            self.redraw(plan, e, now);
        } else {
            self.print_changes(plan, e, now);
        }
    }

    fn redraw(&mut self, plan: &Plan, e: &Execution, now: Millis) {
        let text = table(plan, e, now);
        let mut out = std::io::stdout().lock();
        if self.drawn_lines > 0 {
            let _ = write!(out, "\x1b[{}A\x1b[J", self.drawn_lines);
        }
        let _ = write!(out, "{text}");
        let _ = out.flush();
        self.drawn_lines = text.lines().count();
    }

    fn print_changes(&mut self, plan: &Plan, e: &Execution, now: Millis) {
        let elapsed = secs(now - e.started_at);
        let mut lines = Vec::new();
        let mut note = |key: String, value: String, line: String| {
            if self.seen.get(&key) != Some(&value) {
                self.seen.insert(key, value);
                lines.push(line);
            }
        };
        let status = format!("{:?}", e.status);
        note(
            "execution".into(),
            status.clone(),
            format!("{elapsed:>7}  execution {} {status}", short(&e.id)),
        );
        for (s, stage) in plan.stages.iter().enumerate().filter(|_| e.runs(plan)) {
            let run = &e.stages[s];
            if let Some(st) = run.status {
                let v = format!("{st:?}#{}", run.attempt);
                note(format!("s{s}"), v, format!("{elapsed:>7}    {} {st:?}", stage.name));
            }
            for (a, action) in stage.actions.iter().enumerate() {
                let r = &run.actions[a];
                if r.attempt == 0 {
                    continue;
                }
                let v = format!("{:?}#{}", r.status, r.attempt);
                let extra = action_detail(r);
                note(
                    format!("s{s}a{a}"),
                    v,
                    format!(
                        "{elapsed:>7}      {}/{} {:?} (attempt {}){extra}",
                        stage.name, action.name, r.status, r.attempt
                    ),
                );
            }
        }
        for l in lines {
            println!("{l}");
        }
    }
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
    let end = if e.status.is_ended() { e.updated_at } else { now };
    let mut out = format!(
        "Pipeline {}  execution {}  {:?}  {}\n",
        plan.name,
        short(&e.id),
        e.status,
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
        }
    }
    if let Some(summary) = &e.status_summary {
        out.push_str(&format!("  {summary}\n"));
    }
    out
}

fn waiting_label(e: &Execution, s: usize) -> String {
    match e.place {
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
    }
}

pub(crate) fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

pub(crate) fn secs(millis: Millis) -> String {
    format!("{:.1}s", millis.max(0) as f64 / 1000.0)
}
