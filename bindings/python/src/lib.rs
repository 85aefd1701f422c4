//! Python bindings of clawpatrol: the native module `clawpatrol._clawpatrol`.
//!
//! `Policy` wraps a compiled `clawpatrol_core::Policy` (immutable, shared across threads);
//! `decide()` releases the GIL while the engine runs.

use std::path::PathBuf;
use std::sync::Arc;

use clawpatrol_core::{Action as CoreAction, ConfigError, Decision as CoreDecision, Verdict};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use pyo3::IntoPyObjectExt;

create_exception!(
    clawpatrol,
    PolicyError,
    PyException,
    "A policy that does not load: `file`, `line`, `column` locate the first error; `errors` lists every error."
);

/// Builds a `PolicyError` carrying the first error's position and every message.
fn policy_error(py: Python<'_>, e: &ConfigError) -> PyErr {
    let err = PolicyError::new_err(e.to_string());
    let value = err.value(py);
    let first = e.first();
    let loc = first.and_then(|d| d.location.as_ref());
    let set = |k: &str, v: Py<PyAny>| {
        let _ = value.setattr(k, v);
    };
    set("file", to_py(py, loc.map(|l| l.file.clone())));
    set("line", to_py(py, loc.map(|l| l.line)));
    set("column", to_py(py, loc.map(|l| l.column)));
    set("summary", to_py(py, first.map(|d| d.summary.clone())));
    let errors: Vec<String> = e.errors().map(|d| d.to_string()).collect();
    set("errors", to_py(py, errors));
    err
}

/// Converts a value to a Python object, `None` when it cannot be converted.
fn to_py<'py, T: IntoPyObject<'py>>(py: Python<'py>, v: T) -> Py<PyAny> {
    v.into_py_any(py).unwrap_or_else(|_| py.None())
}

/// A compiled policy. Thread-safe; share one instance between threads.
#[pyclass(frozen, module = "clawpatrol")]
struct Policy {
    inner: Arc<clawpatrol_core::Policy>,
}

/// One action to decide; a SQL text is parsed at `decide()` by the endpoint's parser.
#[pyclass(frozen, module = "clawpatrol")]
#[derive(Clone)]
struct Action {
    inner: Arc<CoreAction>,
}

/// The decision for one action.
#[pyclass(frozen, module = "clawpatrol")]
struct Decision {
    inner: CoreDecision,
    /// Kept to compute the trace on demand (`explain`), off the hot path.
    policy: Arc<clawpatrol_core::Policy>,
    action: Arc<CoreAction>,
}

/// The result of replaying one fixture file.
#[pyclass(frozen, get_all, module = "clawpatrol")]
struct FixtureResult {
    /// The fixture path.
    path: String,
    /// `ok`, `fail` or `error`.
    status: String,
    /// The error text for `error`.
    error: Option<String>,
    /// Expected verdict, rule and endpoint (when the fixture parsed).
    want: Option<(String, String, String)>,
    /// Produced verdict, rule and endpoint (when it could be decided).
    got: Option<(String, String, String)>,
}

#[pymethods]
impl FixtureResult {
    fn __repr__(&self) -> String {
        format!("<FixtureResult {} {}>", self.status, self.path)
    }
    /// True when the fixture matched.
    #[getter]
    fn ok(&self) -> bool {
        self.status == "ok"
    }
}

fn json_module_dumps(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    let json = obj.py().import("json")?;
    json.call_method1("dumps", (obj,))?.extract()
}

/// Accepts an `Action` or a dict in the fixture `action` format.
fn to_action(action: &Bound<'_, PyAny>) -> PyResult<Arc<CoreAction>> {
    if let Ok(a) = action.cast::<Action>() {
        return Ok(a.get().inner.clone());
    }
    if action.cast::<PyDict>().is_ok() {
        let text = json_module_dumps(action)?;
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let a = CoreAction::from_json(&v).map_err(|e| PyValueError::new_err(e.0))?;
        return Ok(Arc::new(a));
    }
    Err(PyTypeError::new_err(
        "decide() takes a clawpatrol.Action or a dict in the fixture `action` format",
    ))
}

