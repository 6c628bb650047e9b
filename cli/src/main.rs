//! `baton`: validate CodePipeline declarations and run pipelines on one machine.

mod simulate;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "baton", version, about = "A release orchestrator that speaks CodePipeline.")]
struct Cli {
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate { region, files } => validate::run(&files, &region),
        Command::Simulate { region, fail, file } => simulate::run(&file, &region, &fail)
            .unwrap_or_else(|e| {
                eprintln!("baton: {e:#}");
                ExitCode::from(2)
            }),
    }
}
