//! Node.js bindings of clawpatrol (napi-rs): the same engine as the gateway, in-process.
//!
//! Config errors are thrown as `Error`s whose message starts with [`POLICY_ERROR_PREFIX`]
//! followed by JSON; `index.js` turns them into `PolicyError` objects with `file`, `line`,
//! `column` and `errors`.

use std::sync::Arc;

use clawpatrol_core::{Action as CoreAction, ConfigError, Decision as CoreDecision, Verdict};
use napi::bindgen_prelude::*;
use napi_derive::napi;

/// Marks a thrown config error for the JavaScript wrapper.
pub const POLICY_ERROR_PREFIX: &str = "CLAWPATROL_POLICY_ERROR:";

fn policy_error(e: &ConfigError) -> Error {
    let first = e.first();
    let loc = first.and_then(|d| d.location.as_ref());
    let payload = serde_json::json!({
        "message": e.to_string(),
        "summary": first.map(|d| d.summary.clone()),
        "file": loc.map(|l| l.file.clone()),
        "line": loc.map(|l| l.line),
        "column": loc.map(|l| l.column),
        "errors": e.errors().map(|d| d.to_string()).collect::<Vec<_>>(),
    });
    Error::new(
        Status::InvalidArg,
        format!("{POLICY_ERROR_PREFIX}{payload}"),
    )
}

/// A compiled policy.
#[napi]
pub struct Policy {
    inner: Arc<clawpatrol_core::Policy>,
}

/// One action to decide; a SQL text is parsed at `decide()` by the endpoint's parser.
#[napi]
#[derive(Clone)]
pub struct Action {
    inner: Arc<CoreAction>,
}

/// The decision for one action.
#[napi]
pub struct Decision {
    inner: CoreDecision,
    /// Kept to compute the trace on demand (`explain`), off the hot path.
    policy: Arc<clawpatrol_core::Policy>,
    action: Arc<CoreAction>,
}

/// The result of replaying one fixture file.
#[napi(object)]
pub struct FixtureResult {
    /// The fixture path.
    pub path: String,
    /// `ok`, `fail` or `error`.
    pub status: String,
    /// The error text for `error`.
    pub error: Option<String>,
    /// Expected `[verdict, rule, endpoint]`, when the fixture parsed.
    pub want: Option<Vec<String>>,
    /// Produced `[verdict, rule, endpoint]`, when it could be decided.
    pub got: Option<Vec<String>>,
}

/// Options of `sshAction`.
#[napi(object)]
#[derive(Default)]
pub struct SshActionOptions {
    /// The exec command line.
    pub command: Option<String>,
    /// The subsystem name.
    pub subsystem: Option<String>,
    /// The direct-tcpip destination host.
    pub forward_host: Option<String>,
    /// The direct-tcpip destination port.
    pub forward_port: Option<i64>,
    /// The SSH user.
    pub user: Option<String>,
    /// Buffered stdin.
    pub stdin: Option<String>,
    /// The host the agent addressed.
    pub host: Option<String>,
    /// The dispatched credential's name.
    pub credential: Option<String>,
    /// The typed endpoint name, when known.
    pub endpoint: Option<String>,
    /// Stdin was cut at the inspection buffer.
    pub truncated: Option<bool>,
}

fn action_from_json(v: &serde_json::Value) -> Result<Arc<CoreAction>> {
    CoreAction::from_json(v)
        .map(Arc::new)
        .map_err(|e| Error::new(Status::InvalidArg, e.0))
}

#[napi]
impl Policy {
    /// Loads a config file, or every `*.hcl` of a directory in name order.
    #[napi(factory)]
    pub fn load(path: String) -> Result<Policy> {
        clawpatrol_core::Policy::load(&path)
            .map(|p| Policy { inner: Arc::new(p) })
            .map_err(|e| policy_error(&e))
    }

    /// Compiles config text; `name` (default `policy.hcl`) is the file name errors show.
    #[napi(factory)]
    pub fn from_string(text: String, name: Option<String>) -> Result<Policy> {
        let name = name.unwrap_or_else(|| "policy.hcl".to_string());
        clawpatrol_core::Policy::from_source(&name, &text)
            .map(|p| Policy { inner: Arc::new(p) })
            .map_err(|e| policy_error(&e))
    }

