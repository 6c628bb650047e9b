//! What IAM checks and moto lets through, decided here against the caller's declared
//! statements; a refusal is the service's `AccessDenied`, and the call does not happen:
//! - CodeDeploy's look at a deployment's S3 revision, which it makes as the caller of
//!   `CreateDeployment` (a revision the caller cannot read is `RevisionDoesNotExistException`,
//!   "does not exist with the IAM user or AWS account") and moto's CodeDeploy does not make;
//! - the topic of an SNS publication, which moto checks against `*`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use serde_json::Value;

use super::{Call, Proxy};

impl Proxy {
    /// Before a deployment of an S3 revision: its object, read as the caller.
    pub(super) fn revision_decided_here(
        &self,
        function: &str,
        call: &Call,
        body: &[u8],
    ) -> Option<Response<Full<Bytes>>> {
        if (call.service.as_str(), call.operation.as_str()) != ("codedeploy", "CreateDeployment") {
            return None;
        }
        let request: Value = serde_json::from_slice(body).ok()?;
        let s3 = &request["revision"]["s3Location"];
        let object = format!("arn:aws:s3:::{}/{}", s3["bucket"].as_str()?, s3["key"].as_str()?);
        let via = format!("codedeploy.{}.amazonaws.com", call.region);
        self.decided_here(function, call, ("s3", "GetObject"), &object, via)
    }

    /// Before a publication: the topic, decided against the publisher's declared statements,
    /// since moto checks SNS's calls against `*` and a role may hold grants that differ only by
    /// topic (the approval function's own topic and the actions' topics).
    pub(super) fn topic_decided_here(
        &self,
        function: &str,
        call: &Call,
        body: &[u8],
    ) -> Option<Response<Full<Bytes>>> {
        if (call.service.as_str(), call.operation.as_str()) != ("sns", "Publish") {
            return None;
        }
        let topic = super::form_value(body, "TopicArn")?;
        let via = format!("sns.{}.amazonaws.com", call.region);
        self.decided_here(function, call, ("sns", "Publish"), &topic, via)
    }
}
