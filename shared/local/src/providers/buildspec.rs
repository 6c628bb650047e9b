//! The buildspec (version 0.2) as the local CodeBuild reads it: environment, the four phases
//! and the artifacts. Keys this runner cannot honour on one machine (`run-as`,
//! `runtime-versions`, `reports`, `cache`, `proxy`, `batch`) are accepted and ignored, so a
//! buildspec written for CodeBuild runs unchanged; keys that would change results (an unknown
//! shell or `on-failure`) are refused. `parameter-store` and `secrets-manager` references are
//! kept for the provider, which resolves them from the home's secret store.
//!
//! Reference: the CodeBuild User Guide's "Build specification reference" (build-spec-ref).

use indexmap::IndexMap;
use serde::Deserialize;

use baton_app::ports::secrets::SecretKind;
use serde_norway::Value;

use super::glob::Selection;

/// A parsed buildspec.
#[derive(Debug, Clone, Default)]
pub(crate) struct Buildspec {
    pub(crate) shell: Shell,
    /// `env.variables`, literal values in declaration order.
    pub(crate) variables: IndexMap<String, String>,
    /// `env.exported-variables`.
    pub(crate) exported: Vec<String>,
    /// `env.parameter-store` and `env.secrets-manager`: (variable, kind, reference).
    pub(crate) secrets: Vec<(String, SecretKind, String)>,
    /// `install`, `pre_build`, `build`, `post_build`, in that order.
    pub(crate) phases: [Phase; 4],
    pub(crate) artifacts: Option<Artifacts>,
}

/// The names CodeBuild logs for the four buildspec phases, in run order.
pub(crate) const PHASE_NAMES: [&str; 4] = ["INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD"];

/// The shell that runs commands (`env.shell`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Shell {
    #[default]
    Bash,
    /// `/bin/sh`, run as bash in POSIX mode (the runner needs bash to carry state over).
    Posix,
}

/// What `on-failure` says to do after a phase fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnFailure {
    Abort,
    Continue,
}

/// One phase.
#[derive(Debug, Clone, Default)]
pub(crate) struct Phase {
    pub(crate) commands: Vec<String>,
    pub(crate) finally: Vec<String>,
    /// `None`: CodeBuild's default transitions.
    pub(crate) on_failure: Option<OnFailure>,
}

/// The `artifacts` section.
#[derive(Debug, Clone, Default)]
pub(crate) struct Artifacts {
    pub(crate) primary: Selection,
    /// `secondary-artifacts`, by artifact identifier.
    pub(crate) secondary: IndexMap<String, Selection>,
}

