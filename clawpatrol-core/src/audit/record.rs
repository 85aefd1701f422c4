//! One audit row: the `actions` columns of reference §6.1 plus the credential name and the
//! hash chain of DESIGN §7.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One audited action, already redacted (reference §4.5): no field holds a real secret.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Row id assigned by the store (0 before insertion).
    #[serde(default)]
    pub id: i64,
    /// UUIDv7 of the action.
    pub action_id: String,
    /// Wall-clock time of the action's start, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// How the traffic was handled: `mitm`, `splice`, `pg`, `proxy`, …
    pub mode: String,
    /// Family of the facts (`http`, `k8s`, `sql`, `ssh`), empty for splices.
    pub family: String,
    /// The agent's address (`ip` or `ip:port`).
    pub agent_ip: String,
    /// The profile the agent was identified as.
    pub profile: Option<String>,
    /// The host the agent addressed (SNI / authority).
    pub host: String,
    /// HTTP method, SQL verb, SSH verb, or `connect`.
    pub method: String,
    /// HTTP path without query, SQL summary, SSH summary.
    pub path: String,
    /// Upstream status (HTTP status code as text), or empty.
    pub status: String,
    /// Request bytes received from the agent.
    pub bytes_in: u64,
    /// Response bytes sent to the agent.
    pub bytes_out: u64,
    /// Duration in milliseconds.
    pub ms: u64,
    /// Outcome: `allow`, `deny`, `approved`, `denied`, `error`, …
    pub action: String,
    /// Reason text (deny reason, error description).
    pub reason: String,
    /// SHA-256 hex of the whole request body (empty when there was none).
    pub req_sha: String,
    /// SHA-256 hex of the whole response body (empty when there was none).
    pub resp_sha: String,
    /// Request body sample (first `limits.body_storage` bytes, redacted).
    pub req_body: String,
    /// Response body sample.
    pub resp_body: String,
    /// Request headers after injection, redacted (multi-values joined with `, `).
    pub req_headers: BTreeMap<String, String>,
    /// Response headers as received from upstream, redacted.
    pub resp_headers: BTreeMap<String, String>,
    /// JSON object; `action` holds the decided action in fixture form, redacted, and
    /// `body_cut` flags a cut input (see [`super::extra`], built by [`super::record_extra`]).
    pub extra: serde_json::Value,
    /// Endpoint typed name (`https.github`), when one claimed the traffic.
    pub endpoint: Option<String>,
    /// The rule that decided, if any.
    pub rule: Option<String>,
    /// The credential chosen by dispatch, if any (bare name).
    pub credential: Option<String>,
    /// The approver that decided an `approve` outcome.
    pub approver: Option<String>,
    /// Its type.
    pub approver_type: Option<String>,
    /// Who approved (human identity), if known.
    pub approver_by: Option<String>,
    /// Hash of the previous row (hex), empty for the first row.
    #[serde(default)]
    pub prev_hash: String,
    /// Hash of this row's content and `prev_hash` (hex).
    #[serde(default)]
    pub hash: String,
}
