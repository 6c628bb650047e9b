//! Runs build commands the way CodeBuild's buildspec version 0.2 does: one after another, as
//! if in one shell, so a variable set or a `cd` done by one command is seen by the next, across
//! phases too. Used by the CodeBuild and `Commands` providers.
//!
//! Each block of commands (a phase's `commands` or its `finally`) runs as one bash script that
//! first sources the state the previous block saved (variables, functions, working directory)
//! and saves its own on exit. Separate scripts let `finally` run even after a command calls
//! `exit`. Shell options (`set -e` and the like) do not carry over between blocks.
//!
//! Every process of a build lives in one process group, led by its first script (see
//! `process_group`). A passed deadline stops the group with TERM, then KILL; when the build
//! ends, whatever it left running in the background is killed, as CodeBuild's container
//! teardown would. Output goes straight to the log file, never through memory.
//!
//! The last block saves only the exported variables: no block reads its shell state, and
//! saving it (every variable and function) was most of a short action's cost.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::process::Signal;
use tokio::net::unix::pipe;
use tokio::time::Instant;

use super::buildspec::{OnFailure, Phase, Shell};
use super::log_timestamp;
use super::process_group::{Process, ProcessGroup};

/// Host variables a build still sees: enough to find tools, nothing that leaks the worker's
/// own settings or credentials (CodeBuild's container does not see its host either).
const PASSED_THROUGH: [&str; 8] =
    ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR"];

/// Used when the host has no `PATH` at all.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How long a timed-out build may take to stop after TERM before it gets KILL.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// Where and how a build's commands run.
pub(crate) struct RunnerConfig {
    pub(crate) shell: Shell,
    /// Where the first command starts (the primary source).
    pub(crate) dir: PathBuf,
    /// Variables on top of the host's basics, later entries winning.
    pub(crate) env: Vec<(String, String)>,
    /// A private folder for scripts and saved state.
    pub(crate) scratch: PathBuf,
    /// Variables whose final values the build exports.
    pub(crate) exported: Vec<String>,
    pub(crate) log: PathBuf,
    /// Epoch milliseconds.
    pub(crate) deadline: i64,
    /// Secret values: replaced by `***` in everything the commands print. With none, output
    /// goes straight to the log; with some, through a filter.
    pub(crate) masked: Vec<String>,
}

/// Runs blocks of commands in one shared shell state.
pub(crate) struct Runner {
    config: RunnerConfig,
    log: File,
    deadline: Instant,
    group: ProcessGroup,
    blocks: usize,
    /// How many blocks the phases run at most: the last one saves no shell state.
    last_block: usize,
}

/// How one block ended.
enum BlockEnd {
    Succeeded,
    Failed(CommandFailure),
    TimedOut,
}

/// The command that failed and why.
struct CommandFailure {
    command: String,
    reason: String,
}

impl CommandFailure {
    /// CodeBuild's wording for a failed command.
    fn message(&self) -> String {
        format!("Error while executing command: {}. Reason: {}", self.command, self.reason)
    }
}

/// How a whole build ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BuildEnd {
    Succeeded,
    /// The first failure, in CodeBuild's words.
    Failed(String),
    TimedOut,
}

impl Runner {
    /// Opens the log; the process group starts with the first block.
    pub(crate) fn start(config: RunnerConfig) -> io::Result<Self> {
        let log = OpenOptions::new().create(true).append(true).open(&config.log)?;
        let deadline = instant_of(config.deadline);
        let group = ProcessGroup::default();
        Ok(Self { config, log, deadline, group, blocks: 0, last_block: usize::MAX })
    }

    /// Appends one CodeBuild-style line (`[Container] <time> <text>`) to the log.
    pub(crate) fn log(&mut self, text: &str) -> io::Result<()> {
        // One write per line: `writeln!` on a file writes each piece with its own call, which
        // the command's output, appended to the same log meanwhile, could land between.
        let line = format!("[Container] {} {text}\n", log_timestamp());
        self.log.write_all(line.as_bytes())
    }

