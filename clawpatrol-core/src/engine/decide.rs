//! The rule walk (reference §2.5–§2.9): first match wins, unevaluable fails closed.

use crate::cel::Tri;
use crate::config::model::Outcome;
use crate::facts::{Action, Facts, UnknownCause};

use super::decision::{Decision, StepResult, Trace, TraceStep, Verdict};
use super::policy::{CompiledEndpoint, Policy};

/// The coarse cause text of the reference for unknown inputs.
fn cause_text(c: UnknownCause) -> &'static str {
    match (c.truncated, c.unparseable) {
        (true, true) => "truncated at the inspection buffer and unparseable",
        (true, false) => "truncated at the inspection buffer",
        _ => "unparseable",
    }
}

/// `rule "<name>" could not be evaluated against this request (<cause>); failing closed`.
pub fn unevaluable_reason(rule: &str, cause: &str) -> String {
    format!("rule \"{rule}\" could not be evaluated against this request ({cause}); failing closed")
}

/// `request bytes were <cause> and no rule explicitly allowed the request; failing closed`.
pub fn backstop_reason(cause: UnknownCause) -> String {
    format!(
        "request bytes were {} and no rule explicitly allowed the request; failing closed",
        cause_text(cause)
    )
}

impl Policy {
    /// Decides an action (plain walk: the HTTPS, SSH and `clawpatrol test` entry point).
    pub fn decide(&self, action: &Action) -> Decision {
        self.decide_inner(action, false, false)
    }

    /// Decides an action and records every rule evaluated (for `--explain`).
    pub fn decide_traced(&self, action: &Action) -> Decision {
        self.decide_inner(action, false, true)
    }

    /// Decides with the SQL backstop of reference §2.7: when no rule matched a truncated or
    /// unparseable action on an endpoint that has active rules, deny. The Postgres and
    /// ClickHouse statement paths use this entry point.
    pub fn decide_fail_closed(&self, action: &Action) -> Decision {
        self.decide_inner(action, true, false)
    }

    /// [`Policy::decide_fail_closed`] with a trace.
    pub fn decide_fail_closed_traced(&self, action: &Action) -> Decision {
        self.decide_inner(action, true, true)
    }

    fn decide_inner(&self, action: &Action, backstop: bool, traced: bool) -> Decision {
        let ei = match &action.endpoint {
            Some(typed) => match self.by_typed_name.get(typed.as_str()) {
                Some(&i) => i,
                None => {
                    return synthesized_deny(
                        None,
                        format!("unknown endpoint `{typed}`; failing closed"),
                        traced,
                    )
                }
            },
            None => match self.resolve_host(&action.host) {
                Ok(Some(i)) => i,
                Ok(None) => {
                    return Decision {
                        verdict: Verdict::Passthrough,
                        rule: None,
                        endpoint: None,
                        reason: String::new(),
                        synthesized: false,
                        log_detail: None,
                        trace: traced.then(Trace::default),
                    }
                }
                Err(e) => return synthesized_deny(None, format!("{e}; failing closed"), traced),
            },
        };
        let ep = &self.endpoints[ei];
        if action.facts.family() != ep.family {
            return synthesized_deny(
                Some(ep.typed_name.clone()),
                format!(
                    "endpoint `{}` is family {} but the action carries {} facts; failing closed",
                    ep.typed_name,
                    ep.family,
                    action.facts.family()
                ),
                traced,
            );
        }
        self.walk(ep, action, backstop, traced)
    }

