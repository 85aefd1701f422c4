//! `clawpatrol lint`: static analysis of a compiled policy (findings the original lacks).

use std::collections::BTreeSet;
use std::fmt;

use clawpatrol_core::cel::Tri;
use clawpatrol_core::config::model::Outcome;
use clawpatrol_core::facts::FieldId;
use clawpatrol_core::Policy;
use clawpatrol_protocols::clickhouse::CLICKHOUSE_VERBS;
use clawpatrol_protocols::sql::POSTGRES_VERBS;
use regex_syntax::hir::{Class, Hir, HirKind};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Likely a mistake that changes behaviour: `lint` exits 1.
    Error,
    /// Worth a look.
    Warning,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Error or warning.
    pub level: Level,
    /// A stable identifier, e.g. `shadowed-rule`.
    pub code: &'static str,
    /// What it is about, e.g. `rule "gh-writes"`.
    pub subject: String,
    /// `file:line` of the subject's block.
    pub location: String,
    /// Why this is a finding.
    pub message: String,
    /// How to fix it.
    pub help: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        writeln!(
            f,
            "{level}[{}]: {}: {}",
            self.code, self.subject, self.message
        )?;
        writeln!(f, "  --> {}", self.location)?;
        write!(f, "  = help: {}", self.help)
    }
}

