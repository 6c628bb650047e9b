//! Providers that run on one machine: CodePipeline's everyday actions (CodeCommit and S3
//! sources, CodeBuild builds and tests, the V2 `Commands` action, S3 deploys) done with local
//! files, the `git` binary and `bash`, so a pipeline runs without an AWS account.
//!
//! - [`codecommit`]: `AWS/Source/CodeCommit` from local git repositories.
//! - [`connection`]: `AWS/Source/CodeStarSourceConnection` from git remotes.
//! - [`s3`]: `AWS/Source/S3` and `AWS/Deploy/S3` on a folder standing in for S3.
//! - [`codebuild`]: `AWS/Build/CodeBuild` and `AWS/Test/CodeBuild` running a buildspec.
//! - [`commands`]: `AWS/Compute/Commands` running the action's commands.
//!
//! [`registry`] puts them all in one [`ProviderRegistry`].

mod buildspec;
pub mod codebuild;
pub mod codecommit;
pub mod commands;
pub mod connection;
mod git;
mod glob;
mod process_group;
pub mod s3;
mod shell;
mod workspace;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use indexmap::IndexMap;

use baton_app::ports::provider::ProviderRegistry;

/// Where the local providers find their repositories, buckets and build projects.
#[derive(Debug, Clone, Default)]
pub struct LocalProviderConfig {
    /// Folder holding one git repository per CodeCommit repository name.
    pub git_root: PathBuf,
    /// Folder standing in for S3: one subfolder per bucket, object keys as paths below it.
    pub s3_root: PathBuf,
    /// CodeCommit repository names mapped to repositories outside `git_root`.
    pub repositories: HashMap<String, PathBuf>,
    /// CodeBuild project names mapped to the buildspec file each one uses.
    pub projects: HashMap<String, PathBuf>,
    /// Connection repositories (`FullRepositoryId`) mapped to a folder or a git URL.
    pub connections: HashMap<String, String>,
    /// Where mirrors of remote repositories are kept.
    pub cache_root: PathBuf,
    /// Where CodeBuild projects' builds are counted (`CODEBUILD_BUILD_NUMBER`).
    pub build_numbers: PathBuf,
    /// What `PARAMETER_STORE` and `SECRETS_MANAGER` variables resolve from.
    pub secrets: Option<Arc<dyn baton_app::ports::secrets::Secrets>>,
}

impl LocalProviderConfig {
    /// The connection (GitHub, GitLab, Bitbucket) source over this home's repositories.
    pub fn connection_source(&self) -> connection::ConnectionSourceProvider {
        connection::ConnectionSourceProvider::new(
            self.git_root.clone(),
            self.connections.clone(),
            self.cache_root.clone(),
        )
    }
}

/// Every local provider, registered under CodePipeline's category, owner and provider names.
pub fn registry(home: &LocalProviderConfig) -> ProviderRegistry {
    let codecommit =
        codecommit::CodeCommitProvider::new(home.git_root.clone(), home.repositories.clone());
    let s3_source = s3::S3SourceProvider::new(home.s3_root.clone());
    let s3_deploy = s3::S3DeployProvider::new(home.s3_root.clone());
    let codebuild = Arc::new(
        codebuild::CodeBuildProvider::new(home.projects.clone())
            .with_secrets(home.secrets.clone())
            .with_build_numbers(home.build_numbers.clone()),
    );
    let mut registry = ProviderRegistry::default();
    registry.register("Source", "AWS", "CodeCommit", Arc::new(codecommit));
    registry.register("Source", "AWS", "S3", Arc::new(s3_source));
    let connection = home.connection_source();
    let github = connection::GitHubV1Provider(connection.clone());
    registry.register("Source", "AWS", "CodeStarSourceConnection", Arc::new(connection));
    registry.register("Source", "ThirdParty", "GitHub", Arc::new(github));
    registry.register("Deploy", "AWS", "S3", Arc::new(s3_deploy));
    registry.register("Build", "AWS", "CodeBuild", codebuild.clone());
    registry.register("Test", "AWS", "CodeBuild", codebuild);
    let commands = Arc::new(commands::CommandsProvider::with_secrets(home.secrets.clone()));
    registry.register("Compute", "AWS", "Commands", commands.clone());
    registry.register_rule(
        "Commands",
        Arc::new(baton_app::providers::action_rule::ActionRule::commands(commands)),
    );
    registry
}

pub(crate) use baton_app::providers::Failure;

/// The value of a required configuration key, or a failure naming it.
fn required<'a>(config: &'a IndexMap<String, String>, key: &str) -> Result<&'a str, Failure> {
    match config.get(key).map(|v| v.trim()) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(Failure::configuration(format!("The action configuration needs {key}."))),
    }
}

pub(crate) use baton_app::providers::{archive, blocking, has_reference};

/// The current UTC time as CodeBuild prints it in logs: `2024/05/02 10:00:00.123456`.
fn log_timestamp() -> String {
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = baton_core::events::civil_from_days(days as i64);
    format!(
        "{y:04}/{m:02}/{d:02} {:02}:{:02}:{:02}.{:06}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        now.subsec_micros()
    )
}
