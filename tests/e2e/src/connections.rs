//! What CodeConnections (and CodeStar Connections, its older name and ARN) answer on AWS and
//! moto does not: a connection's provider and status (`GetConnection`, JSON 1.0). The counting
//! proxy answers from here, once the harness has decided the caller may read the connection.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};

/// The stand-in's connections: ARN to provider type (`GitHub`...), all `AVAILABLE`.
#[derive(Debug, Clone, Default)]
pub struct Connections {
    inner: Arc<Mutex<BTreeMap<String, String>>>,
}

impl Connections {
    /// A connection `arn` to `provider`, set up.
    pub fn add(&self, arn: &str, provider: &str) {
        let mut all = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        all.insert(arn.to_owned(), provider.to_owned());
    }

    /// The answer to `operation` (status and JSON body).
    pub fn answer(&self, operation: &str, request: &Value) -> (u16, Value) {
        let all = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let arn = request["ConnectionArn"].as_str().unwrap_or_default();
        match (operation, all.get(arn)) {
            ("GetConnection", Some(provider)) => (
                200,
                json!({"Connection": {"ConnectionArn": arn,
                    "ConnectionName": arn.rsplit('/').next(), "ProviderType": provider,
                    "ConnectionStatus": "AVAILABLE", "OwnerAccountId": arn.split(':').nth(4)}}),
            ),
            ("GetConnection", None) => (
                400,
                json!({"__type": "ResourceNotFoundException", "Message": format!("Connection {arn} not found")}),
            ),
            _ => (400, json!({"__type": "UnknownOperationException"})),
        }
    }
}
