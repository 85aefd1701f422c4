//! Kubernetes API facts (`k8s.*`, reference §2.3 and §3.2).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The facts of one Kubernetes API call.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K8sFacts {
    /// `list`/`get`/`watch`/`create`/`update`/`patch`/`delete`/`meta`/`""`, lower-cased.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verb: String,
    /// `<resource>` or `<resource>/<subresource>`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    /// The namespace or `""`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The object name or `""`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// URL query, first value per key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

impl K8sFacts {
    /// Normalises case rules (the verb is lower-cased).
    pub fn normalized(mut self) -> K8sFacts {
        self.verb.make_ascii_lowercase();
        self
    }
}
