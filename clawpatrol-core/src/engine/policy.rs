//! `Policy`: a loaded config compiled for decisions (rules sorted per endpoint, CEL compiled).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::cel::{self, CompiledCondition};
use crate::config::model::{Config, Outcome, Rule};
use crate::config::{self, ConfigError, Diagnostic, Severity};
use crate::dispatch::credential::DispatchTable;
use crate::facts::Family;

/// A rule ready for evaluation.
#[derive(Debug)]
pub(crate) struct CompiledRule {
    /// The rule name.
    pub name: Arc<str>,
    /// Its priority.
    pub priority: i64,
    /// `disabled = true`.
    pub disabled: bool,
    /// The compiled condition; `None` = catch-all (absent or empty condition).
    pub condition: Option<CompiledCondition>,
    /// The `credential` pin.
    pub credential: Option<String>,
    /// The outcome.
    pub outcome: Outcome,
    /// The operator's reason (may be empty).
    pub reason: String,
}

/// An endpoint ready for decisions.
#[derive(Debug)]
pub(crate) struct CompiledEndpoint {
    /// `<type>.<name>`.
    pub typed_name: Arc<str>,
    /// Its family.
    pub family: Family,
    /// Indexes into `Policy::rules`, priority descending, declaration order within a priority.
    pub rules: Vec<usize>,
    /// At least one rule on this endpoint is not disabled (for the SQL backstop).
    pub has_active_rules: bool,
}

/// A compiled, immutable policy. `Send + Sync`; share it as `Arc<Policy>` and swap the
/// `Arc` to reload.
#[derive(Debug)]
pub struct Policy {
    pub(crate) config: Config,
    pub(crate) rules: Vec<CompiledRule>,
    pub(crate) endpoints: Vec<CompiledEndpoint>,
    pub(crate) by_typed_name: HashMap<String, usize>,
    pub(crate) dispatch: DispatchTable,
    warnings: Vec<Diagnostic>,
}

/// Approver attributes the loader accepts for compatibility but the runtime does not act on.
const INERT_APPROVER_ATTRS: &[&str] = &[
    "require_approvers",
    "classifier",
    "sync_wait_timeout",
    "async_grant",
];

impl Policy {
    /// Loads a config file, or every `*.hcl` of a directory in name order, and compiles it.
    pub fn load(path: impl AsRef<Path>) -> Result<Policy, ConfigError> {
        let loaded = config::load_path(path.as_ref())?;
        Policy::compile(loaded.config, loaded.diagnostics)
    }

    /// Compiles config text held in memory; `name` is the file name diagnostics show.
    pub fn from_source(name: &str, text: &str) -> Result<Policy, ConfigError> {
        let loaded = config::load_source(name, text)?;
        Policy::compile(loaded.config, loaded.diagnostics)
    }

    /// Compiles a decoded config; `diagnostics` are the loader's (errors make this fail,
    /// after the CEL conditions have been checked too, so all errors are reported at once).
    pub fn compile(
        config: Config,
        mut diagnostics: Vec<Diagnostic>,
    ) -> Result<Policy, ConfigError> {
        let rules: Vec<CompiledRule> = config
            .rules
            .iter()
            .map(|r| compile_rule(&config, r, &mut diagnostics))
            .collect();

        let mut endpoints: Vec<CompiledEndpoint> = config
            .endpoints
            .iter()
            .map(|e| CompiledEndpoint {
                typed_name: Arc::from(e.typed_name()),
                family: e.family,
                rules: Vec::new(),
                has_active_rules: false,
            })
            .collect();
        for (ri, r) in config.rules.iter().enumerate() {
            for &ei in &r.endpoints {
                if let Some(ep) = endpoints.get_mut(ei) {
                    ep.rules.push(ri);
                    ep.has_active_rules |= !r.disabled;
                }
            }
        }
        for ep in &mut endpoints {
            // Stable sort: declaration order survives within a priority (DESIGN §4.1).
            ep.rules
                .sort_by_key(|&ri| std::cmp::Reverse(rules[ri].priority));
        }
        let by_typed_name = endpoints
            .iter()
            .enumerate()
            .map(|(i, e)| (e.typed_name.to_string(), i))
            .collect();

        let has_errors = diagnostics.iter().any(|d| d.severity == Severity::Error);
        if has_errors {
            sort_diagnostics(&mut diagnostics);
            return Err(ConfigError { diagnostics });
        }
        if config.schema_version.is_none() {
            diagnostics.push(
                Diagnostic::warning("no schema_version declared")
                    .with_detail("the config is read as schema version 0 (legacy)")
                    .with_help("add `schema_version = 1` to pin the grammar"),
            );
        }
        for a in &config.approvers {
            for attr in INERT_APPROVER_ATTRS {
                if a.attrs.contains_key(*attr) {
                    diagnostics.push(
                        Diagnostic::warning(format!(
                            "`{attr}` of approver `{}.{}` has no effect",
                            a.kind, a.name
                        ))
                        .at(config.location(a.span))
                        .with_detail("accepted so that Claw Patrol configs load unchanged; this gateway does not implement it yet")
                        .with_help("remove it, or expect the approver to behave as if it were absent"),
                    );
                }
            }
        }
        let dispatch = DispatchTable::build(&config);
        Ok(Policy {
            config,
            rules,
            endpoints,
            by_typed_name,
            dispatch,
            warnings: diagnostics,
        })
    }