#[derive(Deserialize)]
struct Raw {
    version: Option<Value>,
    #[serde(default)]
    env: Option<RawEnv>,
    #[serde(default)]
    phases: Option<IndexMap<String, Option<RawPhase>>>,
    #[serde(default)]
    artifacts: Option<RawArtifacts>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct RawEnv {
    shell: Option<String>,
    #[serde(default)]
    variables: Option<IndexMap<String, Value>>,
    #[serde(default)]
    parameter_store: Option<IndexMap<String, Value>>,
    #[serde(default)]
    secrets_manager: Option<IndexMap<String, Value>>,
    #[serde(default)]
    exported_variables: Option<Vec<Value>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct RawPhase {
    #[serde(default)]
    commands: Option<Vec<Value>>,
    #[serde(default)]
    finally: Option<Vec<Value>>,
    on_failure: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct RawArtifacts {
    #[serde(flatten)]
    selection: RawSelection,
    #[serde(default)]
    secondary_artifacts: Option<IndexMap<String, RawSelection>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
struct RawSelection {
    #[serde(default)]
    files: Option<Vec<Value>>,
    base_directory: Option<Value>,
    discard_paths: Option<Value>,
    /// The S3 object name in CodeBuild; CodePipeline names artifacts itself, so unused here.
    #[allow(dead_code)]
    name: Option<Value>,
}

/// Parses buildspec text; the error is one sentence for the action's failure message.
pub(crate) fn parse(text: &str) -> Result<Buildspec, String> {
    let raw: Raw =
        serde_norway::from_str(text).map_err(|e| format!("the buildspec is not valid: {e}"))?;
    check_version(raw.version.as_ref())?;
    let mut spec = Buildspec::default();
    if let Some(env) = raw.env {
        read_env(env, &mut spec)?;
    }
    for (name, phase) in raw.phases.unwrap_or_default() {
        let slot = match name.as_str() {
            "install" => 0,
            "pre_build" => 1,
            "build" => 2,
            "post_build" => 3,
            other => return Err(format!("the buildspec has an unknown phase \"{other}\"")),
        };
        spec.phases[slot] = read_phase(&name, phase.unwrap_or_default())?;
    }
    spec.artifacts = raw.artifacts.map(read_artifacts).transpose()?;
    Ok(spec)
}

fn check_version(version: Option<&Value>) -> Result<(), String> {
    let text = match version {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => return Err("the buildspec needs a version (0.2)".to_string()),
    };
    match text.as_str() {
        "0.2" => Ok(()),
        "0.1" => Err("buildspec version 0.1 is not supported locally; use version 0.2".to_string()),
        other => Err(format!("buildspec version {other} is not supported; use version 0.2")),
    }
}

fn read_env(env: RawEnv, spec: &mut Buildspec) -> Result<(), String> {
    spec.shell = match env.shell.as_deref().map(str::trim) {
        None | Some("bash") | Some("/bin/bash") => Shell::Bash,
        Some("/bin/sh") | Some("sh") => Shell::Posix,
        Some(other) => {
            return Err(format!(
                "env/shell \"{other}\" is not supported locally; use bash or /bin/sh"
            ));
        }
    };
    for (kind, map) in [
        (SecretKind::ParameterStore, env.parameter_store),
        (SecretKind::SecretsManager, env.secrets_manager),
    ] {
        for (name, reference) in map.unwrap_or_default() {
            spec.secrets.push((name, kind, scalar(&reference)?));
        }
    }
    for (name, value) in env.variables.unwrap_or_default() {
        spec.variables.insert(name, scalar(&value)?);
    }
    for name in env.exported_variables.unwrap_or_default() {
        spec.exported.push(scalar(&name)?);
    }
    Ok(())
}

fn read_phase(name: &str, raw: RawPhase) -> Result<Phase, String> {
    let on_failure = match raw.on_failure.as_deref().map(str::trim) {
        None => None,
        Some(v) if v.eq_ignore_ascii_case("ABORT") => Some(OnFailure::Abort),
        Some(v) if v.eq_ignore_ascii_case("CONTINUE") => Some(OnFailure::Continue),
        Some(other) => {
            return Err(format!(
                "phases/{name}/on-failure \"{other}\" is not supported locally; use ABORT or CONTINUE"
            ));
        }
    };
    Ok(Phase {
        commands: scalars(raw.commands.unwrap_or_default())?,
        finally: scalars(raw.finally.unwrap_or_default())?,
        on_failure,
    })
}

fn read_artifacts(raw: RawArtifacts) -> Result<Artifacts, String> {
    let mut secondary = IndexMap::new();
    for (id, sel) in raw.secondary_artifacts.unwrap_or_default() {
        secondary.insert(id, read_selection(sel)?);
    }
    Ok(Artifacts { primary: read_selection(raw.selection)?, secondary })
}

fn read_selection(raw: RawSelection) -> Result<Selection, String> {
    Ok(Selection {
        files: scalars(raw.files.unwrap_or_default())?,
        base_directory: raw.base_directory.as_ref().map(scalar).transpose()?,
        discard_paths: raw.discard_paths.as_ref().map(yes_no).transpose()?.unwrap_or(false),
    })
}

fn scalars(values: Vec<Value>) -> Result<Vec<String>, String> {
    values.iter().map(scalar).collect()
}

/// A YAML scalar as text: commands and values like `- 42` or `X: true` are strings to a shell.
fn scalar(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        other => {
            Err(format!("the buildspec has a list or map where a text value belongs: {other:?}"))
        }
    }
}

/// `yes`/`no` (the documented spelling) or a YAML boolean.
fn yes_no(value: &Value) -> Result<bool, String> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("yes") || s.eq_ignore_ascii_case("true") => {
            Ok(true)
        }
        Value::String(s) if s.eq_ignore_ascii_case("no") || s.eq_ignore_ascii_case("false") => {
            Ok(false)
        }
        other => Err(format!("discard-paths must be yes or no, not {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_buildspec() {
        let spec = parse(
            r#"
version: 0.2
env:
  variables:
    A: "1"
    B: 2
  exported-variables: [A]
phases:
  pre_build:
    commands: [echo hi]
  build:
    on-failure: CONTINUE
    commands:
      - make
    finally:
      - echo done
artifacts:
  files: ['**/*']
  base-directory: out
  discard-paths: yes
  secondary-artifacts:
    Docs:
      files: [docs/*]
"#,
        )
        .unwrap();
        assert_eq!(spec.variables.get("B").map(String::as_str), Some("2"));
        assert_eq!(spec.exported, vec!["A"]);
        assert_eq!(spec.phases[1].commands, vec!["echo hi"]);
        assert_eq!(spec.phases[2].on_failure, Some(OnFailure::Continue));
        assert_eq!(spec.phases[2].finally, vec!["echo done"]);
        let artifacts = spec.artifacts.unwrap();
        assert!(artifacts.primary.discard_paths);
        assert_eq!(artifacts.primary.base_directory.as_deref(), Some("out"));
        assert!(artifacts.secondary.contains_key("Docs"));
    }

    #[test]
    fn keeps_secret_references_for_the_provider() {
        let spec = parse(
            "version: 0.2\nenv:\n  parameter-store:\n    TOKEN: /app/token\n  secrets-manager:\n    X: a:b\nphases: {}\n",
        )
        .unwrap();
        assert_eq!(
            spec.secrets,
            vec![
                ("TOKEN".to_string(), SecretKind::ParameterStore, "/app/token".to_string()),
                ("X".to_string(), SecretKind::SecretsManager, "a:b".to_string())
            ]
        );
        assert!(parse("version: 0.1\nphases: {}\n").is_err());
    }
}
