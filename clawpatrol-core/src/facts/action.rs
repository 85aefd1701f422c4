//! `Action`: one unit the engine decides, and its fixture (serde) form (reference §7.2).

use serde::{Deserialize, Serialize};

use super::http::{HttpFacts, HttpWire};
use super::k8s::K8sFacts;
use super::schema::{Activation, Facet, FieldId, FieldValue, UnknownCause};
use super::sql::SqlFacts;
use super::ssh::SshFacts;

/// The facts of one action: one variant per family.
#[derive(Debug, Clone, PartialEq)]
pub enum Facts {
    /// An HTTP request.
    Http(HttpFacts),
    /// A Kubernetes API call: its HTTP facts, and the k8s facts when the URL is k8s-shaped.
    K8s {
        /// The HTTP facts of the request (empty for fixtures that give only a `k8s` block).
        http: HttpFacts,
        /// The k8s facts; `None` when the request is not k8s-shaped (reference §3.2).
        k8s: Option<K8sFacts>,
    },
    /// A SQL statement.
    Sql(SqlFacts),
    /// An SSH channel action.
    Ssh(SshFacts),
}

impl Facts {
    /// The family name of the facts (`http`, `k8s`, `sql`, `ssh`).
    pub fn family(&self) -> super::Family {
        match self {
            Facts::Http(_) => super::Family::Http,
            Facts::K8s { .. } => super::Family::K8s,
            Facts::Sql(_) => super::Family::Sql,
            Facts::Ssh(_) => super::Family::Ssh,
        }
    }
}

/// One action to decide: where it goes, who sends it, and its facts.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// The typed endpoint name (`https.github`) when the caller knows it; else resolved by host.
    pub endpoint: Option<String>,
    /// The host the agent addressed (`api.github.com`, `pg.internal:5432`).
    pub host: String,
    /// The dispatched credential's bare name (compared with a rule's `credential` pin).
    pub credential: String,
    /// The agent's address.
    pub peer_ip: String,
    /// The facts.
    pub facts: Facts,
    /// The inspected input was cut at the inspection buffer.
    pub truncated: bool,
    /// The parser refused the input.
    pub unparseable: bool,
}

impl Action {
    /// An action with the given facts and everything else empty.
    pub fn new(facts: Facts) -> Action {
        Action {
            endpoint: None,
            host: String::new(),
            credential: String::new(),
            peer_ip: String::new(),
            facts,
            truncated: false,
            unparseable: false,
        }
    }

    /// Sets the host.
    pub fn with_host(mut self, host: impl Into<String>) -> Action {
        self.host = host.into();
        self
    }

    /// Sets the dispatched credential name.
    pub fn with_credential(mut self, credential: impl Into<String>) -> Action {
        self.credential = credential.into();
        self
    }

    /// Sets the typed endpoint name.
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Action {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Parses the fixture `action` object.
    pub fn from_json(value: &serde_json::Value) -> Result<Action, ActionError> {
        Action::try_from(value.clone())
    }

    /// The cause that makes `field` unknown for this action, if any.
    fn unknown_cause(&self, field: FieldId) -> Option<UnknownCause> {
        let m = field.meta();
        let cause = UnknownCause {
            truncated: self.truncated && m.truncatable,
            unparseable: self.unparseable && m.parser_derived,
        };
        (cause.truncated || cause.unparseable).then_some(cause)
    }
}

impl Activation for Action {
    fn field(&self, field: FieldId) -> FieldValue<'_> {
        if let Some(cause) = self.unknown_cause(field) {
            return FieldValue::Unknown(cause);
        }
        match (field.facet(), &self.facts) {
            (Facet::Http, Facts::Http(h)) | (Facet::Http, Facts::K8s { http: h, .. }) => {
                http_field(h, field)
            }
            (Facet::K8s, Facts::K8s { k8s: Some(k), .. }) => k8s_field(k, field),
            (Facet::Sql, Facts::Sql(s)) => sql_field(s, field),
            (Facet::Ssh, Facts::Ssh(s)) => ssh_field(s, field),
            _ => FieldValue::Absent,
        }
    }
}

fn http_field(h: &HttpFacts, field: FieldId) -> FieldValue<'_> {
    match field {
        FieldId::HttpMethod => FieldValue::Str(h.method()),
        FieldId::HttpPath => FieldValue::Str(h.path()),
        FieldId::HttpQuery => FieldValue::StrListMap(h.query()),
        FieldId::HttpHeaders => FieldValue::StrListMap(h.headers()),
        FieldId::HttpBody => FieldValue::Str(h.body_text()),
        FieldId::HttpBodyJson => FieldValue::Json(h.body_json()),
        _ => FieldValue::Absent,
    }
}