    /// Runs the phases in order with CodeBuild's transitions: after a failure, `on-failure:
    /// CONTINUE` goes on, `ABORT` stops, and by default only a failed `BUILD` goes on (to
    /// `POST_BUILD`, with `CODEBUILD_BUILD_SUCCEEDING=0`).
    pub(crate) async fn run_phases(&mut self, phases: &[(&str, &Phase)]) -> io::Result<BuildEnd> {
        let mut first_failure: Option<String> = None;
        self.last_block = phases
            .iter()
            .map(|(_, p)| usize::from(!p.commands.is_empty()) + usize::from(!p.finally.is_empty()))
            .sum::<usize>()
            + self.blocks;
        for &(name, phase) in phases {
            self.log(&format!("Entering phase {name}"))?;
            let failure = match self.run_phase(phase, first_failure.is_none()).await? {
                Ok(()) => None,
                Err(None) => {
                    self.log(&format!("Phase complete: {name} State: TIMED_OUT"))?;
                    return Ok(BuildEnd::TimedOut);
                }
                Err(Some(f)) => Some(f),
            };
            let Some(failure) = failure else {
                self.log(&format!("Phase complete: {name} State: SUCCEEDED"))?;
                self.log("Phase context status code:  Message: ")?;
                continue;
            };
            let message = failure.message();
            self.log(&format!("Phase complete: {name} State: FAILED"))?;
            self.log(&format!(
                "Phase context status code: COMMAND_EXECUTION_ERROR Message: {message}"
            ))?;
            first_failure.get_or_insert(message);
            if !goes_on_after_failure(name, phase.on_failure) {
                break;
            }
        }
        Ok(first_failure.map_or(BuildEnd::Succeeded, BuildEnd::Failed))
    }