    /// Warnings of the load (errors would have failed it).
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// The decoded config the policy was compiled from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Typed names (`https.github`) of every endpoint, in declaration order.
    pub fn endpoint_names(&self) -> impl Iterator<Item = &str> {
        self.endpoints.iter().map(|e| &*e.typed_name)
    }

    /// Names of the rules attached to an endpoint, in evaluation order.
    pub fn rules_for(&self, typed_endpoint: &str) -> Option<Vec<&str>> {
        let ei = *self.by_typed_name.get(typed_endpoint)?;
        Some(
            self.endpoints[ei]
                .rules
                .iter()
                .map(|&ri| &*self.rules[ri].name)
                .collect(),
        )
    }

    /// The compiled condition of a rule, if it has one.
    pub fn condition_of(&self, rule: &str) -> Option<&CompiledCondition> {
        self.rules
            .iter()
            .find(|r| &*r.name == rule)
            .and_then(|r| r.condition.as_ref())
    }
}

fn compile_rule(config: &Config, r: &Rule, diags: &mut Vec<Diagnostic>) -> CompiledRule {
    let condition = match &r.condition {
        Some(c) if !c.text.trim().is_empty() => match cel::compile(&c.text, r.family) {
            Ok(compiled) => Some(compiled),
            Err(e) => {
                let loc = match (c.content_start, &e.span) {
                    (Some(start), Some(range)) => {
                        config.location(crate::config::model::SourceSpan {
                            file: c.span.file,
                            start: start + range.start,
                            end: start + range.end.max(range.start + 1),
                        })
                    }
                    _ => config.location(c.span),
                };
                let mut d =
                    Diagnostic::error(format!("invalid CEL condition on rule `{}`", r.name))
                        .with_block(format!("rule \"{}\"", r.name))
                        .with_detail(e.message.clone())
                        .at(loc);
                if let Some(help) = compile_help(&e.kind, r.family) {
                    d = d.with_help(help);
                }
                diags.push(d);
                None
            }
        },
        _ => None,
    };
    CompiledRule {
        name: Arc::from(r.name.as_str()),
        priority: r.priority,
        disabled: r.disabled,
        condition,
        credential: r.credential.clone(),
        outcome: r.outcome.clone(),
        reason: r.reason.clone().unwrap_or_default(),
    }
}

fn compile_help(kind: &cel::CompileErrorKind, family: Family) -> Option<String> {
    let vars: Vec<&str> = family.facets().iter().map(|f| f.as_str()).collect();
    match kind {
        cel::CompileErrorKind::UnknownVariable | cel::CompileErrorKind::UnknownField => {
            Some(format!(
            "rules on {family} endpoints can read {}; split the rule per family if it needs others",
            vars.join(" and ")
        ))
        }
        cel::CompileErrorKind::NotBoolean => {
            Some("a condition must be a boolean expression, e.g. `http.method == 'get'`".into())
        }
        cel::CompileErrorKind::InvalidRegex => {
            Some("patterns use RE2 syntax; escape backslashes twice inside HCL strings".into())
        }
        _ => None,
    }
}

/// Orders diagnostics by file, line, column; unlocated ones first.
fn sort_diagnostics(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        let key = |d: &Diagnostic| {
            d.location
                .as_ref()
                .map(|l| (l.file.clone(), l.line, l.column))
        };
        key(a).cmp(&key(b))
    });
}
