//! `AWS/Source/CodeStarSourceConnection` on AWS (GitHub, GitHub Enterprise Server, GitLab,
//! GitLab self-managed, Bitbucket): the commit is fetched by a build of the deployment's build
//! project, which clones the repository with the connection's own credentials.
//!
//! # Why a build
//!
//! A connection's token never leaves AWS: only CodeBuild (and CodePipeline itself) may use it
//! (`codeconnections:UseConnection` is not granted to anything else). The other way, the host's
//! archive API, needs a long-lived token of the user's in Secrets Manager, which is the secret
//! connections exist to avoid. So the worker asks CodeConnections what the connection is
//! (`GetConnection`, and `GetHost` for a self-managed host), then starts a build of the project
//! with the repository as its source (`CODECONNECTIONS` auth), the pinned commit or the branch
//! as its version, and the output artifact in place in the artifact store. The build's
//! buildspec ([`buildspec`]) exports the commit's id, message and author date. Following,
//! time-outs and stopping are the CodeBuild action's.
//!
//! `CODE_ZIP` is the commit's files without `.git`, cloned one commit deep when no commit is
//! pinned; `CODEBUILD_CLONE_REF` is the whole clone, history included, checked out on the
//! branch, which is what a later build that runs git commands needs.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_codebuild::types::{Build, SourceType};
use aws_sdk_codeconnections::Client;
use aws_sdk_codeconnections::operation::get_connection::GetConnectionError;
use baton_core::engine::ActionRequest;
use baton_core::plan::ActionPlan;
use serde_json::json;

use super::codebuild::{CodeBuildProvider, RemoteSource, Start};
use super::commands::timeout_minutes;
use super::credentials::RoleCredentials;
use super::{Failure, Stop, finish, has_reference, optional, required, sdk_stop};
use baton_app::ports::provider::{ActionProvider, Job, JobResult, ProviderError};

/// What CodeConnections says of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `GitHub`, `GitHubEnterpriseServer`, `GitLab`, `GitLabSelfManaged`, `Bitbucket`...
    pub provider: String,
    /// `AVAILABLE`, `PENDING` or `ERROR`.
    pub status: String,
    /// A self-managed host's URL (`GetHost`'s `ProviderEndpoint`).
    pub endpoint: Option<String>,
}

/// Reads connections (CodeConnections on AWS; a fake in tests).
#[async_trait]
pub trait Connections: Send + Sync {
    /// The connection `arn`, read in its region.
    async fn connection(&self, request: &ActionRequest, arn: &str) -> Result<Connection, Stop>;
}

/// [`Connections`] through the CodeConnections API.
pub struct CodeConnections {
    roles: Arc<dyn RoleCredentials>,
}

impl CodeConnections {
    #[allow(missing_docs)]
    pub fn new(roles: Arc<dyn RoleCredentials>) -> Self {
        Self { roles }
    }
}

#[async_trait]
impl Connections for CodeConnections {
    async fn connection(&self, request: &ActionRequest, arn: &str) -> Result<Connection, Stop> {
        // The deployment's own role reads connections: a pipeline's role seldom may, and
        // knowing the host grants nothing (only CodeBuild ever uses the connection).
        let region = arn.split(':').nth(3).filter(|r| !r.is_empty()).unwrap_or(&request.region);
        let config = self.roles.config(None, region, &request.execution_id).await?;
        let client = Client::new(&config);
        let got = client.get_connection().connection_arn(arn).send().await.map_err(|e| match e
            .as_service_error()
        {
            Some(GetConnectionError::ResourceNotFoundException(_)) => Stop::Failed(
                Failure::configuration(format!("The connection {arn} does not exist.")),
            ),
            _ => sdk_stop("GetConnection")(e),
        })?;
        let c = got.connection().ok_or_else(|| {
            Failure::job(format!("GetConnection answered without the connection {arn}."))
        })?;
        let endpoint = match c.host_arn() {
            Some(host) => {
                let host = client.get_host().host_arn(host).send().await;
                host.map_err(sdk_stop("GetHost"))?.provider_endpoint().map(str::to_owned)
            }
            None => None,
        };
        Ok(Connection {
            provider: c.provider_type().map(|p| p.as_str().to_owned()).unwrap_or_default(),
            status: c.connection_status().map(|s| s.as_str().to_owned()).unwrap_or_default(),
            endpoint,
        })
    }
}

