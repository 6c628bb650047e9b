//! `baton simulate`: runs the engine over a declaration with simulated action results, printing
//! the execution as it unfolds. No provider runs and nothing is stored: it shows what the
//! pipeline would do, in which order, with which resolved configuration.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use baton_core::declaration::PipelineDocument;
use baton_core::engine::{
    ActionError, ActionOutcome, ActionRequest, Artifact, ArtifactLocation, Effect, Env, Input,
    PipelineState, Trigger, apply,
};
use baton_core::events::uuid_from;
use baton_core::plan::{Placement, Plan};
use baton_core::rules::Verdict;

/// Simulated start: 2026-01-01T00:00:00Z.
const EPOCH: i64 = 1_767_225_600_000;

pub(crate) fn run(file: &Path, region: &str, fail: &[String]) -> Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let doc = PipelineDocument::parse(&text).with_context(|| format!("{}", file.display()))?;
    let placement = Placement {
        account: "000000000000".into(),
        region: region.into(),
        event_source: "baton.codepipeline".into(),
    };
    let plan = match Plan::from_declaration(&doc.pipeline, &placement) {
        Ok(plan) => plan,
        Err(errors) => {
            for e in &errors {
                eprintln!("{}: {e}", file.display());
            }
            bail!("{} is not a valid pipeline ({} errors)", file.display(), errors.len());
        }
    };
    let actions: Vec<String> = plan
        .stages
        .iter()
        .flat_map(|s| s.actions.iter().map(move |a| format!("{}/{}", s.name, a.name)))
        .collect();
    for f in fail {
        if !actions.contains(f) {
            bail!(
                "--fail {f}: the pipeline has no action STAGE/ACTION like that{}",
                crate::names::nearest(f, actions.iter().map(String::as_str))
            );
        }
    }
    crate::output::note(format_args!(
        "Simulating pipeline \"{}\" ({} mode, {} stages); actions succeed unless --fail names them.",
        plan.name,
        plan.mode.as_str(),
        plan.stages.len()
    ));
    let mut sim = Simulation {
        plan: &plan,
        state: PipelineState::new(plan.stages.len()),
        now: EPOCH,
        queue: BTreeMap::new(),
        fail,
        seq: 0,
    };
    let execution_id = uuid_from(&format!("{}|simulate", plan.name));
    sim.apply(Input::Start {
        execution_id: execution_id.clone(),
        trigger: Trigger {
            trigger_type: "StartPipelineExecution".into(),
            trigger_detail: "baton simulate".into(),
        },
        variables: BTreeMap::new(),
        source_revisions: Default::default(),
    })?;
    while let Some(((at, _), input)) = sim.queue.pop_first() {
        sim.now = at;
        sim.apply(input)?;
    }
    let execution = &sim.state.executions[&execution_id];
    let took = (sim.now - EPOCH) / 1000;
    let status = format!("{:?}", execution.status());
    let mut said = format!("Execution {execution_id}: {status} after {took} simulated seconds.");
    if let Some(summary) = &execution.status_summary {
        said.push_str(&format!("\n  {summary}"));
    }
    let document = serde_json::json!({"pipelineExecutionId": execution_id, "status": status,
        "statusSummary": execution.status_summary, "simulatedSeconds": took});
    crate::output::result(&document, said);
    Ok(if format!("{:?}", execution.status()) == "Succeeded" {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

struct Simulation<'a> {
    plan: &'a Plan,
    state: PipelineState,
    now: i64,
    /// Simulated results by (time, sequence): the earliest first.
    queue: BTreeMap<(i64, u64), Input>,
    fail: &'a [String],
    seq: u64,
}

impl Simulation<'_> {
    fn apply(&mut self, input: Input) -> Result<()> {
        let env = Env { now: self.now, entropy: u128::from(self.seq) << 64 | 0x5eed };
        let step = apply(self.plan, &mut self.state, &input, env)
            .context("the engine refused an input")?;
        for effect in step.effects {
            match effect {
                Effect::Publish(event) => print_event(self.now, &event.detail),
                Effect::RequestAction(request) => self.schedule(&request),
                Effect::RequestRule(r) => {
                    // A rule that asks a service passes, or fails with --fail STAGE/RULE.
                    let name = format!("{}/{}", r.stage, r.rule);
                    let verdict = if self.fail.contains(&name) {
                        Verdict::Fail("failed on purpose (--fail)".into())
                    } else {
                        Verdict::Pass(format!("{} rule passed (simulation)", r.provider))
                    };
                    crate::output::note(format_args!(
                        "{}      {name}: {} rule asked",
                        clock(self.now),
                        r.provider
                    ));
                    self.seq += 1;
                    let input = Input::RuleCompleted {
                        execution_id: r.execution_id.clone(),
                        stage: r.stage.clone(),
                        condition: r.condition,
                        rule: r.rule.clone(),
                        request: r.request,
                        verdict,
                        handle: None,
                    };
                    self.queue.insert((self.now + 1_000, self.seq), input);
                }
                Effect::NotifyFailure(n) => {
                    crate::output::note(format_args!(
                        "{}  notice: pipeline {} failed in stage {}: {}",
                        clock(self.now),
                        n.pipeline,
                        n.stage,
                        n.failures.join("; ")
                    ));
                }
            }
        }
        Ok(())
    }

    /// Queues the simulated result of an action, a few simulated seconds later.
    fn schedule(&mut self, r: &ActionRequest) {
        self.seq += 1;
        let name = format!("{}/{}", r.stage, r.action);
        for (k, v) in &r.configuration {
            crate::output::note(format_args!("{}      {name}: {k} = {v}", clock(self.now)));
        }
        let duration = 2_000 + i64::from((self.seq as u32).wrapping_mul(2_654_435_761) % 8) * 1_000;
        let input = if r.action_type.is_manual_approval() {
            crate::output::note(format_args!(
                "{}      {name}: approved automatically (simulation)",
                clock(self.now)
            ));
            Input::ApprovalDecided {
                stage: r.stage.clone(),
                action: r.action.clone(),
                token: r.token.clone().unwrap_or_default(),
                approved: !self.fail.contains(&name),
                summary: "simulated decision".into(),
                by: "baton simulate".into(),
            }
        } else {
            r.completion(self.outcome(r, self.fail.contains(&name)))
        };
        self.queue.insert((self.now + duration, self.seq), input);
    }

    fn outcome(&self, r: &ActionRequest, fail: bool) -> ActionOutcome {
        if fail {
            return ActionOutcome::Failed {
                error: ActionError {
                    code: "JobFailed".into(),
                    message: "failed on purpose (--fail)".into(),
                },
                external_id: None,
                external_url: None,
                targets: Vec::new(),
            };
        }
        let artifacts = r
            .output_artifacts
            .iter()
            .map(|name| Artifact {
                name: name.clone(),
                location: ArtifactLocation {
                    bucket: format!("simulated-{}", r.region),
                    key: format!("{}/{name}/{}.zip", r.pipeline, &r.execution_id[..8]),
                },
            })
            .collect();
        let mut output_variables = BTreeMap::new();
        if r.action_type.category == "Source" {
            let commit = uuid_from(&r.execution_id).replace('-', "");
            output_variables
                .insert("CommitId".to_string(), commit[..40.min(commit.len())].to_string());
            output_variables.insert("CommitMessage".to_string(), "Simulated commit".to_string());
            for key in ["BranchName", "RepositoryName"] {
                if let Some(v) = r.configuration.get(key) {
                    output_variables.insert(key.to_string(), v.clone());
                }
            }
        }
        ActionOutcome::Succeeded {
            output_variables,
            artifacts,
            summary: Some("simulated".into()),
            external_id: None,
            external_url: None,
            targets: Vec::new(),
        }
    }
}

fn print_event(now: i64, d: &serde_json::Value) {
    let text = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let state = text("state");
    let line = match (d.get("stage"), d.get("action")) {
        (Some(_), Some(_)) => format!("    {}/{} {state}", text("stage"), text("action")),
        (Some(_), None) => format!("  stage {} {state}", text("stage")),
        _ => format!("execution {} {state}", &text("execution-id")[..8]),
    };
    let detail = d
        .get("execution-result")
        .and_then(|r| r.get("error-code"))
        .map(|_| {
            format!(
                " ({})",
                d["execution-result"]["external-execution-summary"].as_str().unwrap_or_default()
            )
        })
        .unwrap_or_default();
    crate::output::note(format_args!("{}  {line}{detail}", clock(now)));
}

/// `+mm:ss` since the simulated start.
fn clock(now: i64) -> String {
    let s = (now - EPOCH) / 1000;
    format!("+{:02}:{:02}", s / 60, s % 60)
}