#[pymethods]
impl Policy {
    /// Loads a config file, or every `*.hcl` of a directory in name order.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Policy> {
        match py.detach(|| clawpatrol_core::Policy::load(&path)) {
            Ok(p) => Ok(Policy { inner: Arc::new(p) }),
            Err(e) => Err(policy_error(py, &e)),
        }
    }

    /// Compiles config text; `name` is the file name errors show.
    #[staticmethod]
    #[pyo3(signature = (text, name = "policy.hcl"))]
    fn from_string(py: Python<'_>, text: &str, name: &str) -> PyResult<Policy> {
        match clawpatrol_core::Policy::from_source(name, text) {
            Ok(p) => Ok(Policy { inner: Arc::new(p) }),
            Err(e) => Err(policy_error(py, &e)),
        }
    }

    /// Decides an action (an `Action` from the helpers, or a fixture-format dict).
    fn decide(&self, py: Python<'_>, action: &Bound<'_, PyAny>) -> PyResult<Decision> {
        let action = to_action(action)?;
        let policy = self.inner.clone();
        let inner = py.detach(|| policy.decide_action(&action));
        Ok(Decision {
            inner,
            policy,
            action,
        })
    }

    /// Replays a fixture file or directory (like `clawpatrol test`), one result per fixture.
    #[pyo3(signature = (path, recursive = false))]
    fn test(&self, py: Python<'_>, path: PathBuf, recursive: bool) -> PyResult<Vec<FixtureResult>> {
        let policy = self.inner.clone();
        let results = py.detach(move || {
            clawpatrol_test::discover::fixture_files(&path, recursive)
                .map(|files| clawpatrol_test::runner::replay_files(&policy, &files))
                .map_err(|e| e.to_string())
        });
        let results = results.map_err(PyValueError::new_err)?;
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
                        .map(|w| (w.verdict.clone(), w.rule.clone(), w.endpoint.clone())),
                    got: r
                        .outcome
                        .produced()
                        .map(|g| (g.verdict.clone(), g.rule.clone(), g.endpoint.clone())),
                }
            })
            .collect())
    }

    /// Typed names of the endpoints (`https.github`), in declaration order.
    #[getter]
    fn endpoints(&self) -> Vec<String> {
        self.inner.endpoint_names().map(str::to_string).collect()
    }

    /// Warnings of the load, rendered.
    #[getter]
    fn warnings(&self) -> Vec<String> {
        self.inner
            .warnings()
            .iter()
            .map(|d| d.to_string())
            .collect()
    }

    fn __repr__(&self) -> String {
        format!("<clawpatrol.Policy endpoints={:?}>", self.endpoints())
    }
}

#[pymethods]
impl Decision {
    /// `allow`, `deny`, `approve` or `passthrough`.
    #[getter]
    fn verdict(&self) -> &'static str {
        self.inner.verdict.as_str()
    }
    /// The deciding rule, or `None`.
    #[getter]
    fn rule(&self) -> Option<String> {
        self.inner.rule.as_deref().map(str::to_string)
    }
    /// The typed endpoint, or `None` when no endpoint claims the action.
    #[getter]
    fn endpoint(&self) -> Option<String> {
        self.inner.endpoint.as_deref().map(str::to_string)
    }
    /// The reason the agent is told on a deny (`denied by policy` when the rule gives none);
    /// the rule's reason (possibly empty) otherwise.
    #[getter]
    fn reason(&self) -> String {
        match self.inner.verdict {
            Verdict::Deny => self.inner.agent_reason().to_string(),
            _ => self.inner.reason.clone(),
        }
    }
    /// The approver chain of an `approve` verdict (typed references), else empty.
    #[getter]
    fn approvers(&self) -> Vec<String> {
        match &self.inner.verdict {
            Verdict::Approve(chain) => chain.clone(),
            _ => Vec::new(),
        }
    }
    /// True for `allow` and `passthrough`.
    #[getter]
    fn allowed(&self) -> bool {
        self.inner.is_allowed()
    }
    /// Every rule evaluated, in order, with its result.
    fn explain(&self) -> String {
        self.policy.decide_action_traced(&self.action).explain()
    }
    /// The decision as a dict (same keys as `clawpatrol eval` prints).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = self
            .policy
            .decide_action_traced(&self.action)
            .to_json()
            .to_string();
        py.import("json")?
            .call_method1("loads", (PyString::new(py, &text),))
    }
    fn __repr__(&self) -> String {
        format!(
            "<Decision {} rule={:?} endpoint={:?}>",
            self.verdict(),
            self.rule(),
            self.endpoint()
        )
    }
}

/// An action from a fixture-format dict (validated now rather than at `decide()` time).
#[pyfunction]
fn action_from_dict(action: &Bound<'_, PyAny>) -> PyResult<Action> {
    Ok(Action {
        inner: to_action(action)?,
    })
}

