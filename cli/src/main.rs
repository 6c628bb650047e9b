//! `baton`: validate CodePipeline declarations and run pipelines on one machine.

mod aws_as_user;
mod commands;
mod console;
mod control;
mod hooks;
mod local;
mod names;
mod output;
mod partner;
mod proxy;
mod remote;
mod secrets;
mod serve;
mod simulate;
mod tls;
mod validate;
mod view;
mod webhooks;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// `baton partner ...`.
#[derive(clap::Subcommand, Debug)]
enum PartnerAction {
    /// Register a partner's action type (ThirdParty/CATEGORY/PROVIDER/VERSION) and print the
    /// client id and token its worker proves itself with; registering again replaces the token.
    Register {
        /// CATEGORY/PROVIDER/VERSION, as Test/BlazeMeter/1.
        #[arg(value_name = "CATEGORY/PROVIDER/VERSION")]
        action_type: String,
        /// The input artifacts an action of the type takes, as MIN..MAX (or one number).
        #[arg(long, default_value = "0..5", value_name = "MIN..MAX")]
        inputs: String,
        /// The output artifacts an action of the type makes, as MIN..MAX (or one number).
        #[arg(long, default_value = "0..5", value_name = "MIN..MAX")]
        outputs: String,
        /// A link to the run, with {ExternalExecutionId} and {Config:Name} placeholders.
        #[arg(long)]
        execution_url: Option<String>,
        /// A configuration property the action requires (repeatable).
        #[arg(long = "property", value_name = "NAME")]
        properties: Vec<String>,
    },
    /// Deregister a partner's action type: its jobs can no longer be taken or reported on.
    Deregister {
        #[arg(value_name = "CATEGORY/PROVIDER/VERSION")]
        action_type: String,
    },
}

/// `baton hooks ...`.
#[derive(clap::Subcommand, Debug)]
enum HooksAction {
    /// Write post-commit and post-receive hooks into the repository at PATH.
    Install {
        repo: std::path::PathBuf,
        /// Its FullRepositoryId (`owner/repo`) or CodeCommit name (default: its path under
        /// the home's `git/` folder).
        #[arg(long)]
        repository: Option<String>,
    },
}

#[derive(Subcommand)]
enum SecretsAction {
    /// Store the value read from standard input as NAME (a Parameter Store name, or with
    /// --secrets-manager a Secrets Manager secret id, whose JSON keys `NAME:key` reads).
    Put {
        name: String,
        #[arg(long)]
        secrets_manager: bool,
    },
    /// List the stored names (never the values).
    List,
    /// Remove NAME.
    Delete {
        name: String,
        #[arg(long)]
        secrets_manager: bool,
    },
}