/// How CodeBuild clones `repository` (`owner/name`) through `connection`: its source type and
/// clone URL.
///
/// # Errors
/// A sentence for a connection that is not ready or whose host CodeBuild cannot clone from.
pub fn clone_source(
    connection: &Connection,
    arn: &str,
    repository: &str,
) -> Result<(SourceType, String), String> {
    if connection.status != "AVAILABLE" {
        return Err(format!(
            "The connection {arn} is {}: finish setting it up (Developer Tools, Settings, Connections, in the AWS console), then start again.",
            connection.status
        ));
    }
    let hosted = |kind, host: &str| Ok((kind, format!("https://{host}/{repository}.git")));
    let own = |kind| match connection.endpoint.as_deref() {
        Some(endpoint) => {
            Ok((kind, format!("{}/{repository}.git", endpoint.trim_end_matches('/'))))
        }
        None => Err(format!("The connection {arn} names no host to clone {repository} from.")),
    };
    match connection.provider.as_str() {
        "GitHub" => hosted(SourceType::Github, "github.com"),
        "GitLab" => hosted(SourceType::Gitlab, "gitlab.com"),
        "Bitbucket" => hosted(SourceType::Bitbucket, "bitbucket.org"),
        "GitHubEnterpriseServer" => own(SourceType::GithubEnterprise),
        "GitLabSelfManaged" => own(SourceType::GitlabSelfManaged),
        other => Err(format!(
            "The connection {arn} is to {other}, which CodeBuild cannot clone from for a source action."
        )),
    }
}

/// The variables the build exports: the commit it fetched.
const COMMIT_VARIABLES: [&str; 3] = ["CommitId", "CommitMessage", "AuthorDate"];

/// The buildspec of a fetch: export the commit's id, message and author date (ISO 8601, as
/// git prints it), and keep the repository's files, without `.git` unless `clone_ref`, which
/// checks the branch (`BATON_BRANCH`) out at the commit, as a clone of it would be.
pub fn buildspec(clone_ref: bool) -> String {
    let mut commands = vec![
        "export CommitId=\"$(git rev-parse HEAD)\"",
        "export CommitMessage=\"$(git log -1 --format=%B)\"",
        "export AuthorDate=\"$(git log -1 --format=%aI)\"",
    ];
    let mut artifacts = json!({"files": ["**/*"]});
    if clone_ref {
        commands.push("git checkout -q -B \"$BATON_BRANCH\" \"$CommitId\"");
    } else {
        artifacts["exclude-paths"] = json!(["./.git/**/*"]);
    }
    json!({
        "version": "0.2",
        "env": {"exported-variables": COMMIT_VARIABLES},
        "phases": {"build": {"commands": commands}},
        "artifacts": artifacts,
    })
    .to_string()
}