    /// The final values of the exported variables that are set.
    pub(crate) fn exported_values(&self) -> io::Result<BTreeMap<String, String>> {
        let bytes = match fs::read(self.config.scratch.join("exports")) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(e),
        };
        Ok(bytes
            .split(|&b| b == 0)
            .filter_map(|pair| {
                let text = String::from_utf8_lossy(pair);
                let (name, value) = text.split_once('=')?;
                Some((name.to_string(), value.to_string()))
            })
            .collect())
    }

    /// A phase's commands, then its `finally` even if a command failed. `Err(None)`: timed out.
    async fn run_phase(
        &mut self,
        phase: &Phase,
        succeeding: bool,
    ) -> io::Result<Result<(), Option<CommandFailure>>> {
        let mut failure = match self.run_block(&phase.commands, succeeding).await? {
            BlockEnd::TimedOut => return Ok(Err(None)),
            BlockEnd::Failed(f) => Some(f),
            BlockEnd::Succeeded => None,
        };
        match self.run_block(&phase.finally, succeeding && failure.is_none()).await? {
            BlockEnd::TimedOut => return Ok(Err(None)),
            BlockEnd::Failed(f) => {
                failure.get_or_insert(f);
            }
            BlockEnd::Succeeded => {}
        }
        Ok(failure.map_or(Ok(()), |f| Err(Some(f))))
    }

    /// Runs one block of commands as one script in the build's process group.
    async fn run_block(&mut self, commands: &[String], succeeding: bool) -> io::Result<BlockEnd> {
        if commands.is_empty() {
            return Ok(BlockEnd::Succeeded);
        }
        if Instant::now() >= self.deadline {
            return Ok(BlockEnd::TimedOut);
        }
        if let Some(bad) = commands.iter().find(|c| c.contains('\0')) {
            let reason = "the command holds a NUL byte".to_string();
            return Ok(BlockEnd::Failed(CommandFailure { command: bad.clone(), reason }));
        }
        if let Some(program) = self.direct_program(commands) {
            return self.run_direct(&commands[0], &program, succeeding).await;
        }
        self.blocks += 1;
        // Made with the first script: a build of one plain command needs none, and a folder
        // made and removed per action was a measurable share of a no-op action's cost.
        fs::create_dir_all(&self.config.scratch)?;
        let script = self.config.scratch.join(format!("block-{}.sh", self.blocks));
        let current = self.config.scratch.join("current");
        let _ = fs::remove_file(&current);
        fs::write(&script, self.script(commands, self.blocks < self.last_block))?;
        let Some(status) = self.run_process(&mut self.command(&script, succeeding)?).await? else {
            return Ok(BlockEnd::TimedOut);
        };
        if status.success() {
            return Ok(BlockEnd::Succeeded);
        }
        let index = fs::read_to_string(&current).ok().and_then(|s| s.trim().parse::<usize>().ok());
        let command = index.and_then(|i| commands.get(i)).cloned().unwrap_or_default();
        Ok(BlockEnd::Failed(CommandFailure { command, reason: reason(status) }))
    }

    /// Runs `cmd` in the build's process group until it exits (`None`: the deadline passed
    /// first, and the group was stopped).
    async fn run_process(&mut self, cmd: &mut Command) -> io::Result<Option<ExitStatus>> {
        let mut process = self.group.spawn(cmd)?;
        let filters = self.filter_output(&mut process)?;
        let status = match tokio::time::timeout_at(self.deadline, self.group.wait(&process)).await {
            Ok(status) => status?,
            Err(_) => {
                self.stop_group(&process).await;
                return Ok(None);
            }
        };
        // The filters end when every writer of the pipes has; a process the block left in the
        // background keeps its copy, and its filter keeps writing to the log meanwhile.
        for filter in filters {
            let _ = tokio::time::timeout(Duration::from_millis(200), filter).await;
        }
        Ok(Some(status))
    }

    /// The program a build of one simple command can run without a shell, as GNU make runs a
    /// recipe line without one: the build's only block (no state comes before it or is saved
    /// after it), no variable exported, and a command of plain words (no quoting, expansion,
    /// redirection, globbing or assignment) whose first word is a program on the build's
    /// `PATH`, not a shell builtin. Otherwise `None`, and bash runs it.
    fn direct_program(&self, commands: &[String]) -> Option<PathBuf> {
        let [command] = commands else { return None };
        let only_block = self.blocks == 0 && self.last_block == 1;
        if !only_block || !self.config.exported.is_empty() {
            return None;
        }
        let plain = |c: char| c.is_ascii_alphanumeric() || " -_./,:@%+".contains(c);
        if command.trim().is_empty() || !command.chars().all(plain) {
            return None;
        }
        let program = command.split_ascii_whitespace().next()?;
        // Builtins whose program would do otherwise (`cd`, `echo --help`...) stay with bash;
        // `true`, `false` and `test` do the same either way.
        if SHELL_WORDS.contains(&program) {
            return None;
        }
        if program.contains('/') {
            let path = self.config.dir.join(program);
            return is_executable(&path).then_some(path);
        }
        std::env::split_paths(&self.build_path())
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_absolute() && is_executable(candidate))
    }

    /// Runs one simple command as its own process, logged as the script logs it.
    async fn run_direct(
        &mut self,
        command: &str,
        program: &std::path::Path,
        succeeding: bool,
    ) -> io::Result<BlockEnd> {
        self.blocks += 1;
        self.log(&format!("Running command {command}"))?;
        let mut cmd = self.command_of(program, succeeding)?;
        cmd.args(command.split_ascii_whitespace().skip(1))
            // What bash would have set for the command it runs.
            .env("PWD", &self.config.dir)
            .env("SHLVL", "1")
            .env("_", program);
        let Some(status) = self.run_process(&mut cmd).await? else {
            return Ok(BlockEnd::TimedOut);
        };
        if status.success() {
            return Ok(BlockEnd::Succeeded);
        }
        // As bash reports it: a signal as 128 plus its number.
        let code = status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1);
        self.log(&format!("Command did not exit successfully {command} exit status {code}"))?;
        Ok(BlockEnd::Failed(CommandFailure { command: command.to_owned(), reason: reason(status) }))
    }

    /// The process for one script: bash, in the build's environment.
    fn command(&self, script: &std::path::Path, succeeding: bool) -> io::Result<Command> {
        let mut cmd = self.command_of(&self.bash(), succeeding)?;
        if self.config.shell == Shell::Posix {
            cmd.arg("--posix");
        }
        cmd.arg(script);
        Ok(cmd)
    }

    /// A process of the build: a clean environment, output to the log, in the build's folder.
    fn command_of(&self, program: &std::path::Path, succeeding: bool) -> io::Result<Command> {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.config.dir).env_clear();
        for name in PASSED_THROUGH {
            if let Some(value) = std::env::var_os(name) {
                cmd.env(name, value);
            }
        }
        if std::env::var_os("PATH").is_none() {
            cmd.env("PATH", DEFAULT_PATH);
        }
        for (name, value) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("LC_") {
                cmd.env(name, value);
            }
        }
        cmd.envs(self.config.env.iter().map(|(k, v)| (k, v)))
            .env("CODEBUILD_BUILD_SUCCEEDING", if succeeding { "1" } else { "0" })
            .stdin(Stdio::null());
        if self.config.masked.is_empty() {
            cmd.stdout(Stdio::from(self.log.try_clone()?))
                .stderr(Stdio::from(self.log.try_clone()?));
        } else {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        Ok(cmd)
    }

    /// Where `bash` is on the build's own `PATH`. Named by its path, the script is spawned
    /// without copying this process's memory: given a bare name and a changed `PATH`, the
    /// standard library forks to search that `PATH` in the child (measured on 40 one-command
    /// actions: a third of the run's system time).
    fn bash(&self) -> PathBuf {
        std::env::split_paths(&self.build_path())
            .map(|dir| dir.join("bash"))
            .find(|candidate| is_executable(candidate))
            .unwrap_or_else(|| PathBuf::from("bash"))
    }

    /// The `PATH` the build's commands see.
    fn build_path(&self) -> std::ffi::OsString {
        let host = std::env::var_os("PATH");
        self.config
            .env
            .iter()
            .rev()
            .find(|(name, _)| name == "PATH")
            .map(|(_, value)| std::ffi::OsString::from(value))
            .or(host)
            .unwrap_or_else(|| DEFAULT_PATH.into())
    }

    /// With secrets to mask, copies the child's output to the log line by line, each secret
    /// value replaced by `***`.
    fn filter_output(&self, process: &mut Process) -> io::Result<Vec<tokio::task::JoinHandle<()>>> {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let mut filters = Vec::new();
        let pipes = [
            process.stdout.take().map(std::os::fd::OwnedFd::from),
            process.stderr.take().map(std::os::fd::OwnedFd::from),
        ];
        for pipe in pipes.into_iter().flatten() {
            let pipe = pipe::Receiver::from_owned_fd(pipe)?;
            let mut log = self.log.try_clone()?;
            let masked = self.config.masked.clone();
            filters.push(tokio::spawn(async move {
                let mut lines = BufReader::new(pipe).split(b'\n');
                while let Ok(Some(line)) = lines.next_segment().await {
                    let text = super::workspace::mask(&String::from_utf8_lossy(&line), &masked);
                    if writeln!(log, "{text}").is_err() {
                        return;
                    }
                }
            }));
        }
        Ok(filters)
    }

    /// The script for one block: restore state, run each command, save state on exit (only
    /// the exported variables when `keep_state` is false).
    fn script(&self, commands: &[String], keep_state: bool) -> String {
        let scratch = &self.config.scratch;
        let path = |name: &str| quote(&scratch.join(name).to_string_lossy());
        let exported: Vec<String> = self.config.exported.iter().map(|n| quote(n)).collect();
        let mut s = String::new();
        let _ = writeln!(s, "__baton_state={}", path("state.sh"));
        let _ = writeln!(s, "__baton_current={}", path("current"));
        let _ = writeln!(s, "__baton_exports={}", path("exports"));
        let _ = writeln!(s, "__baton_exported=({})", exported.join(" "));
        let _ = writeln!(s, "__baton_keep={}", u8::from(keep_state));
        s.push_str(PRELUDE);
        for (i, command) in commands.iter().enumerate() {
            let _ = writeln!(s, "printf '%s' {i} > \"$__baton_current\"");
            let _ = writeln!(s, "__baton_log {}", quote(&format!("Running command {command}")));
            let _ = writeln!(s, "eval {}", quote(command));
            let failed =
                quote(&format!("Command did not exit successfully {command} exit status "));
            let _ = writeln!(
                s,
                "__baton_rc=$?; if [ \"$__baton_rc\" -ne 0 ]; then \
                 __baton_log {failed}\"$__baton_rc\"; exit \"$__baton_rc\"; fi"
            );
        }
        s.push_str("exit 0\n");
        s
    }

    /// Stops a timed-out build: TERM to the whole group, then KILL to what is left.
    async fn stop_group(&mut self, process: &Process) {
        self.group.signal(Signal::TERM);
        if tokio::time::timeout(TERM_GRACE, self.group.wait(process)).await.is_err() {
            self.group.signal(Signal::KILL);
        }
        let _ = self.group.wait(process).await;
        // Background processes may linger after the script itself exits; the build is over.
        self.group.signal(Signal::KILL);
    }
}

