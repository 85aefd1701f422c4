//! The human approver's `message` template (reference §5.4).
//!
//! `{{var}}` placeholders (whitespace inside the braces trimmed) are replaced once, left to
//! right; unknown names stay verbatim and replaced values are never expanded again. Variables:
//! `profile` (the profile NAME — the original passed the agent IP here, which we fix),
//! `agent_ip`, `host`, `endpoint`, `reason`, `body`, `method`, `path`; every facet field as
//! `<facet>.<field>` and, unless the name is already taken, bare `<field>`; the JSON body's
//! object fields as `body_json.<a>.<b>.<c>` (at most three levels; objects render empty).
//! Lists render joined with `, `.

use std::collections::BTreeMap;

use serde_json::Value;

use super::ApprovalInput;
use crate::facts::{Facts, HttpFacts, K8sFacts, SqlFacts, SshFacts};

/// Deepest `body_json` key level exposed.
const BODY_JSON_DEPTH: usize = 3;

/// Expands `template` with the variables of `input`.
pub fn render_message(template: &str, input: &ApprovalInput<'_>) -> String {
    let vars = template_vars(input);
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        let whole = &rest[open..open + 2 + close + 2];
        match vars.get(after[..close].trim()) {
            Some(v) => out.push_str(v),
            None => out.push_str(whole),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

/// Every template variable of `input` and its value.
pub fn template_vars(input: &ApprovalInput<'_>) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    let mut set = |k: &str, v: &str| {
        vars.insert(k.to_string(), v.to_string());
    };
    set("profile", input.profile.unwrap_or(""));
    set("agent_ip", input.agent_ip);
    set("host", input.host);
    set("endpoint", input.endpoint);
    set("reason", input.rule_reason);
    set("body", input.body_sample);
    set("method", input.method);
    set("path", input.path);

    let mut fields: Vec<(&str, &str, String)> = Vec::new();
    let mut body_json = None;
    match &input.action.facts {
        Facts::Http(h) => {
            http_fields(h, &mut fields);
            body_json = Some(h.body_json());
        }
        Facts::K8s { http, k8s } => {
            http_fields(http, &mut fields);
            if let Some(k) = k8s {
                k8s_fields(k, &mut fields);
            }
            body_json = Some(http.body_json());
        }
        Facts::Sql(s) => sql_fields(s, &mut fields),
        Facts::Ssh(s) => ssh_fields(s, &mut fields),
    }
    for (facet, field, value) in &fields {
        vars.insert(format!("{facet}.{field}"), value.clone());
    }
    for (_, field, value) in fields {
        vars.entry(field.to_string()).or_insert(value);
    }
    if let Some(Value::Object(m)) = body_json {
        flatten("body_json", m, 1, &mut vars);
    }
    vars
}

fn http_fields(h: &HttpFacts, out: &mut Vec<(&str, &str, String)>) {
    out.push(("http", "method", h.method().to_string()));
    out.push(("http", "path", h.path().to_string()));
}

fn k8s_fields(k: &K8sFacts, out: &mut Vec<(&str, &str, String)>) {
    out.push(("k8s", "verb", k.verb.clone()));
    out.push(("k8s", "resource", k.resource.clone()));
    out.push(("k8s", "namespace", k.namespace.clone()));
    out.push(("k8s", "name", k.name.clone()));
    let params: Vec<String> = k.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    out.push(("k8s", "params", params.join(", ")));
}

fn sql_fields(s: &SqlFacts, out: &mut Vec<(&str, &str, String)>) {
    out.push(("sql", "verb", s.verb.clone()));
    out.push(("sql", "tables", s.tables.join(", ")));
    out.push(("sql", "functions", s.functions.join(", ")));
    out.push(("sql", "statement", s.statement.clone()));
    out.push(("sql", "database", s.database.clone()));
}

fn ssh_fields(s: &SshFacts, out: &mut Vec<(&str, &str, String)>) {
    out.push(("ssh", "verb", s.verb.clone()));
    out.push(("ssh", "command", s.command.clone()));
    out.push(("ssh", "subsystem", s.subsystem.clone()));
    out.push(("ssh", "forward_host", s.forward_host.clone()));
    let port = if s.forward_port == 0 {
        String::new()
    } else {
        s.forward_port.to_string()
    };
    out.push(("ssh", "forward_port", port));
    out.push(("ssh", "user", s.user.clone()));
    out.push(("ssh", "stdin", s.stdin.clone()));
}

/// `body_json.<a>…` for every field of `m` at `depth` (1-based), recursing into objects.
fn flatten(
    prefix: &str,
    m: &serde_json::Map<String, Value>,
    depth: usize,
    vars: &mut BTreeMap<String, String>,
) {
    for (k, v) in m {
        let key = format!("{prefix}.{k}");
        if let Value::Object(inner) = v {
            if depth < BODY_JSON_DEPTH {
                flatten(&key, inner, depth + 1, vars);
            }
        }
        vars.insert(key, scalar_text(v));
    }
}

/// A JSON value as template text: strings raw, lists joined with `, `, objects and null empty.
fn scalar_text(v: &Value) -> String {
    match v {
        Value::Null | Value::Object(_) => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(_) | Value::Number(_) => v.to_string(),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Action;

    fn input<'a>(action: &'a Action) -> ApprovalInput<'a> {
        ApprovalInput {
            approver: "human_approver.ops",
            endpoint: "https.api",
            rule: Some("r"),
            rule_reason: "writes need a human",
            action,
            profile: Some("dev-laptop"),
            agent_ip: "100.64.0.7",
            method: "POST",
            host: "api.example.com",
            path: "/v1/tickets?x=1",
            user_agent: None,
            body_sample: "{...}",
        }
    }

    fn http(body: &str) -> Action {
        Action::new(Facts::Http(HttpFacts::new(
            "POST",
            "/v1/tickets",
            Default::default(),
            Default::default(),
            body.as_bytes().to_vec(),
        )))
    }

    #[test]
    fn top_level_and_http_vars() {
        let a = http("{}");
        let out = render_message(
            "{{ profile }} ({{agent_ip}}) → {{method}} {{host}}{{path}} via {{endpoint}}: \
             {{reason}} [{{http.method}} {{http.path}}] {{body}}",
            &input(&a),
        );
        assert_eq!(
            out,
            "dev-laptop (100.64.0.7) → POST api.example.com/v1/tickets?x=1 via https.api: \
             writes need a human [post /v1/tickets] {...}"
        );
    }

    #[test]
    fn unknown_unclosed_and_no_recursion() {
        let a = http("{}");
        let mut i = input(&a);
        i.rule_reason = "{{profile}}";
        assert_eq!(
            render_message("{{nope}} {{reason}} {{ host", &i),
            "{{nope}} {{profile}} {{ host"
        );
        assert_eq!(render_message("{{{host}}}", &i), "{{{host}}}");
        assert_eq!(render_message("{{}}", &i), "{{}}");
        assert_eq!(render_message("no vars", &i), "no vars");
    }

    #[test]
    fn body_json_flattening() {
        let a = http(
            r#"{"title":"T","n":3,"ok":true,"tags":["a","b",1],
               "a":{"b":{"c":{"d":1},"e":"deep"}},"nul":null}"#,
        );
        let i = input(&a);
        let vars = template_vars(&i);
        assert_eq!(vars["body_json.title"], "T");
        assert_eq!(vars["body_json.n"], "3");
        assert_eq!(vars["body_json.ok"], "true");
        assert_eq!(vars["body_json.tags"], "a, b, 1");
        assert_eq!(vars["body_json.a"], "");
        assert_eq!(vars["body_json.a.b"], "");
        assert_eq!(vars["body_json.a.b.e"], "deep");
        assert_eq!(vars["body_json.a.b.c"], "");
        assert!(!vars.contains_key("body_json.a.b.c.d"));
        assert_eq!(vars["body_json.nul"], "");
        assert_eq!(
            render_message("{{body_json.title}}/{{ body_json.a.b.e }}", &i),
            "T/deep"
        );
    }

    #[test]
    fn sql_fields_prefixed_and_bare() {
        let a = Action::new(Facts::Sql(SqlFacts {
            statement: "select * from a, b".into(),
            verb: "select".into(),
            tables: vec!["a".into(), "b".into()],
            functions: vec!["now".into()],
            database: "app".into(),
        }));
        let mut i = input(&a);
        i.method = "SELECT";
        let out = render_message(
            "{{verb}} {{sql.tables}} | {{tables}} | {{functions}} | {{database}} | \
             {{statement}} | {{method}}",
            &i,
        );
        assert_eq!(
            out,
            "select a, b | a, b | now | app | select * from a, b | SELECT"
        );
    }

    #[test]
    fn k8s_and_ssh_fields() {
        let a = Action::new(Facts::K8s {
            http: HttpFacts::default(),
            k8s: Some(K8sFacts {
                verb: "delete".into(),
                resource: "pods".into(),
                namespace: "prod".into(),
                name: "web".into(),
                params: [("dryRun".to_string(), "All".to_string())].into(),
            }),
        });
        let out = render_message(
            "{{verb}} {{resource}}/{{name}} in {{namespace}} {{params}} {{k8s.verb}}",
            &input(&a),
        );
        assert_eq!(out, "delete pods/web in prod dryRun=All delete");

        let a = Action::new(Facts::Ssh(SshFacts {
            verb: "forward".into(),
            forward_host: "db".into(),
            forward_port: 5432,
            user: "deploy".into(),
            ..Default::default()
        }));
        let out = render_message(
            "{{user}}: {{verb}} {{forward_host}}:{{forward_port}} {{ssh.command}}.",
            &input(&a),
        );
        assert_eq!(out, "deploy: forward db:5432 .");
    }

    #[test]
    fn profile_is_the_name_not_the_ip() {
        let a = http("");
        let mut i = input(&a);
        assert_eq!(render_message("{{profile}}", &i), "dev-laptop");
        i.profile = None;
        assert_eq!(render_message("[{{profile}}]", &i), "[]");
    }
}