    fn walk(
        &self,
        ep: &CompiledEndpoint,
        action: &Action,
        backstop: bool,
        traced: bool,
    ) -> Decision {
        let mut trace = traced.then(Trace::default);
        let k8s_unshaped = matches!(action.facts, Facts::K8s { k8s: None, .. });
        for &ri in &ep.rules {
            let rule = &self.rules[ri];
            let mut step = |result: StepResult| {
                if let Some(t) = trace.as_mut() {
                    t.steps.push(TraceStep {
                        rule: rule.name.clone(),
                        priority: rule.priority,
                        result,
                    });
                }
            };
            if rule.disabled {
                step(StepResult::Disabled);
                continue;
            }
            if let Some(pin) = &rule.credential {
                if *pin != action.credential {
                    step(StepResult::CredentialMismatch {
                        want: pin.clone(),
                        got: action.credential.clone(),
                    });
                    continue;
                }
            }
            let Some(cond) = &rule.condition else {
                step(StepResult::CatchAll);
                return self.matched(ep, ri, trace);
            };
            let result = if k8s_unshaped {
                Tri::Error("the request is not k8s-shaped: no k8s facts".to_string())
            } else {
                cond.eval(action)
            };
            let (cause, detail) = match result {
                Tri::True => {
                    step(StepResult::Matched);
                    return self.matched(ep, ri, trace);
                }
                Tri::False => {
                    step(StepResult::NoMatch);
                    continue;
                }
                Tri::Unknown(c) => {
                    let paths: Vec<String> = cond.fields().iter().map(|f| f.path()).collect();
                    (
                        cause_text(c).to_string(),
                        format!("depends on unavailable fields among [{}]", paths.join(", ")),
                    )
                }
                Tri::Error(e) => ("evaluation error".to_string(), e),
            };
            tracing::warn!(rule = %rule.name, endpoint = %ep.typed_name, "rule \"{}\" unevaluable: {detail}", rule.name);
            step(StepResult::Unevaluable {
                cause: cause.clone(),
                detail: detail.clone(),
            });
            return Decision {
                verdict: Verdict::Deny,
                rule: Some(rule.name.clone()),
                endpoint: Some(ep.typed_name.clone()),
                reason: unevaluable_reason(&rule.name, &cause),
                synthesized: true,
                log_detail: Some(detail),
                trace,
            };
        }
        if backstop && (action.truncated || action.unparseable) && ep.has_active_rules {
            let cause = UnknownCause {
                truncated: action.truncated,
                unparseable: action.unparseable,
            };
            return Decision {
                verdict: Verdict::Deny,
                rule: None,
                endpoint: Some(ep.typed_name.clone()),
                reason: backstop_reason(cause),
                synthesized: true,
                log_detail: None,
                trace,
            };
        }
        Decision {
            verdict: Verdict::Allow,
            rule: None,
            endpoint: Some(ep.typed_name.clone()),
            reason: String::new(),
            synthesized: false,
            log_detail: None,
            trace,
        }
    }

    fn matched(&self, ep: &CompiledEndpoint, ri: usize, trace: Option<Trace>) -> Decision {
        let rule = &self.rules[ri];
        let verdict = match &rule.outcome {
            Outcome::Allow => Verdict::Allow,
            Outcome::Deny => Verdict::Deny,
            Outcome::Approve(chain) => Verdict::Approve(chain.clone()),
        };
        Decision {
            verdict,
            rule: Some(rule.name.clone()),
            endpoint: Some(ep.typed_name.clone()),
            reason: rule.reason.clone(),
            synthesized: false,
            log_detail: None,
            trace,
        }
    }
}

fn synthesized_deny(
    endpoint: Option<std::sync::Arc<str>>,
    reason: String,
    traced: bool,
) -> Decision {
    Decision {
        verdict: Verdict::Deny,
        rule: None,
        endpoint,
        reason,
        synthesized: true,
        log_detail: None,
        trace: traced.then(Trace::default),
    }
}

/// The decision for a frame of several statements (a multi-statement SQL text with its shadow
/// statements), each decided on its own: any denied statement denies the frame (nothing is
/// forwarded, no approver is paged); otherwise the first statement that needs approval
/// decides; otherwise the first statement's decision. `None` for an empty frame.
pub fn frame_decision(decisions: &[Decision]) -> Option<&Decision> {
    decisions
        .iter()
        .find(|d| matches!(d.verdict, Verdict::Deny))
        .or_else(|| {
            decisions
                .iter()
                .find(|d| !matches!(d.verdict, Verdict::Allow))
        })
        .or(decisions.first())
}

impl Policy {
    /// The actions the gateway decides for a SQL text: `action` carries the text in
    /// `sql.statement` (and `sql.database`); the endpoint's parser (Postgres or ClickHouse)
    /// derives every statement and shadow statement, in evaluation order, each carrying the
    /// action's endpoint, host, credential and flags. An endpoint type without a parser
    /// (`clickhouse_https`) gets the text as unparseable, so it fails closed. `None` when no
    /// endpoint claims the action or it is not a SQL action.
    pub fn sql_text_actions(&self, action: &Action) -> Option<Vec<Action>> {
        self.sql_text_actions_with(action, None)
    }