#[derive(Parser)]
#[command(name = "baton", version, about = "A release orchestrator that speaks CodePipeline.")]
struct Cli {
    /// The Baton home: state, artifacts, logs, local repositories and buckets.
    #[arg(long, global = true, env = "BATON_HOME", default_value = ".baton")]
    home: PathBuf,
    /// Drive another Baton through its control API (`baton serve`, http://host:port) instead of
    /// the home: start, status, history, approve, reject, retry, stop and the transitions.
    #[arg(long, global = true, env = "BATON_ENDPOINT", value_name = "URL")]
    endpoint: Option<String>,
    /// How results are printed: text for people, json (one document on standard output, in
    /// CodePipeline's shapes; progress on standard error) or table (lists as columns).
    #[arg(long, global = true, env = "BATON_OUTPUT", value_enum, default_value_t = output::Output::Text)]
    output: output::Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check pipeline declarations (CodePipeline JSON) against every rule CodePipeline enforces.
    Validate {
        /// The pipeline's home region.
        #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
        region: String,
        /// Declaration files: `get-pipeline` output, `create-pipeline` input, or a bare pipeline.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run the engine over a declaration with simulated action results and print the execution.
    Simulate {
        /// The pipeline's home region.
        #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
        region: String,
        /// Make an action fail, as STAGE/ACTION (repeatable).
        #[arg(long, value_name = "STAGE/ACTION")]
        fail: Vec<String>,
        /// The declaration file.
        file: PathBuf,
    },
    /// Create or update the pipeline from FILE, start it, and show it live until it ends.
    Run {
        /// The declaration file.
        file: PathBuf,
        /// The pipeline's home region.
        #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
        region: String,
        /// A pipeline variable for this execution, as NAME=VALUE (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Keep running this home after the execution ends, so pushes start new executions.
        #[arg(long)]
        watch: bool,
    },
    /// Start an execution of a pipeline.
    Start {
        pipeline: String,
        /// A pipeline variable, as NAME=VALUE (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
    },
    /// Carry on and watch an execution (the latest by default) until it ends; resumes work left
    /// by a stopped or killed baton.
    Wait { pipeline: String, execution: Option<String> },
    /// Show an execution (the latest one by default), with waiting approvals.
    Status { pipeline: String, execution: Option<String> },
    /// List a pipeline's executions, newest first.
    History { pipeline: String },
    /// Print the logs of an execution's actions: all, one stage's, or one action's.
    Logs {
        pipeline: String,
        execution: String,
        stage: Option<String>,
        action: Option<String>,
        /// Keep printing what the actions print until the execution (or the one action) ends.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Approve a waiting manual approval.
    Approve {
        pipeline: String,
        stage: String,
        action: String,
        #[arg(long, default_value = "Approved with the baton CLI")]
        summary: String,
    },
    /// Reject a waiting manual approval.
    Reject {
        pipeline: String,
        stage: String,
        action: String,
        #[arg(long, default_value = "Rejected with the baton CLI")]
        summary: String,
    },
    /// Retry the failed actions of a stage (all of them with --all) in its latest execution.
    Retry {
        pipeline: String,
        stage: String,
        #[arg(long)]
        all: bool,
    },
    /// Stop an execution: let running actions finish, or abandon them.
    Stop {
        pipeline: String,
        execution: String,
        #[arg(long)]
        abandon: bool,
        #[arg(long, default_value = "Stopped with the baton CLI")]
        reason: String,
    },
    /// Hold executions before a stage.
    DisableTransition {
        pipeline: String,
        stage: String,
        #[arg(long, default_value = "Disabled with the baton CLI")]
        reason: String,
    },
    /// Let executions into a stage again.
    EnableTransition { pipeline: String, stage: String },
    /// Serve CodePipeline's API (for the AWS CLI, boto3, the SDKs) and run this home's executions.
    Serve {
        /// The port to listen on (0: any free port; the URL is printed).
        #[arg(long, default_value_t = baton::embedded::DEFAULT_SERVE_PORT)]
        port: u16,
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        /// The region the API answers for: callers sign for it, pipelines are created in it.
        #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
        region: String,
    },
    /// With --endpoint naming a deployment's API (its ApiUrl), serve CodePipeline's API on
    /// loopback for the AWS CLI and the SDKs, re-signing each call for the function URL with
    /// your credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, else the AWS tools' chain:
    /// AWS_PROFILE, SSO, web identity, the instance's role).
    Proxy {
        /// The loopback port to listen on (0: any free port; the URL is printed).
        #[arg(long, default_value_t = 8643)]
        port: u16,
        /// The region the deployment runs in, when its URL does not say (a function URL does).
        #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
        region: String,
    },
    /// With --endpoint naming a deployment's API (its ApiUrl), serve the web console for it on
    /// loopback: its pages come from the API, called with your AWS credentials (as `proxy`
    /// takes them), so IAM decides what you see and do. Open the address it prints.
    Console {
        /// The loopback port to listen on (0: any free port; the address is printed).
        #[arg(long, default_value_t = 8644)]
        port: u16,
        /// The region the deployment runs in, when its URL does not say (a function URL does).
        #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
        region: String,
    },
    /// Tell Baton a branch of a local repository changed: starts the pipelines that watch it
    /// (CodeCommit sources by name; connection sources by `owner/repo`, under their triggers).
    Push {
        repository: String,
        #[arg(default_value = "main")]
        branch: String,
        /// For triggers' file paths: the files changed since this revision (default: the
        /// files the branch's last commit changed).
        #[arg(long)]
        since: Option<String>,
    },
    /// Partners' action types (owner ThirdParty), whose workers take jobs with
    /// PollForThirdPartyJobs and the client token registering gives them.
    Partner {
        #[command(subcommand)]
        action: PartnerAction,
    },
    /// Install git hooks in a local repository so each commit and push starts its pipelines.
    Hooks {
        #[command(subcommand)]
        action: HooksAction,
    },
    /// The home's encrypted secrets, which PARAMETER_STORE and SECRETS_MANAGER environment
    /// variables (and a buildspec's env/parameter-store and env/secrets-manager) resolve from.
    Secrets {
        #[command(subcommand)]
        action: SecretsAction,
    },
    /// Print a completion script for a shell: `baton completions bash > /etc/bash_completion.d/baton`,
    /// `baton completions zsh > "${fpath[1]}/_baton"`, `baton completions fish > ~/.config/fish/completions/baton.fish`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// mimalloc: with glibc's, `malloc` and `free` were a fifth of a busy runtime's samples.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `baton history app | head` ends as other commands do when their reader goes away: quietly,
/// with the status a shell gives a process SIGPIPE ends (141). Rust ignores SIGPIPE, so a
/// print to a closed pipe panics instead, with a message about the panic.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        // println!'s own words, or an `expect` on a write's error (shell completions).
        if message.contains("Broken pipe") || message.contains("BrokenPipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let cli = Cli::parse();
    output::choose(cli.output);
    let filter = std::env::var("BATON_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal who has not asked for none (no-color.org).
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        )
        .init();
    let result = match (cli.endpoint, cli.command) {
        (_, Command::Completions { shell }) => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "baton", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        (Some(endpoint), command) => remote_command(&cli.home, &endpoint, command),
        (None, Command::Validate { region, files }) => return validate::run(&files, &region),
        (None, Command::Simulate { region, fail, file }) => simulate::run(&file, &region, &fail),
        (None, other) => runtime().and_then(|rt| rt.block_on(local_command(&cli.home, other))),
    };
    result.unwrap_or_else(|e| {
        eprintln!("baton: {e:#}");
        ExitCode::from(2)
    })
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// A command against another Baton's control API; the commands that need a local home refuse.
fn remote_command(home: &std::path::Path, endpoint: &str, command: Command) -> Result<ExitCode> {
    use Command::*;
    let local_only = match &command {
        Run { .. } => "run",
        Wait { .. } => "wait",
        Logs { .. } => "logs",
        Push { .. } => "push",
        Hooks { .. } => "hooks",
        Secrets { .. } => "secrets",
        Serve { .. } => "serve",
        Validate { .. } => "validate",
        Simulate { .. } => "simulate",
        _ => "",
    };
    if !local_only.is_empty() {
        anyhow::bail!(
            "`baton {local_only}` works on a local Baton home only: drop --endpoint (or unset BATON_ENDPOINT)"
        );
    }
    let client = remote::Client::new(endpoint)?;
    runtime()?.block_on(async {
        match command {
            Proxy { port, region } => {
                let region = deployment_region(endpoint, &region);
                proxy::run(client.for_function_url(&region), port, &region).await
            }
            Console { port, region } => {
                let region = deployment_region(endpoint, &region);
                console::serve_deployment(client.for_function_url(&region), &region, port, home)
                    .await
            }
            other => drive(&client, other).await,
        }
    })
}

/// A deployment's region: its function URL's, else the one given.
fn deployment_region(endpoint: &str, given: &str) -> String {
    let host = endpoint.split("//").nth(1).unwrap_or_default();
    remote::function_url_region(host.trim_end_matches('/')).unwrap_or(given).to_owned()
}

/// A command that drives pipelines, over whichever control API `c` is.
async fn drive(c: &impl control::Control, command: Command) -> Result<ExitCode> {
    use Command::*;
    match command {
        Start { pipeline, vars } => commands::start(c, &pipeline, &vars).await,
        Status { pipeline, execution } => {
            commands::status(c, &pipeline, execution.as_deref()).await
        }
        History { pipeline } => commands::history(c, &pipeline).await,
        Approve { pipeline, stage, action, summary } => {
            commands::decide(c, &pipeline, &stage, &action, true, &summary).await
        }
        Reject { pipeline, stage, action, summary } => {
            commands::decide(c, &pipeline, &stage, &action, false, &summary).await
        }
        Retry { pipeline, stage, all } => commands::retry(c, &pipeline, &stage, all).await,
        Stop { pipeline, execution, abandon, reason } => {
            commands::stop(c, &pipeline, &execution, abandon, &reason).await
        }
        DisableTransition { pipeline, stage, reason } => {
            commands::transition(c, &pipeline, &stage, false, &reason).await
        }
        EnableTransition { pipeline, stage } => {
            commands::transition(c, &pipeline, &stage, true, "").await
        }
        Partner { action } => partner::run(c, action).await,
        // Each caller handles the others before.
        _ => Ok(ExitCode::from(2)),
    }
}

async fn local_command(home: &std::path::Path, command: Command) -> Result<ExitCode> {
    use Command::*;
    match command {
        Run { file, region, vars, watch } => local::run(home, &file, &region, &vars, watch).await,
        Wait { pipeline, execution } => local::wait(home, &pipeline, execution.as_deref()).await,
        Logs { pipeline, execution, stage, action, follow } => {
            let which = local::LogScope { stage: stage.as_deref(), action: action.as_deref() };
            if follow {
                local::follow_logs(home, &pipeline, &execution, which).await
            } else {
                local::logs(home, &pipeline, &execution, which).await
            }
        }
        // Reading needs no notices on the terminal.
        reading @ (Status { .. } | History { .. }) => {
            drive(&local::Home::open(home, true).await?, reading).await
        }
        driving @ (Start { .. }
        | Approve { .. }
        | Reject { .. }
        | Retry { .. }
        | Stop { .. }
        | DisableTransition { .. }
        | EnableTransition { .. }
        | Partner { .. }) => drive(&local::Home::open(home, false).await?, driving).await,
        Push { repository, branch, since } => {
            local::push(home, &repository, &branch, since.as_deref()).await
        }
        Hooks { action: HooksAction::Install { repo, repository } } => {
            hooks::install(home, &repo, repository.as_deref())
        }
        Secrets { action: SecretsAction::Put { name, secrets_manager } } => {
            secrets::put(home, &name, secrets_manager)
        }
        Secrets { action: SecretsAction::List } => secrets::list(home),
        Secrets { action: SecretsAction::Delete { name, secrets_manager } } => {
            secrets::delete(home, &name, secrets_manager)
        }
        Serve { port, bind, region } => serve::serve(home, &bind, port, &region).await,
        Proxy { .. } => anyhow::bail!(
            "`baton proxy` forwards to a deployment's API: give its URL with --endpoint (the stack's ApiUrl output)"
        ),
        Console { .. } => anyhow::bail!(
            "`baton console` shows a deployment on AWS: give its API's URL with --endpoint (the stack's ApiUrl output); on this machine `baton serve` serves the console"
        ),
        Validate { .. } | Simulate { .. } | Completions { .. } => Ok(ExitCode::SUCCESS),
    }
}