/// Whether `path` is a file someone may execute.
fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether the build goes on to the next phase after `phase` failed.
fn goes_on_after_failure(phase: &str, on_failure: Option<OnFailure>) -> bool {
    match on_failure {
        Some(OnFailure::Continue) => true,
        Some(OnFailure::Abort) => false,
        // CodeBuild's transitions: a failed INSTALL or PRE_BUILD ends the build; a failed
        // BUILD still runs POST_BUILD.
        None => phase == "BUILD",
    }
}

/// Why a script stopped, in the words of CodeBuild's (Go) agent.
fn reason(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(9)) => "signal: killed".to_string(),
        (None, Some(15)) => "signal: terminated".to_string(),
        (None, Some(sig)) => format!("signal: {sig}"),
        (None, None) => "unknown exit status".to_string(),
    }
}

/// The deadline (epoch milliseconds) as a monotonic instant.
fn instant_of(deadline_ms: i64) -> Instant {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let left = u64::try_from(deadline_ms.saturating_sub(now_ms)).unwrap_or(0);
    Instant::now() + Duration::from_millis(left)
}

/// `text` as one single-quoted shell word.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Restores the previous block's state and defines the helpers; saving runs on exit.
///
/// The save skips bash's own and read-only variables (they cannot be re-declared) and the
/// `CODEBUILD_*` ones, which the runner sets afresh for each block (`CODEBUILD_BUILD_SUCCEEDING`
/// changes between phases). It forks nothing: the names are listed through a file, not a
/// command substitution, and the helpers saved with the functions are defined again after the
/// state is sourced.
/// Bash's builtins and keywords, less `true`, `false` and `test`, whose programs do the same.
const SHELL_WORDS: &[&str] = &[
    ".",
    ":",
    "[[",
    "]]",
    "alias",
    "bg",
    "bind",
    "break",
    "builtin",
    "caller",
    "case",
    "cd",
    "command",
    "compgen",
    "complete",
    "compopt",
    "continue",
    "declare",
    "dirs",
    "disown",
    "do",
    "done",
    "echo",
    "elif",
    "else",
    "enable",
    "esac",
    "eval",
    "exec",
    "exit",
    "export",
    "fc",
    "fg",
    "fi",
    "for",
    "function",
    "getopts",
    "hash",
    "help",
    "history",
    "if",
    "jobs",
    "kill",
    "let",
    "local",
    "logout",
    "mapfile",
    "popd",
    "printf",
    "pushd",
    "pwd",
    "read",
    "readarray",
    "readonly",
    "return",
    "select",
    "set",
    "shift",
    "shopt",
    "source",
    "suspend",
    "then",
    "time",
    "times",
    "trap",
    "type",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
    "until",
    "wait",
    "while",
    "coproc",
];