/// What a fetch's succeeded build gives the action: CodePipeline's variables for a connection
/// source, the commit as the revision (the external id), its first line as the summary.
///
/// The commit is the one the build exported, else the one CodeBuild resolved, else the one
/// the start pinned.
///
/// # Errors
/// When nothing says which commit was fetched.
pub fn fetched(request: &ActionRequest, build: &Build, url: String) -> Result<JobResult, Failure> {
    let exported: BTreeMap<&str, &str> = build
        .exported_environment_variables()
        .iter()
        .filter_map(|v| Some((v.name()?, v.value().unwrap_or(""))))
        .collect();
    let pinned = pinned_commit(request);
    let commit = exported
        .get("CommitId")
        .copied()
        .or(build.resolved_source_version())
        .or(pinned)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            Failure::job(format!("The build did not say which commit it fetched ({url})."))
        })?
        .to_owned();
    let message = exported.get("CommitMessage").copied().unwrap_or("").trim_end().to_owned();
    let config = &request.configuration;
    let variables = BTreeMap::from([
        ("AuthorDate".to_owned(), exported.get("AuthorDate").copied().unwrap_or("").to_owned()),
        ("BranchName".to_owned(), branch(request).to_owned()),
        ("CommitId".to_owned(), commit.clone()),
        ("CommitMessage".to_owned(), message.clone()),
        ("ConnectionArn".to_owned(), optional(config, "ConnectionArn").unwrap_or("").to_owned()),
        (
            "FullRepositoryName".to_owned(),
            optional(config, "FullRepositoryId").unwrap_or("").to_owned(),
        ),
    ]);
    Ok(JobResult::Succeeded {
        output_artifacts: Vec::new(),
        output_variables: variables,
        summary: Some(message.lines().next().unwrap_or_default().to_owned()),
        external_id: Some(commit),
        external_url: Some(url),
    })
}

/// The commit a start pinned (a webhook, `sourceRevisions`, `PutActionRevision`).
fn pinned_commit(request: &ActionRequest) -> Option<&str> {
    request
        .source_revision
        .as_ref()
        .filter(|r| r.revision_type == "COMMIT_ID")
        .map(|r| r.value.as_str())
}

/// The branch the run is on: a trigger's (a push to another branch, a pull request's source
/// branch), else the action's `BranchName`.
fn branch(request: &ActionRequest) -> &str {
    let pinned = request.source_revision.as_ref().and_then(|r| r.branch.as_deref());
    pinned.or(optional(&request.configuration, "BranchName")).unwrap_or_default()
}

/// Fetches connection sources as builds of one CodeBuild project.
#[derive(Clone)]
pub struct ConnectionSourceProvider {
    builds: CodeBuildProvider,
    project: String,
    connections: Arc<dyn Connections>,
}

impl fmt::Debug for ConnectionSourceProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionSourceProvider")
            .field("project", &self.project)
            .finish_non_exhaustive()
    }
}

impl ConnectionSourceProvider {
    /// Fetches with builds of `project`, started and followed by `builds`, reading connections
    /// from `connections`.
    pub fn new(
        builds: CodeBuildProvider,
        project: impl Into<String>,
        connections: Arc<dyn Connections>,
    ) -> Self {
        Self { builds, project: project.into(), connections }
    }

    async fn fetch(&self, job: &Job) -> Result<JobResult, Stop> {
        let r = &job.request;
        let arn = required(&r.configuration, "ConnectionArn")?;
        let repository = required(&r.configuration, "FullRepositoryId")?;
        required(&r.configuration, "BranchName")?;
        let clone_ref = optional(&r.configuration, "OutputArtifactFormat")
            .is_some_and(|f| f == "CODEBUILD_CLONE_REF");
        let connection = self.connections.connection(r, arn).await?;
        let (kind, location) =
            clone_source(&connection, arn, repository).map_err(Failure::configuration)?;
        let pinned = pinned_commit(r);
        // One commit deep is enough for a branch's head; a pinned commit may be older.
        let clone_depth = if clone_ref || pinned.is_some() { 0 } else { 1 };
        let environment =
            [("BATON_BRANCH".to_owned(), branch(r).to_owned(), "PLAINTEXT".to_owned())];
        let build = Start {
            project: &self.project,
            primary_source: None,
            environment: &environment,
            buildspec: Some(buildspec(clone_ref)),
            timeout_minutes: Some(timeout_minutes(r.deadline)),
            remote: Some(RemoteSource {
                kind,
                location,
                connection_arn: arn.to_owned(),
                version: pinned.unwrap_or(branch(r)).to_owned(),
                clone_depth,
            }),
        };
        self.builds.start(job, build).await
    }
}