fn normalize(cond: &str) -> String {
    cond.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Runs every check; findings are ordered by location.
pub fn lint(policy: &Policy) -> Vec<Finding> {
    let config = policy.config();
    let loc = |span| {
        config
            .location(span)
            .map(|l| format!("{}:{}", l.file, l.line))
            .unwrap_or_default()
    };
    let rule_loc = |name: &str| {
        config
            .rules
            .iter()
            .find(|r| r.name == name)
            .map(|r| loc(r.span))
            .unwrap_or_default()
    };
    let mut out = Vec::new();

    // Rules per endpoint, in evaluation order.
    for ep in policy.endpoint_names() {
        let order = policy.rules_for(ep).unwrap_or_default();
        let rules: Vec<_> = order
            .iter()
            .filter_map(|n| config.rules.iter().find(|r| r.name == *n))
            .collect();
        let mut reported = BTreeSet::new();
        for (i, later) in rules.iter().enumerate() {
            if later.disabled {
                continue;
            }
            let later_cond = later
                .condition
                .as_ref()
                .map(|c| normalize(&c.text))
                .filter(|c| !c.is_empty());
            for earlier in &rules[..i] {
                if earlier.disabled {
                    continue;
                }
                let pin_covers = match (&earlier.credential, &later.credential) {
                    (None, _) => true,
                    (Some(a), Some(b)) => a == b,
                    (Some(_), None) => false,
                };
                if !pin_covers {
                    continue;
                }
                let earlier_cond = earlier
                    .condition
                    .as_ref()
                    .map(|c| normalize(&c.text))
                    .filter(|c| !c.is_empty());
                let why = match (&earlier_cond, &later_cond) {
                    (None, _) => Some(format!(
                        "rule `{}` before it on endpoint `{ep}` has no condition and matches everything first",
                        earlier.name
                    )),
                    (Some(a), Some(b)) if a == b => Some(format!(
                        "rule `{}` before it on endpoint `{ep}` has the same condition and matches first",
                        earlier.name
                    )),
                    _ => None,
                };
                if let Some(why) = why {
                    if reported.insert(later.name.clone()) {
                        out.push(Finding {
                            level: Level::Error,
                            code: "shadowed-rule",
                            subject: format!("rule \"{}\"", later.name),
                            location: loc(later.span),
                            message: format!("can never fire: {why}"),
                            help: format!(
                                "raise the priority of `{}` above `{}`, narrow `{}`, or delete the unreachable rule",
                                later.name, earlier.name, earlier.name
                            ),
                        });
                    }
                    break;
                }
            }
        }
        let has_rules = rules.iter().any(|r| !r.disabled);
        let has_catch_all = rules.iter().any(|r| {
            !r.disabled
                && r.credential.is_none()
                && r.condition
                    .as_ref()
                    .is_none_or(|c| c.text.trim().is_empty())
        });
        if has_rules && !has_catch_all {
            let e = config.endpoints.iter().find(|e| e.typed_name() == ep);
            out.push(Finding {
                level: Level::Warning,
                code: "no-catch-all",
                subject: format!("endpoint \"{ep}\""),
                location: e.map(|e| loc(e.span)).unwrap_or_default(),
                message: "has rules but no catch-all: requests no rule matches are allowed".into(),
                help: format!(
                    "if unmatched requests should be denied, add a rule with `endpoint = {ep}`, `priority = -100` and `verdict = \"deny\"` (e.g. `{}-default`)",
                    ep.split_once('.').map_or(ep, |(_, n)| n)
                ),
            });
        }
    }

    for r in &config.rules {
        let Some(cond) = policy.condition_of(&r.name) else {
            continue;
        };
        if r.disabled {
            continue;
        }
        if let Some(value) = cond.constant_value() {
            let (what, help) = match value {
                Tri::True => (
                    "is always true, so the rule matches everything".to_string(),
                    "remove the condition to write a catch-all explicitly, or fix the expression",
                ),
                Tri::False => (
                    "is always false, so the rule never fires".to_string(),
                    "fix the expression or delete the rule",
                ),
                Tri::Unknown(_) | Tri::Error(_) => (
                    "never reads a fact and always fails to evaluate, so it always denies"
                        .to_string(),
                    "fix the expression",
                ),
            };
            out.push(Finding {
                level: if value == Tri::True {
                    Level::Warning
                } else {
                    Level::Error
                },
                code: "constant-condition",
                subject: format!("rule \"{}\"", r.name),
                location: rule_loc(&r.name),
                message: format!("condition `{}` {what}", normalize(cond.source())),
                help: help.to_string(),
            });
        }
        let kinds: BTreeSet<&str> = r
            .endpoints
            .iter()
            .filter_map(|&i| config.endpoints.get(i).map(|e| e.kind.as_str()))
            .collect();
        for verb in cond.compared_literals(FieldId::SqlVerb) {
            let never: Vec<&str> = kinds
                .iter()
                .copied()
                .filter(|k| match *k {
                    "postgres" => !POSTGRES_VERBS.contains(&verb.as_str()),
                    "clickhouse_native" => !CLICKHOUSE_VERBS.contains(&verb.as_str()),
                    _ => false,
                })
                .collect();
            if never.is_empty() {
                continue;
            }
            let hint = match verb.as_str() {
                "revoke" => " (REVOKE's verb is `grant`)",
                "values" | "table" | "with" => " (that statement's verb is `select`)",
                "reset" => " (RESET's verb is `set`, RESET ROLE's is `set role`)",
                _ => "",
            };
            out.push(Finding {
                level: Level::Error,
                code: "unknown-verb",
                subject: format!("rule \"{}\"", r.name),
                location: rule_loc(&r.name),
                message: format!(
                    "compares `sql.verb` with `{verb}`, which the {} parser never produces{hint}",
                    never.join(" and ")
                ),
                help: "use a verb of the parser's verb table (see the SQL section of the reference), or match `sql.statement` with a regex".to_string(),
            });
        }
        for lr in cond.literal_regexes() {
            let Some(field) = lr.field.filter(|f| f.meta().lowercased) else {
                continue;
            };
            if !pattern_can_match_lowercase(&lr.pattern) {
                out.push(Finding {
                    level: Level::Error,
                    code: "regex-never-matches",
                    subject: format!("rule \"{}\"", r.name),
                    location: rule_loc(&r.name),
                    message: format!(
                        "`{}.matches('{}')` can never match: `{}` is lower-cased, and the pattern needs upper-case letters",
                        field.path(),
                        lr.pattern,
                        field.path()
                    ),
                    help: format!(
                        "write the pattern in lower case, or make it case-insensitive: `(?i){}`",
                        lr.pattern
                    ),
                });
            }
        }
    }

    // Credentials no profile binds; endpoints no profile reaches; unused approvers.
    let bound: BTreeSet<&str> = config
        .profiles
        .iter()
        .flat_map(|p| p.credentials.iter().map(|c| c.credential.as_str()))
        .collect();
    let used_as_notifier: BTreeSet<String> = config
        .approvers
        .iter()
        .filter_map(|a| match a.attrs.get("credential") {
            Some(clawpatrol_core::config::model::AttrValue::Str(s)) => Some(s.clone()),
            _ => None,
        })
        .collect();
    for c in &config.credentials {
        if !bound.contains(c.name.as_str()) && !c.endpoints.is_empty() {
            out.push(Finding {
                level: Level::Warning,
                code: "unbound-credential",
                subject: format!("credential \"{}\"", c.name),
                location: loc(c.span),
                message: "no profile lists this credential, so no agent can use it".into(),
                help: format!(
                    "add `{}.{}` to a profile's `credentials`, or delete it",
                    c.kind, c.name
                ),
            });
        } else if c.endpoints.is_empty() && !used_as_notifier.contains(&c.name) {
            out.push(Finding {
                level: Level::Warning,
                code: "unbound-credential",
                subject: format!("credential \"{}\"", c.name),
                location: loc(c.span),
                message: "binds no endpoint and no approver uses it".into(),
                help: "set `endpoint`/`endpoints`, reference it from an approver, or delete it"
                    .into(),
            });
        }
    }
    if !config.profiles.is_empty() {
        for e in &config.endpoints {
            let typed = e.typed_name();
            let reached = config
                .profiles
                .iter()
                .any(|p| !policy.dispatch_entries(&p.name, &typed).is_empty());
            if !reached {
                out.push(Finding {
                    level: Level::Warning,
                    code: "unreached-endpoint",
                    subject: format!("endpoint \"{typed}\""),
                    location: loc(e.span),
                    message: "no profile binds a credential of this endpoint, so its traffic is passed through unchecked".into(),
                    help: "bind a credential to it (a `passthrough` credential if it needs no secret) and list that credential in a profile".into(),
                });
            }
        }
    }
    let used_approvers: BTreeSet<String> = config
        .rules
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Approve(chain) => Some(chain.clone()),
            _ => None,
        })
        .flatten()
        .chain(
            config
                .approvers
                .iter()
                .filter_map(|a| match a.attrs.get("classifier") {
                    Some(clawpatrol_core::config::model::AttrValue::Str(s)) => {
                        Some(format!("llm_approver.{s}"))
                    }
                    _ => None,
                }),
        )
        .collect();
    for a in &config.approvers {
        let typed = format!("{}.{}", a.kind, a.name);
        if !used_approvers.contains(&typed) {
            out.push(Finding {
                level: Level::Warning,
                code: "unused-approver",
                subject: format!("approver \"{typed}\""),
                location: loc(a.span),
                message: "no rule's `approve` chain uses this approver".into(),
                help: format!("add `{typed}` to a rule's `approve = [...]`, or delete it"),
            });
        }
    }
    out.sort_by_key(|f| location_key(&f.location));
    out
}