fn k8s_field(k: &K8sFacts, field: FieldId) -> FieldValue<'_> {
    match field {
        FieldId::K8sVerb => FieldValue::Str(&k.verb),
        FieldId::K8sResource => FieldValue::Str(&k.resource),
        FieldId::K8sNamespace => FieldValue::Str(&k.namespace),
        FieldId::K8sName => FieldValue::Str(&k.name),
        FieldId::K8sParams => FieldValue::StrMap(&k.params),
        _ => FieldValue::Absent,
    }
}

fn sql_field(s: &SqlFacts, field: FieldId) -> FieldValue<'_> {
    match field {
        FieldId::SqlVerb => FieldValue::Str(&s.verb),
        FieldId::SqlTables => FieldValue::StrList(&s.tables),
        FieldId::SqlFunctions => FieldValue::StrList(&s.functions),
        FieldId::SqlStatement => FieldValue::Str(&s.statement),
        FieldId::SqlDatabase => FieldValue::Str(&s.database),
        _ => FieldValue::Absent,
    }
}

fn ssh_field(s: &SshFacts, field: FieldId) -> FieldValue<'_> {
    match field {
        FieldId::SshVerb => FieldValue::Str(&s.verb),
        FieldId::SshCommand => FieldValue::Str(&s.command),
        FieldId::SshSubsystem => FieldValue::Str(&s.subsystem),
        FieldId::SshForwardHost => FieldValue::Str(&s.forward_host),
        FieldId::SshForwardPort => FieldValue::Int(s.forward_port),
        FieldId::SshUser => FieldValue::Str(&s.user),
        FieldId::SshStdin => FieldValue::Str(&s.stdin),
        _ => FieldValue::Absent,
    }
}

/// Why a fixture `action` object was refused; messages follow reference §7.2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ActionError(pub String);

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionWire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    host: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    credential: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    peer_ip: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    http: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k8s: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sql: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ssh: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "is_false")]
    truncated: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    unparseable: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `"<block>: json: <serde message>"`, the shape the reference gives for block errors.
fn block_err(block: &str, e: serde_json::Error) -> ActionError {
    ActionError(format!("{block}: json: {e}"))
}

/// Our extension of the `k8s` block: `shaped: false` marks a request whose URL is not
/// k8s-shaped (reference §3.2); the other keys are the reference's.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct K8sWire {
    #[serde(flatten)]
    facts: K8sFacts,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    shaped: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// The keys each block of the fixture `action` object accepts.
const ACTION_KEYS: &[&str] = &[
    "endpoint",
    "host",
    "credential",
    "peer_ip",
    "http",
    "k8s",
    "sql",
    "ssh",
    "truncated",
    "unparseable",
];
const HTTP_KEYS: &[&str] = &["method", "path", "query", "headers", "body", "body_b64"];
const K8S_KEYS: &[&str] = &["verb", "resource", "namespace", "name", "params", "shaped"];
const SQL_KEYS: &[&str] = &["statement", "verb", "tables", "functions", "database"];
const SSH_KEYS: &[&str] = &[
    "verb",
    "command",
    "subsystem",
    "forward_host",
    "forward_port",
    "user",
    "stdin",
];