#[async_trait]
impl ActionProvider for ConnectionSourceProvider {
    async fn check(&self, action: &ActionPlan) -> Result<(), String> {
        super::check_required(
            &action.configuration,
            &["ConnectionArn", "FullRepositoryId", "BranchName"],
            "the action configuration",
        )?;
        match action.configuration.get("OutputArtifactFormat").map(String::as_str) {
            None | Some("CODE_ZIP" | "CODEBUILD_CLONE_REF") => Ok(()),
            Some(f) if has_reference(f) => Ok(()),
            Some(other) => Err(format!(
                "OutputArtifactFormat must be CODE_ZIP or CODEBUILD_CLONE_REF, not \"{other}\""
            )),
        }
    }

    fn works_in_place(&self) -> bool {
        true
    }

    async fn run(&self, job: &Job) -> Result<JobResult, ProviderError> {
        finish(self.fetch(job).await)
    }

    async fn resume(&self, job: &Job, external_id: &str) -> Result<JobResult, ProviderError> {
        let request = &job.request;
        let looked = self
            .builds
            .look_with(request, external_id, |build, url| Ok(fetched(request, build, url)?))
            .await;
        finish(looked)
    }

    async fn cancel(
        &self,
        request: &ActionRequest,
        external_id: &str,
    ) -> Result<(), ProviderError> {
        self.builds.cancel(request, external_id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_codebuild::types::ExportedEnvironmentVariable;
    use baton_core::engine::SourceRevision;

    fn connection(provider: &str, status: &str, endpoint: Option<&str>) -> Connection {
        Connection {
            provider: provider.into(),
            status: status.into(),
            endpoint: endpoint.map(str::to_owned),
        }
    }

    #[test]
    fn each_host_is_cloned_from_its_own_url_with_codebuilds_source_type() {
        let arn = "arn:aws:codeconnections:us-east-1:111111111111:connection/c";
        let cases = [
            ("GitHub", None, SourceType::Github, "https://github.com/acme/app.git"),
            ("GitLab", None, SourceType::Gitlab, "https://gitlab.com/acme/app.git"),
            ("Bitbucket", None, SourceType::Bitbucket, "https://bitbucket.org/acme/app.git"),
            (
                "GitHubEnterpriseServer",
                Some("https://git.acme.internal/"),
                SourceType::GithubEnterprise,
                "https://git.acme.internal/acme/app.git",
            ),
            (
                "GitLabSelfManaged",
                Some("https://gitlab.acme.internal"),
                SourceType::GitlabSelfManaged,
                "https://gitlab.acme.internal/acme/app.git",
            ),
        ];
        for (provider, endpoint, kind, url) in cases {
            let c = connection(provider, "AVAILABLE", endpoint);
            assert_eq!(clone_source(&c, arn, "acme/app"), Ok((kind, url.to_owned())), "{provider}");
        }
        let pending = clone_source(&connection("GitHub", "PENDING", None), arn, "acme/app");
        assert!(pending.unwrap_err().contains("is PENDING: finish setting it up"));
        let hostless =
            clone_source(&connection("GitLabSelfManaged", "AVAILABLE", None), arn, "a/b");
        assert!(hostless.unwrap_err().contains("names no host"));
        let azure = clone_source(&connection("AzureDevOps", "AVAILABLE", None), arn, "a/b");
        assert!(azure.unwrap_err().contains("CodeBuild cannot clone from"));
    }

    #[test]
    fn a_zip_leaves_git_out_and_a_clone_ref_keeps_it_on_the_branch() {
        let zip: serde_json::Value = serde_json::from_str(&buildspec(false)).unwrap();
        assert_eq!(zip["env"]["exported-variables"], json!(COMMIT_VARIABLES));
        assert_eq!(zip["artifacts"]["exclude-paths"], json!(["./.git/**/*"]));
        let commands = zip["phases"]["build"]["commands"].as_array().unwrap();
        assert!(commands.iter().all(|c| !c.as_str().unwrap().contains("checkout")));

        let clone: serde_json::Value = serde_json::from_str(&buildspec(true)).unwrap();
        assert!(clone["artifacts"].get("exclude-paths").is_none(), "history is kept");
        let last = clone["phases"]["build"]["commands"].as_array().unwrap().last().cloned();
        assert_eq!(last, Some(json!("git checkout -q -B \"$BATON_BRANCH\" \"$CommitId\"")));
    }

    fn request(pinned: Option<SourceRevision>) -> ActionRequest {
        let mut r: ActionRequest = serde_json::from_value(json!({
            "pipeline": "app", "pipeline_version": 1, "execution_id": "e", "stage": "Source",
            "action": "Checkout", "attempt": 1, "region": "us-east-1",
            "action_type": {"category": "Source", "owner": "AWS",
                            "provider": "CodeStarSourceConnection", "version": "1"},
            "configuration": {"ConnectionArn": "arn:c", "FullRepositoryId": "acme/app",
                              "BranchName": "main"},
            "commands": [], "input_artifacts": [], "output_artifacts": ["Src"],
            "role_arn": null, "deadline": 0, "token": null, "output_artifact_files": [],
            "output_variables": [], "environment_variables": []
        }))
        .unwrap();
        r.source_revision = pinned;
        r
    }

    fn build(exported: &[(&str, &str)], resolved: Option<&str>) -> Build {
        let variables = exported
            .iter()
            .map(|(n, v)| ExportedEnvironmentVariable::builder().name(*n).value(*v).build())
            .collect();
        Build::builder()
            .set_exported_environment_variables(Some(variables))
            .set_resolved_source_version(resolved.map(str::to_owned))
            .build()
    }

    #[test]
    fn a_fetch_gives_codepipelines_variables_and_the_commit_as_its_revision() {
        let exported = [
            ("CommitId", "c0ffee"),
            ("CommitMessage", "Ship it\n\nwith a body\n"),
            ("AuthorDate", "2026-12-01T10:00:00+00:00"),
        ];
        let result = fetched(&request(None), &build(&exported, Some("other")), "u".into());
        let Ok(JobResult::Succeeded { output_variables, summary, external_id, .. }) = result else {
            panic!("{result:?}");
        };
        assert_eq!(external_id.as_deref(), Some("c0ffee"), "the exported commit comes first");
        assert_eq!(summary.as_deref(), Some("Ship it"));
        let expected = [
            ("AuthorDate", "2026-12-01T10:00:00+00:00"),
            ("BranchName", "main"),
            ("CommitId", "c0ffee"),
            ("CommitMessage", "Ship it\n\nwith a body"),
            ("ConnectionArn", "arn:c"),
            ("FullRepositoryName", "acme/app"),
        ];
        let expected: BTreeMap<String, String> =
            expected.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        assert_eq!(output_variables, expected);
    }

    #[test]
    fn the_commit_falls_back_to_codebuilds_then_the_pinned_one_and_is_never_guessed() {
        let resolved = fetched(&request(None), &build(&[], Some("abc123")), "u".into());
        assert!(
            matches!(&resolved, Ok(JobResult::Succeeded { external_id: Some(c), .. }) if c == "abc123")
        );
        let pin = SourceRevision {
            revision_type: "COMMIT_ID".into(),
            value: "feed42".into(),
            branch: Some("topic".into()),
        };
        let pinned = fetched(&request(Some(pin)), &build(&[], None), "u".into());
        let Ok(JobResult::Succeeded { external_id, output_variables, .. }) = pinned else {
            panic!("{pinned:?}");
        };
        assert_eq!(external_id.as_deref(), Some("feed42"));
        assert_eq!(output_variables["BranchName"], "topic", "the trigger's branch");
        let unknown = fetched(&request(None), &build(&[], None), "u".into());
        assert!(unknown.unwrap_err().message.contains("did not say which commit"));
    }
}
