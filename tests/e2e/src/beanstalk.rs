//! What Elastic Beanstalk does on AWS and moto does not: keep application versions and move an
//! environment to one (`CreateApplicationVersion`, `UpdateEnvironment`, `DescribeEnvironments`,
//! `DescribeEvents`, in its query protocol). The counting proxy answers these from here. Before
//! it makes a version, Elastic Beanstalk reads the source bundle as the caller (a caller who
//! cannot is refused with `InsufficientPrivilegesException`, "not enough privileges for one of
//! more downstream aws services"): the proxy decides that read, and S3's decryption under the
//! bundle's key, against the caller's declared statements. Elastic Beanstalk's own actions are
//! granted by AWS's managed policy, which the harness does not hold, so they are not decided. An
//! updated environment is `Ready` on its new version when next described.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The stand-in's environments (name to the version label it runs) and versions made
/// (application and label to the bundle's bucket and key).
#[derive(Debug, Clone, Default)]
pub struct Beanstalk {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    environments: BTreeMap<String, String>,
    versions: BTreeMap<(String, String), (String, String)>,
}

impl Beanstalk {
    /// The answer to `operation` with the form `form` (status and XML body).
    pub fn answer(&self, operation: &str, form: &BTreeMap<String, String>) -> (u16, String) {
        let mut state = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let field = |name: &str| form.get(name).cloned().unwrap_or_default();
        let (application, environment) = (field("ApplicationName"), field("EnvironmentName"));
        let result = match operation {
            "CreateApplicationVersion" => {
                let bundle = (field("SourceBundle.S3Bucket"), field("SourceBundle.S3Key"));
                let label = field("VersionLabel");
                state.versions.insert((application.clone(), label.clone()), bundle);
                format!(
                    "<ApplicationVersion><ApplicationName>{application}</ApplicationName><VersionLabel>{label}</VersionLabel><Status>UNPROCESSED</Status></ApplicationVersion>"
                )
            }
            "UpdateEnvironment" => {
                let label = field("VersionLabel");
                if !state.versions.contains_key(&(application.clone(), label.clone())) {
                    let message = format!("No Application Version named '{label}' found.");
                    return (400, error("InvalidParameterValue", &message));
                }
                state.environments.insert(environment.clone(), label.clone());
                format!(
                    "<EnvironmentName>{environment}</EnvironmentName><ApplicationName>{application}</ApplicationName><VersionLabel>{label}</VersionLabel><Status>Updating</Status><Health>Grey</Health>"
                )
            }
            "DescribeEnvironments" => {
                let name = field("EnvironmentNames.member.1");
                let members: String = state
                    .environments
                    .iter()
                    .filter(|(n, _)| **n == name)
                    .map(|(n, label)| format!("<member><EnvironmentName>{n}</EnvironmentName><ApplicationName>{application}</ApplicationName><VersionLabel>{label}</VersionLabel><Status>Ready</Status><Health>Green</Health></member>"))
                    .collect();
                format!("<Environments>{members}</Environments>")
            }
            "DescribeEvents" => "<Events/>".to_owned(),
            _ => return (400, error("InvalidAction", &format!("{operation} is not played here"))),
        };
        let xmlns = "http://elasticbeanstalk.amazonaws.com/docs/2010-12-01/";
        let body = format!(
            "<{operation}Response xmlns=\"{xmlns}\"><{operation}Result>{result}</{operation}Result><ResponseMetadata><RequestId>e2e</RequestId></ResponseMetadata></{operation}Response>"
        );
        (200, body)
    }

    /// An environment running `label` (a version made before the scenario).
    pub fn launch(&self, environment: &str, label: &str) {
        let mut state = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        state.environments.insert(environment.to_owned(), label.to_owned());
    }

    /// The version label `environment` runs.
    pub fn running(&self, environment: &str) -> Option<String> {
        let state = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        state.environments.get(environment).cloned()
    }
}

/// A query-protocol error.
pub fn error(code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>e2e</RequestId></ErrorResponse>"
    )
}
