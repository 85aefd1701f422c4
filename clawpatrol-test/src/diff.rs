//! `clawpatrol diff`: replay the same fixtures against two policies and list what changes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use clawpatrol_core::Policy;

use crate::fixture::Fixture;
use crate::replay::decide;

/// One action whose decision differs between the policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The fixture: its file path, or another label (an audit row).
    pub path: String,
    /// `verdict (rule)` under the old policy, or the error replaying it.
    pub old: String,
    /// `verdict (rule)` under the new policy, or the error replaying it.
    pub new: String,
}

/// The result of a diff: changes grouped by endpoint, and how many actions were compared.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiffReport {
    /// Endpoint (typed name, or `(unresolved)`) → changes.
    pub by_endpoint: BTreeMap<String, Vec<Change>>,
    /// Actions compared.
    pub compared: usize,
}

fn describe(r: &Result<crate::replay::Produced, String>) -> String {
    match r {
        Ok(p) if p.rule.is_empty() => format!("{} (no rule)", p.verdict),
        Ok(p) => format!("{} ({})", p.verdict, p.rule),
        Err(e) => format!("error: {e}"),
    }
}

/// Replays every fixture file's action against both policies (expectations are ignored).
pub fn diff(old: &Policy, new: &Policy, files: &[PathBuf]) -> DiffReport {
    diff_fixtures(
        old,
        new,
        files.iter().map(|path| {
            let fixture = std::fs::read_to_string(path)
                .map_err(|e| format!("read fixture: {e}"))
                .and_then(|t| Fixture::parse(&t).map_err(|e| e.0));
            (path.display().to_string(), fixture)
        }),
    )
}

/// Replays labelled fixtures (or the errors loading them) against both policies; the label
/// names the fixture in the report (a file path, an audit row, …).
pub fn diff_fixtures(
    old: &Policy,
    new: &Policy,
    fixtures: impl IntoIterator<Item = (String, Result<Fixture, String>)>,
) -> DiffReport {
    let mut report = DiffReport::default();
    for (display, fixture) in fixtures {
        let mut fixture = match fixture {
            Ok(f) => f,
            Err(e) => {
                report
                    .by_endpoint
                    .entry("(unreadable fixtures)".into())
                    .or_default()
                    .push(Change {
                        path: display,
                        old: format!("error: {e}"),
                        new: format!("error: {e}"),
                    });
                continue;
            }
        };
        // Only the action matters: replay against each policy as if nothing was expected.
        fixture.expect.verdict = "allow".into();
        report.compared += 1;
        let a = decide(old, &fixture);
        let b = decide(new, &fixture);
        let same = match (&a, &b) {
            (Ok(x), Ok(y)) => x.verdict == y.verdict && x.rule == y.rule,
            (Err(x), Err(y)) => x == y,
            _ => false,
        };
        if same {
            continue;
        }
        let endpoint = a
            .as_ref()
            .or(b.as_ref())
            .map(|p| p.endpoint.clone())
            .unwrap_or_else(|_| "(unresolved)".to_string());
        report
            .by_endpoint
            .entry(endpoint)
            .or_default()
            .push(Change {
                path: display,
                old: describe(&a),
                new: describe(&b),
            });
    }
    report
}

impl DiffReport {
    /// The number of changed actions.
    pub fn changed(&self) -> usize {
        self.by_endpoint.values().map(Vec::len).sum()
    }

    /// The text report.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (endpoint, changes) in &self.by_endpoint {
            let _ = writeln!(out, "{endpoint}");
            for c in changes {
                let _ = writeln!(out, "  {}: {} -> {}", c.path, c.old, c.new);
            }
        }
        let _ = writeln!(
            out,
            "{} action(s) compared, {} changed",
            self.compared,
            self.changed()
        );
        out
    }
}
