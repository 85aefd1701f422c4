//! Replaying one fixture against a policy (reference §7.3 with our decisions).

use clawpatrol_core::dispatch::ResolveError;
use clawpatrol_core::engine::frame_decision;
use clawpatrol_core::facts::Facts;
use clawpatrol_core::{Action, Decision, Policy, Trace};

use crate::fixture::{Expect, Fixture};
use crate::sql;

/// What the policy produced for a fixture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Produced {
    /// `allow`, `deny` or `approve`.
    pub verdict: String,
    /// The deciding rule, or empty.
    pub rule: String,
    /// The typed endpoint.
    pub endpoint: String,
    /// The rule's reason or the synthesized reason.
    pub reason: String,
    /// Every rule evaluated, per decided statement (one entry for non-SQL actions).
    pub traces: Vec<Trace>,
}

/// The outcome of one fixture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Verdict and rule (and endpoint, when pinned) matched.
    Pass(Produced),
    /// The policy decided differently.
    Mismatch(Produced),
    /// The fixture could not be loaded or replayed.
    Error(String),
}

impl Outcome {
    /// True unless the fixture passed.
    pub fn failed(&self) -> bool {
        !matches!(self, Outcome::Pass(_))
    }

    /// The produced decision, when there is one.
    pub fn produced(&self) -> Option<&Produced> {
        match self {
            Outcome::Pass(p) | Outcome::Mismatch(p) => Some(p),
            Outcome::Error(_) => None,
        }
    }
}

/// The typed endpoint a fixture is replayed on, with the reference's error texts.
pub fn resolve_endpoint(policy: &Policy, f: &Fixture) -> Result<String, String> {
    if !f.expect.endpoint.is_empty() {
        let e = &f.expect.endpoint;
        return policy
            .endpoint_by_typed_name(e)
            .map(str::to_string)
            .map_err(|err| match err {
                ResolveError::NotTyped(_) => format!(
                    "match.endpoint \"{e}\" must use typed form `endpoint-type.endpoint-name` (e.g. `https.github`)"
                ),
                ResolveError::Unknown(_) => format!("endpoint \"{e}\" not in compiled policy"),
                ResolveError::WrongType {
                    name,
                    actual,
                    wanted,
                    ..
                } => format!(
                    "match.endpoint \"{e}\": endpoint \"{name}\" is type \"{actual}\", not \"{wanted}\""
                ),
                ResolveError::Ambiguous { .. } => err.to_string(),
            });
    }
    let host = &f.action.host;
    if host.is_empty() {
        return Err(
            "cannot resolve endpoint: no `action.host` and no `match.endpoint`".to_string(),
        );
    }
    match policy.endpoint_for_host(host) {
        Ok(Some(e)) => Ok(e.to_string()),
        Ok(None) => Err(format!("no endpoint claims host \"{host}\"")),
        Err(ResolveError::Ambiguous { endpoints, .. }) => Err(format!(
            "host \"{host}\" is claimed by multiple endpoints [{}]; set `match.endpoint` to disambiguate",
            endpoints.join(" ")
        )),
        Err(e) => Err(e.to_string()),
    }
}

fn block_name(facts: &Facts) -> &'static str {
    match facts {
        Facts::Http(_) => "http",
        Facts::K8s { .. } => "k8s",
        Facts::Sql(_) => "sql",
        Facts::Ssh(_) => "ssh",
    }
}

/// The family of a typed endpoint name, from the policy.
fn endpoint_family(policy: &Policy, typed: &str) -> Option<clawpatrol_core::Family> {
    policy
        .config()
        .endpoints
        .iter()
        .find(|e| e.typed_name() == typed)
        .map(|e| e.family)
}

/// Decides a fixture's action(s) on its endpoint. SQL statements are derived by the parser
/// the gateway uses and each one (with shadow statements) is decided with the SQL backstop;
/// the first denied statement decides the frame, else the first one needing approval.
pub fn decide(policy: &Policy, f: &Fixture) -> Result<Produced, String> {
    if f.expect.verdict == "passthrough" {
        return Err(
            "passthrough fixtures aren't yet replayable — pin to a named endpoint or remove"
                .to_string(),
        );
    }
    let endpoint = resolve_endpoint(policy, f)?;
    let family = endpoint_family(policy, &endpoint)
        .ok_or_else(|| format!("endpoint \"{endpoint}\" not in compiled policy"))?;
    if family != f.action.facts.family() {
        let name = endpoint
            .split_once('.')
            .map_or(endpoint.as_str(), |(_, n)| n);
        return Err(format!(
            "endpoint \"{name}\" is family \"{family}\" but fixture has {} block",
            block_name(&f.action.facts)
        ));
    }
    let mut action: Action = f.action.clone();
    action.endpoint = Some(endpoint.clone());
    let decisions: Vec<Decision> = match &action.facts {
        Facts::Sql(_) => {
            let kind = endpoint.split_once('.').map_or("", |(k, _)| k);
            sql::statement_actions(policy, kind, &action)?
                .iter()
                .map(|a| policy.decide_fail_closed_traced(a))
                .collect()
        }
        _ => vec![policy.decide_traced(&action)],
    };
    let chosen = frame_decision(&decisions)
        .cloned()
        .ok_or_else(|| "sql: the statement has nothing to evaluate".to_string())?;
    Ok(Produced {
        verdict: chosen.verdict.as_str().to_string(),
        rule: chosen.rule.as_deref().unwrap_or("").to_string(),
        endpoint,
        reason: chosen.reason.clone(),
        traces: decisions.into_iter().filter_map(|d| d.trace).collect(),
    })
}

/// Compares a produced decision with the fixture's expectation (§7.3 item 7).
pub fn matches(expect: &Expect, got: &Produced) -> bool {
    expect.verdict == got.verdict
        && expect.rule == got.rule
        && (expect.endpoint.is_empty() || expect.endpoint == got.endpoint)
}

/// Loads and replays one fixture; the expectation is returned when the fixture parsed.
pub fn replay_text(policy: &Policy, text: &str) -> (Option<Expect>, Outcome) {
    let f = match Fixture::parse(text) {
        Ok(f) => f,
        Err(e) => return (None, Outcome::Error(e.0)),
    };
    let outcome = match decide(policy, &f) {
        Ok(p) if matches(&f.expect, &p) => Outcome::Pass(p),
        Ok(p) => Outcome::Mismatch(p),
        Err(e) => Outcome::Error(e),
    };
    (Some(f.expect), outcome)
}
