//! `--coverage`: which rules no fixture reached, which endpoints no fixture touched.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use clawpatrol_core::Policy;

use crate::report::Replayed;

/// Per endpoint (typed name): the fixtures that reached it and the rules never decisive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// endpoint → (fixture count, rules that decided no fixture, in evaluation order).
    pub endpoints: BTreeMap<String, (usize, Vec<String>)>,
}

impl Coverage {
    /// Computes coverage from replay results. A rule counts as exercised when it decided at
    /// least one fixture (including a fail-closed deny attributed to it).
    pub fn compute(policy: &Policy, results: &[Replayed]) -> Coverage {
        let mut hits: BTreeMap<String, usize> = BTreeMap::new();
        let mut decided: BTreeSet<(String, String)> = BTreeSet::new();
        for r in results {
            if let Some(p) = r.outcome.produced() {
                *hits.entry(p.endpoint.clone()).or_default() += 1;
                if !p.rule.is_empty() {
                    decided.insert((p.endpoint.clone(), p.rule.clone()));
                }
            }
        }
        let endpoints = policy
            .endpoint_names()
            .map(|e| {
                let rules = policy
                    .rules_for(e)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|r| !decided.contains(&(e.to_string(), r.to_string())))
                    .map(str::to_string)
                    .collect();
                (e.to_string(), (hits.get(e).copied().unwrap_or(0), rules))
            })
            .collect();
        Coverage { endpoints }
    }

    /// The text section printed after the report.
    pub fn text(&self) -> String {
        let mut out = String::from("coverage:\n");
        for (e, (n, unexercised)) in &self.endpoints {
            if *n == 0 {
                let _ = writeln!(out, "  {e}: no fixture");
                continue;
            }
            if unexercised.is_empty() {
                let _ = writeln!(out, "  {e}: {n} fixture(s), every rule exercised");
            } else {
                let _ = writeln!(
                    out,
                    "  {e}: {n} fixture(s), rules no fixture exercised: {}",
                    unexercised.join(", ")
                );
            }
        }
        out
    }

    /// The JSON object printed with `--format json`.
    pub fn json(&self) -> serde_json::Value {
        let m: serde_json::Map<String, serde_json::Value> = self
            .endpoints
            .iter()
            .map(|(e, (n, rules))| {
                (
                    e.clone(),
                    serde_json::json!({"fixtures": n, "unexercised_rules": rules}),
                )
            })
            .collect();
        serde_json::json!({ "coverage": m })
    }
}