    /// Decides an action: an `Action` from the helpers, or an object in the fixture
    /// `action` format.
    #[napi]
    pub fn decide(&self, env: Env, action: Either<&Action, Object>) -> Result<Decision> {
        let action = match action {
            Either::A(a) => a.inner.clone(),
            Either::B(o) => action_from_json(&env.from_js_value::<serde_json::Value, _>(o)?)?,
        };
        Ok(Decision {
            inner: self.inner.decide_action(&action),
            policy: self.inner.clone(),
            action,
        })
    }

    /// Replays a fixture file or directory (like `clawpatrol test`), one result per fixture.
    #[napi]
    pub fn test(&self, path: String, recursive: Option<bool>) -> Result<Vec<FixtureResult>> {
        let files = clawpatrol_test::discover::fixture_files(
            std::path::Path::new(&path),
            recursive.unwrap_or(false),
        )
        .map_err(|e| Error::new(Status::InvalidArg, e.to_string()))?;
        let results = clawpatrol_test::runner::replay_files(&self.inner, &files);
        Ok(results
            .into_iter()
            .map(|r| {
                let (status, error) = match &r.outcome {
                    clawpatrol_test::Outcome::Pass(_) => ("ok", None),
                    clawpatrol_test::Outcome::Mismatch(_) => ("fail", None),
                    clawpatrol_test::Outcome::Error(e) => ("error", Some(e.clone())),
                };
                FixtureResult {
                    path: r.path.clone(),
                    status: status.to_string(),
                    error,
                    want: r
                        .expect
                        .as_ref()
                        .map(|w| vec![w.verdict.clone(), w.rule.clone(), w.endpoint.clone()]),
                    got: r
                        .outcome
                        .produced()
                        .map(|g| vec![g.verdict.clone(), g.rule.clone(), g.endpoint.clone()]),
                }
            })
            .collect())
    }

    /// Typed names of the endpoints (`https.github`), in declaration order.
    #[napi(getter)]
    pub fn endpoints(&self) -> Vec<String> {
        self.inner.endpoint_names().map(str::to_string).collect()
    }

    /// Warnings of the load, rendered.
    #[napi(getter)]
    pub fn warnings(&self) -> Vec<String> {
        self.inner
            .warnings()
            .iter()
            .map(|d| d.to_string())
            .collect()
    }
}

#[napi]
impl Decision {
    /// `allow`, `deny`, `approve` or `passthrough`.
    #[napi(getter)]
    pub fn verdict(&self) -> String {
        self.inner.verdict.as_str().to_string()
    }

    /// The deciding rule, or `null`.
    #[napi(getter)]
    pub fn rule(&self) -> Option<String> {
        self.inner.rule.as_deref().map(str::to_string)
    }

    /// The typed endpoint, or `null` when no endpoint claims the action.
    #[napi(getter)]
    pub fn endpoint(&self) -> Option<String> {
        self.inner.endpoint.as_deref().map(str::to_string)
    }

    /// On a deny, what the agent is told (`denied by policy` when the rule gives no reason);
    /// otherwise the rule's reason (possibly empty).
    #[napi(getter)]
    pub fn reason(&self) -> String {
        match self.inner.verdict {
            Verdict::Deny => self.inner.agent_reason().to_string(),
            _ => self.inner.reason.clone(),
        }
    }

    /// The approver chain of an `approve` verdict (typed references), else empty.
    #[napi(getter)]
    pub fn approvers(&self) -> Vec<String> {
        match &self.inner.verdict {
            Verdict::Approve(chain) => chain.clone(),
            _ => Vec::new(),
        }
    }

    /// True for `allow` and `passthrough`.
    #[napi(getter)]
    pub fn allowed(&self) -> bool {
        self.inner.is_allowed()
    }

    /// Every rule evaluated, in order, with its result.
    #[napi]
    pub fn explain(&self) -> String {
        self.policy.decide_action_traced(&self.action).explain()
    }

    /// The decision as a plain object (same keys as `clawpatrol eval` prints).
    #[napi(js_name = "toJSON")]
    pub fn to_json(&self) -> serde_json::Value {
        self.policy.decide_action_traced(&self.action).to_json()
    }
}