fn location_key(l: &str) -> (String, usize) {
    match l.rsplit_once(':') {
        Some((f, n)) => (f.to_string(), n.parse().unwrap_or(0)),
        None => (l.to_string(), 0),
    }
}

/// Can the pattern match some string without upper-case ASCII letters?
pub fn pattern_can_match_lowercase(pattern: &str) -> bool {
    match regex_syntax::Parser::new().parse(pattern) {
        Ok(hir) => hir_can_match_lowercase(&hir),
        // The engine compiled it already; if this parser disagrees, do not claim a finding.
        Err(_) => true,
    }
}

fn hir_can_match_lowercase(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => true,
        HirKind::Literal(lit) => !lit.0.iter().any(u8::is_ascii_uppercase),
        HirKind::Class(Class::Unicode(c)) => c.iter().any(|r| {
            // Some char of the range is not an ASCII upper-case letter.
            let (s, e) = (r.start(), r.end());
            !(s.is_ascii_uppercase() && e.is_ascii_uppercase())
        }),
        HirKind::Class(Class::Bytes(c)) => c.iter().any(|r| {
            let (s, e) = (r.start(), r.end());
            !(s.is_ascii_uppercase() && e.is_ascii_uppercase())
        }),
        HirKind::Repetition(r) => r.min == 0 || hir_can_match_lowercase(&r.sub),
        HirKind::Capture(c) => hir_can_match_lowercase(&c.sub),
        HirKind::Concat(subs) => subs.iter().all(hir_can_match_lowercase),
        HirKind::Alternation(subs) => subs.iter().any(hir_can_match_lowercase),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercase_reachability_of_patterns() {
        assert!(!pattern_can_match_lowercase("^GET$"));
        assert!(!pattern_can_match_lowercase("DELETE|PUT"));
        assert!(!pattern_can_match_lowercase("[A-Z]+"));
        assert!(pattern_can_match_lowercase("(?i)^GET$"));
        assert!(pattern_can_match_lowercase("^get$"));
        assert!(pattern_can_match_lowercase("GET|post"));
        assert!(pattern_can_match_lowercase("X*y"));
        assert!(pattern_can_match_lowercase("[A-Za-z]"));
    }
}