/// Reads a body given as `bytes` or `str`.
fn body_bytes(body: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<u8>> {
    match body {
        None => Ok(Vec::new()),
        Some(b) if b.is_none() => Ok(Vec::new()),
        Some(b) => match b.extract::<Vec<u8>>() {
            Ok(v) if !b.is_instance_of::<PyString>() => Ok(v),
            _ => Ok(b.extract::<String>()?.into_bytes()),
        },
    }
}

fn request_action(
    method: &str,
    url: &str,
    headers: Option<std::collections::BTreeMap<String, String>>,
    body: Option<&Bound<'_, PyAny>>,
    credential: &str,
    endpoint: Option<String>,
    kubernetes: bool,
) -> PyResult<Action> {
    let headers: Vec<(String, String)> = headers.unwrap_or_default().into_iter().collect();
    let mut a = clawpatrol_core::facts::from_http::action_from_url(
        method,
        url,
        &headers,
        body_bytes(body)?,
        kubernetes,
    )
    .with_credential(credential);
    a.endpoint = endpoint;
    Ok(Action { inner: Arc::new(a) })
}

/// An HTTP request (`url` absolute, or a path), with the facts the gateway would derive.
#[pyfunction]
#[pyo3(signature = (method, url, *, headers = None, body = None, credential = "", endpoint = None))]
fn http_action(
    method: &str,
    url: &str,
    headers: Option<std::collections::BTreeMap<String, String>>,
    body: Option<&Bound<'_, PyAny>>,
    credential: &str,
    endpoint: Option<String>,
) -> PyResult<Action> {
    request_action(method, url, headers, body, credential, endpoint, false)
}

/// A Kubernetes API request (method + URL), decomposed into `k8s.*` facts like the gateway.
#[pyfunction]
#[pyo3(signature = (method, url, *, headers = None, body = None, credential = "", endpoint = None))]
fn k8s_action(
    method: &str,
    url: &str,
    headers: Option<std::collections::BTreeMap<String, String>>,
    body: Option<&Bound<'_, PyAny>>,
    credential: &str,
    endpoint: Option<String>,
) -> PyResult<Action> {
    request_action(method, url, headers, body, credential, endpoint, true)
}

/// A SQL text (one or more statements) for a `postgres` or `clickhouse_native` endpoint;
/// `decide()` derives every statement with the gateway's parser and decides each.
#[pyfunction]
#[pyo3(signature = (statement, *, database = "", host = "", credential = "", endpoint = None, truncated = false))]
fn sql_action(
    statement: &str,
    database: &str,
    host: &str,
    credential: &str,
    endpoint: Option<String>,
    truncated: bool,
) -> Action {
    let mut a = CoreAction::new(clawpatrol_core::Facts::Sql(
        clawpatrol_core::facts::SqlFacts {
            statement: statement.to_string(),
            database: database.to_string(),
            ..Default::default()
        },
    ))
    .with_host(host)
    .with_credential(credential);
    a.endpoint = endpoint;
    a.truncated = truncated;
    Action { inner: Arc::new(a) }
}

/// An SSH channel action (`verb`: pty, exec, shell, subsystem, forward).
#[pyfunction]
#[pyo3(signature = (verb, *, command = "", subsystem = "", forward_host = "", forward_port = 0, user = "", stdin = "", host = "", credential = "", endpoint = None, truncated = false))]
#[allow(clippy::too_many_arguments)]
fn ssh_action(
    verb: &str,
    command: &str,
    subsystem: &str,
    forward_host: &str,
    forward_port: i64,
    user: &str,
    stdin: &str,
    host: &str,
    credential: &str,
    endpoint: Option<String>,
    truncated: bool,
) -> Action {
    let facts = clawpatrol_core::facts::SshFacts {
        verb: verb.to_string(),
        command: command.to_string(),
        subsystem: subsystem.to_string(),
        forward_host: forward_host.to_string(),
        forward_port,
        user: user.to_string(),
        stdin: stdin.to_string(),
    }
    .normalized();
    let mut a = CoreAction::new(clawpatrol_core::Facts::Ssh(facts))
        .with_host(host)
        .with_credential(credential);
    a.endpoint = endpoint;
    a.truncated = truncated;
    Action { inner: Arc::new(a) }
}

/// The native module; the pure-Python package `clawpatrol` re-exports it.
#[pymodule]
fn _clawpatrol(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("PolicyError", m.py().get_type::<PolicyError>())?;
    m.add_class::<Policy>()?;
    m.add_class::<Action>()?;
    m.add_class::<Decision>()?;
    m.add_class::<FixtureResult>()?;
    m.add_function(wrap_pyfunction!(action_from_dict, m)?)?;
    m.add_function(wrap_pyfunction!(ssh_action, m)?)?;
    m.add_function(wrap_pyfunction!(sql_action, m)?)?;
    m.add_function(wrap_pyfunction!(http_action, m)?)?;
    m.add_function(wrap_pyfunction!(k8s_action, m)?)?;
    Ok(())
}