    /// [`Policy::sql_text_actions`] reusing the Postgres analyses remembered in `cache` (the
    /// actions are the same as without it).
    pub fn sql_text_actions_cached(
        &self,
        action: &Action,
        cache: &mut clawpatrol_protocols::sql::PostgresCache,
    ) -> Option<Vec<Action>> {
        self.sql_text_actions_with(action, Some(cache))
    }

    fn sql_text_actions_with(
        &self,
        action: &Action,
        cache: Option<&mut clawpatrol_protocols::sql::PostgresCache>,
    ) -> Option<Vec<Action>> {
        use crate::facts::from_sql::{sql_actions, sql_actions_cached, SqlDialect};
        let Facts::Sql(sql) = &action.facts else {
            return None;
        };
        let endpoint = match &action.endpoint {
            Some(e) => e.clone(),
            None => {
                let i = self.resolve_host(&action.host).ok().flatten()?;
                self.endpoints[i].typed_name.to_string()
            }
        };
        let dialect = match endpoint.split_once('.').map(|(k, _)| k) {
            Some("postgres") => Some(SqlDialect::Postgres),
            Some("clickhouse_native") => Some(SqlDialect::ClickHouse),
            _ => None,
        };
        let mut actions = match dialect {
            Some(d) => match cache {
                Some(c) => {
                    sql_actions_cached(d, &sql.statement, &sql.database, action.truncated, c)
                }
                None => sql_actions(d, &sql.statement, &sql.database, action.truncated),
            },
            None => {
                let mut a = action.clone();
                a.facts = Facts::Sql(crate::facts::SqlFacts {
                    statement: sql.statement.clone(),
                    database: sql.database.clone(),
                    ..Default::default()
                });
                a.unparseable = true;
                vec![a]
            }
        };
        for a in &mut actions {
            a.endpoint = Some(endpoint.clone());
            a.host.clone_from(&action.host);
            a.credential.clone_from(&action.credential);
            a.peer_ip.clone_from(&action.peer_ip);
            a.unparseable |= action.unparseable;
        }
        Some(actions)
    }

    /// Decides a SQL text the way the gateway decides a Query/Parse frame: every statement of
    /// [`Policy::sql_text_actions`] with the SQL backstop, then [`frame_decision`]. Empty text
    /// (nothing to evaluate) is allowed, as the gateway forwards it. `traced` records the rules
    /// evaluated for the deciding statement.
    pub fn decide_sql_text(&self, action: &Action, traced: bool) -> Decision {
        let Some(actions) = self.sql_text_actions(action) else {
            return self.decide_inner(action, false, traced);
        };
        let decisions: Vec<Decision> = actions
            .iter()
            .map(|a| self.decide_inner(a, true, traced))
            .collect();
        match frame_decision(&decisions) {
            Some(d) => d.clone(),
            None => Decision {
                verdict: Verdict::Allow,
                rule: None,
                endpoint: action
                    .endpoint
                    .as_deref()
                    .map(std::sync::Arc::from)
                    .or_else(|| {
                        self.resolve_host(&action.host)
                            .ok()
                            .flatten()
                            .map(|i| self.endpoints[i].typed_name.clone())
                    }),
                reason: String::new(),
                synthesized: false,
                log_detail: None,
                trace: traced.then(Trace::default),
            },
        }
    }
}

impl Policy {
    /// The entry point for in-process callers (the bindings): a SQL action that carries only
    /// its text (no verb, tables or functions) is parsed like the gateway parses a frame
    /// ([`Policy::decide_sql_text`]); any other action is decided as given.
    pub fn decide_action(&self, action: &Action) -> Decision {
        self.decide_action_inner(action, false)
    }

    /// [`Policy::decide_action`] with a trace of the rules evaluated.
    pub fn decide_action_traced(&self, action: &Action) -> Decision {
        self.decide_action_inner(action, true)
    }

    fn decide_action_inner(&self, action: &Action, traced: bool) -> Decision {
        match &action.facts {
            Facts::Sql(s) if s.verb.is_empty() && s.tables.is_empty() && s.functions.is_empty() => {
                self.decide_sql_text(action, traced)
            }
            _ => self.decide_inner(action, false, traced),
        }
    }
}