const PRELUDE: &str = r#"if [ -f "$__baton_state" ]; then . "$__baton_state"; fi
__baton_log() { local TZ=UTC; printf '[Container] %(%Y/%m/%d %H:%M:%S)T.%s %s\n' -1 "${EPOCHREALTIME#*[.,]}" "$1"; }
__baton_save() {
  set +eu
  local __baton_n __baton_names IFS=$' \t\n'
  if [ "$__baton_keep" = 1 ]; then
    compgen -v > "$__baton_state"
    mapfile -t __baton_names < "$__baton_state"
    {
      for __baton_n in "${__baton_names[@]}"; do
        case "$__baton_n" in
          __baton_*|BASH|BASH_*|BASHOPTS|BASHPID|COLUMNS|COMP_*|DIRSTACK|EPOCHREALTIME|EPOCHSECONDS|EUID|FUNCNAME|GROUPS|HISTCMD|IFS|LINENO|LINES|OLDPWD|OPTARG|OPTERR|OPTIND|PIPESTATUS|PPID|PS4|PWD|RANDOM|SECONDS|SHELLOPTS|SHLVL|SRANDOM|UID|_|CODEBUILD_*) continue ;;
        esac
        case "${!__baton_n@a}" in *r*) continue ;; esac
        declare -p "$__baton_n"
      done
      declare -f
      printf 'cd -- %q\n' "$PWD"
    } > "$__baton_state" 2>/dev/null
  fi
  for __baton_n in "${__baton_exported[@]}"; do
    if [ -n "${!__baton_n+x}" ]; then printf '%s=%s\0' "$__baton_n" "${!__baton_n}"; fi
  done > "$__baton_exports"
}
trap __baton_save EXIT
"#;