/// Strict decoding with the reference's wording: `<block>: json: unknown field "x"`.
fn check_keys(block: &str, v: &serde_json::Value, allowed: &[&str]) -> Result<(), ActionError> {
    match v {
        serde_json::Value::Object(m) => match m.keys().find(|k| !allowed.contains(&k.as_str())) {
            Some(k) => Err(ActionError(format!("{block}: json: unknown field \"{k}\""))),
            None => Ok(()),
        },
        serde_json::Value::Null => Ok(()),
        other => Err(ActionError(format!(
            "{block}: json: expected an object, got {}",
            json_kind(other)
        ))),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn requires_key(block: &str, v: &serde_json::Value, key: &str) -> Result<(), ActionError> {
    match v.get(key) {
        Some(serde_json::Value::Null) | None => {
            Err(ActionError(format!("{block}: {key} is required")))
        }
        Some(_) => Ok(()),
    }
}

impl TryFrom<serde_json::Value> for Action {
    type Error = ActionError;
    fn try_from(value: serde_json::Value) -> Result<Action, ActionError> {
        check_keys("action", &value, ACTION_KEYS)?;
        for (block, keys) in [
            ("http", HTTP_KEYS),
            ("k8s", K8S_KEYS),
            ("sql", SQL_KEYS),
            ("ssh", SSH_KEYS),
        ] {
            if let Some(v) = value.get(block) {
                check_keys(block, v, keys)?;
            }
        }
        let w: ActionWire = serde_json::from_value(value).map_err(|e| block_err("action", e))?;
        // Our extension: a `k8s` action may also carry the request's `http` block.
        let blocks = [&w.http, &w.k8s, &w.sql, &w.ssh]
            .iter()
            .filter(|b| b.is_some())
            .count();
        let k8s_with_http = blocks == 2 && w.http.is_some() && w.k8s.is_some();
        if blocks != 1 && !k8s_with_http {
            return Err(ActionError(format!(
                "action: exactly one of http/k8s/sql/ssh is required, found {blocks}"
            )));
        }
        let http = match w.http {
            Some(v) => Some(
                HttpFacts::try_from(
                    serde_json::from_value::<HttpWire>(v).map_err(|e| block_err("http", e))?,
                )
                .map_err(ActionError)?,
            ),
            None => None,
        };
        let facts = if let Some(v) = w.k8s {
            let k: K8sWire = serde_json::from_value(v).map_err(|e| block_err("k8s", e))?;
            Facts::K8s {
                http: http.unwrap_or_default(),
                k8s: k.shaped.then(|| k.facts.normalized()),
            }
        } else if let Some(h) = http {
            Facts::Http(h)
        } else if let Some(v) = w.sql {
            requires_key("sql", &v, "statement")?;
            let s: SqlFacts = serde_json::from_value(v).map_err(|e| block_err("sql", e))?;
            Facts::Sql(s.normalized())
        } else if let Some(v) = w.ssh {
            requires_key("ssh", &v, "verb")?;
            let s: SshFacts = serde_json::from_value(v).map_err(|e| block_err("ssh", e))?;
            Facts::Ssh(s.normalized())
        } else {
            return Err(ActionError(
                "action: exactly one of http/k8s/sql/ssh is required, found 0".to_string(),
            ));
        };
        Ok(Action {
            endpoint: w.endpoint,
            host: w.host,
            credential: w.credential,
            peer_ip: w.peer_ip,
            facts,
            truncated: w.truncated,
            unparseable: w.unparseable,
        })
    }
}

impl From<&Action> for serde_json::Value {
    fn from(a: &Action) -> serde_json::Value {
        // The object `ActionWire` serialises to, built directly: serialising the wire struct
        // would copy each nested facts object a second time.
        use serde_json::Value as V;
        let mut m = serde_json::Map::new();
        if let Some(e) = &a.endpoint {
            m.insert("endpoint".to_string(), V::String(e.clone()));
        }
        for (key, value) in [
            ("host", &a.host),
            ("credential", &a.credential),
            ("peer_ip", &a.peer_ip),
        ] {
            if !value.is_empty() {
                m.insert(key.to_string(), V::String(value.clone()));
            }
        }
        match &a.facts {
            Facts::Http(h) => {
                m.insert("http".to_string(), json_of(&HttpWire::from(h)));
            }
            Facts::K8s { http, k8s } => {
                if http != &HttpFacts::default() {
                    m.insert("http".to_string(), json_of(&HttpWire::from(http)));
                }
                m.insert(
                    "k8s".to_string(),
                    json_of(&K8sWire {
                        facts: k8s.clone().unwrap_or_default(),
                        shaped: k8s.is_some(),
                    }),
                );
            }
            Facts::Sql(s) => {
                m.insert("sql".to_string(), json_of(s));
            }
            Facts::Ssh(s) => {
                m.insert("ssh".to_string(), json_of(s));
            }
        }
        if a.truncated {
            m.insert("truncated".to_string(), V::Bool(true));
        }
        if a.unparseable {
            m.insert("unparseable".to_string(), V::Bool(true));
        }
        V::Object(m)
    }
}

/// Serialises a plain data struct (strings, numbers, lists, maps: it cannot fail) to JSON.
fn json_of<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

impl Serialize for Action {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serde_json::Value::from(self).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Action, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Action::try_from(v).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The JSON form through the wire struct's derived serialiser.
    fn through_wire(a: &Action) -> serde_json::Value {
        let mut w = ActionWire {
            endpoint: a.endpoint.clone(),
            host: a.host.clone(),
            credential: a.credential.clone(),
            peer_ip: a.peer_ip.clone(),
            http: None,
            k8s: None,
            sql: None,
            ssh: None,
            truncated: a.truncated,
            unparseable: a.unparseable,
        };
        match &a.facts {
            Facts::Http(h) => w.http = Some(json_of(&HttpWire::from(h))),
            Facts::K8s { http, k8s } => {
                if http != &HttpFacts::default() {
                    w.http = Some(json_of(&HttpWire::from(http)));
                }
                w.k8s = Some(json_of(&K8sWire {
                    facts: k8s.clone().unwrap_or_default(),
                    shaped: k8s.is_some(),
                }));
            }
            Facts::Sql(s) => w.sql = Some(json_of(s)),
            Facts::Ssh(s) => w.ssh = Some(json_of(s)),
        }
        json_of(&w)
    }

    #[test]
    fn json_form_is_the_wire_structs() {
        for v in [
            json!({"host": "api.github.com", "credential": "pat", "peer_ip": "100.64.0.7",
                "http": {"method": "DELETE", "path": "/repos/x", "query": {"a": ["1"]},
                         "headers": {"authorization": ["***"]}, "body": "{\"k\":1}"}}),
            json!({"endpoint": "postgres.db", "host": "db:5432", "unparseable": true,
                "sql": {"statement": "select", "verb": "select", "tables": ["t"], "database": "app"}}),
            json!({"truncated": true, "sql": {"statement": "x"}}),
            json!({"host": "k", "k8s": {"verb": "get", "resource": "pods", "namespace": "default"}}),
            json!({"host": "k", "http": {"method": "GET", "path": "/version"}, "k8s": {}}),
            json!({"host": "h:22", "ssh": {"verb": "exec", "command": "ls", "user": "root"}}),
        ] {
            let a = Action::from_json(&v).unwrap();
            assert_eq!(serde_json::Value::from(&a), through_wire(&a), "{v}");
        }
    }

    #[test]
    fn http_round_trip() {
        let v = json!({"host": "api.github.com", "credential": "pat", "peer_ip": "100.64.0.7",
            "http": {"method": "DELETE", "path": "/repos/x", "query": {"a": ["1"]},
                     "headers": {"authorization": ["***"]}, "body": "{\"k\":1}"}});
        let a = Action::from_json(&v).unwrap();
        match &a.facts {
            Facts::Http(h) => {
                assert_eq!(h.method(), "delete");
                assert!(h.headers().contains_key("Authorization"));
                assert_eq!(h.body_json(), &json!({"k": 1}));
            }
            other => panic!("{other:?}"),
        }
        let back = serde_json::to_value(&a).unwrap();
        assert_eq!(Action::from_json(&back).unwrap(), a);
    }

    #[test]
    fn errors_match_reference_text() {
        let e = Action::from_json(&json!({"host": "x"})).unwrap_err();
        assert_eq!(
            e.0,
            "action: exactly one of http/k8s/sql/ssh is required, found 0"
        );
        let e = Action::from_json(&json!({"sql": {"statement": "x"}, "ssh": {"verb": "exec"}}))
            .unwrap_err();
        assert_eq!(
            e.0,
            "action: exactly one of http/k8s/sql/ssh is required, found 2"
        );
        let e = Action::from_json(&json!({"sql": {"verb": "select"}})).unwrap_err();
        assert_eq!(e.0, "sql: statement is required");
        let e = Action::from_json(&json!({"ssh": {"command": "ls"}})).unwrap_err();
        assert_eq!(e.0, "ssh: verb is required");
        let e = Action::from_json(&json!({"http": {"body": "a", "body_b64": "YQ=="}})).unwrap_err();
        assert_eq!(e.0, "http: body and body_b64 are mutually exclusive");
        let e = Action::from_json(&json!({"http": {"nope": 1}})).unwrap_err();
        assert_eq!(e.0, "http: json: unknown field \"nope\"");
        let e = Action::from_json(&json!({"sql": {"statement": "x"}, "extra": 1})).unwrap_err();
        assert_eq!(e.0, "action: json: unknown field \"extra\"");
    }

    #[test]
    fn activation_marks_unknowns() {
        let mut a = Action::new(Facts::Sql(SqlFacts {
            statement: "select 1".into(),
            verb: "select".into(),
            database: "db".into(),
            ..Default::default()
        }));
        a.unparseable = true;
        assert!(matches!(a.field(FieldId::SqlVerb), FieldValue::Unknown(c) if c.unparseable));
        assert!(matches!(
            a.field(FieldId::SqlStatement),
            FieldValue::Str("select 1")
        ));
        a.truncated = true;
        assert!(matches!(a.field(FieldId::SqlStatement), FieldValue::Unknown(c) if c.truncated));
        assert!(matches!(
            a.field(FieldId::SqlDatabase),
            FieldValue::Str("db")
        ));
        assert!(matches!(a.field(FieldId::HttpMethod), FieldValue::Absent));
    }

    #[test]
    fn k8s_not_shaped_round_trips() {
        let a = Action::from_json(
            &json!({"k8s": {"shaped": false}, "http": {"method": "GET", "path": "/foo"}}),
        )
        .unwrap();
        assert!(matches!(&a.facts, Facts::K8s { k8s: None, .. }));
        assert!(matches!(a.field(FieldId::K8sVerb), FieldValue::Absent));
        assert!(matches!(
            a.field(FieldId::HttpPath),
            FieldValue::Str("/foo")
        ));
        let back = serde_json::to_value(&a).unwrap();
        assert_eq!(Action::from_json(&back).unwrap(), a);
    }
}