/// Options of `httpAction` and `k8sAction`.
#[napi(object)]
#[derive(Default)]
pub struct RequestOptions {
    /// Request headers (one value per name).
    pub headers: Option<std::collections::HashMap<String, String>>,
    /// The request body.
    pub body: Option<Either<String, Buffer>>,
    /// The dispatched credential's name.
    pub credential: Option<String>,
    /// The typed endpoint name, when known.
    pub endpoint: Option<String>,
}

fn request_action(method: String, url: String, o: RequestOptions, kubernetes: bool) -> Action {
    let mut headers: Vec<(String, String)> = o.headers.unwrap_or_default().into_iter().collect();
    headers.sort();
    let body = match o.body {
        Some(Either::A(s)) => s.into_bytes(),
        Some(Either::B(b)) => b.to_vec(),
        None => Vec::new(),
    };
    let mut a = clawpatrol_core::facts::from_http::action_from_url(
        &method, &url, &headers, body, kubernetes,
    )
    .with_credential(o.credential.unwrap_or_default());
    a.endpoint = o.endpoint;
    Action { inner: Arc::new(a) }
}

/// An HTTP request (`url` absolute, or a path), with the facts the gateway would derive.
#[napi]
pub fn http_action(method: String, url: String, options: Option<RequestOptions>) -> Action {
    request_action(method, url, options.unwrap_or_default(), false)
}

/// A Kubernetes API request (method + URL), decomposed into `k8s.*` facts like the gateway.
#[napi(js_name = "k8sAction")]
pub fn k8s_action(method: String, url: String, options: Option<RequestOptions>) -> Action {
    request_action(method, url, options.unwrap_or_default(), true)
}

/// An action from an object in the fixture `action` format (validated now).
#[napi]
pub fn action_from_object(action: serde_json::Value) -> Result<Action> {
    Ok(Action {
        inner: action_from_json(&action)?,
    })
}

/// Options of `sqlAction`.
#[napi(object)]
#[derive(Default)]
pub struct SqlActionOptions {
    /// The session database.
    pub database: Option<String>,
    /// The host the agent addressed.
    pub host: Option<String>,
    /// The dispatched credential's name.
    pub credential: Option<String>,
    /// The typed endpoint name, when known.
    pub endpoint: Option<String>,
    /// The text was cut at the inspection buffer.
    pub truncated: Option<bool>,
}

/// A SQL text (one or more statements) for a `postgres` or `clickhouse_native` endpoint;
/// `decide()` derives every statement with the gateway's parser and decides each.
#[napi]
pub fn sql_action(statement: String, options: Option<SqlActionOptions>) -> Action {
    let o = options.unwrap_or_default();
    let mut a = CoreAction::new(clawpatrol_core::Facts::Sql(
        clawpatrol_core::facts::SqlFacts {
            statement,
            database: o.database.unwrap_or_default(),
            ..Default::default()
        },
    ))
    .with_host(o.host.unwrap_or_default())
    .with_credential(o.credential.unwrap_or_default());
    a.endpoint = o.endpoint;
    a.truncated = o.truncated.unwrap_or(false);
    Action { inner: Arc::new(a) }
}

/// An SSH channel action (`verb`: pty, exec, shell, subsystem, forward).
#[napi]
pub fn ssh_action(verb: String, options: Option<SshActionOptions>) -> Action {
    let o = options.unwrap_or_default();
    let facts = clawpatrol_core::facts::SshFacts {
        verb,
        command: o.command.unwrap_or_default(),
        subsystem: o.subsystem.unwrap_or_default(),
        forward_host: o.forward_host.unwrap_or_default(),
        forward_port: o.forward_port.unwrap_or(0),
        user: o.user.unwrap_or_default(),
        stdin: o.stdin.unwrap_or_default(),
    }
    .normalized();
    let mut a = CoreAction::new(clawpatrol_core::Facts::Ssh(facts))
        .with_host(o.host.unwrap_or_default())
        .with_credential(o.credential.unwrap_or_default());
    a.endpoint = o.endpoint;
    a.truncated = o.truncated.unwrap_or(false);
    Action { inner: Arc::new(a) }
}

/// The version of the clawpatrol engine inside this addon.
#[napi]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
