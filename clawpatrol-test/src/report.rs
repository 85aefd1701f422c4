//! Rendering results: the exact text lines of reference §7.1, and JSON lines.

use std::fmt::Write as _;

pub use clawpatrol_core::quote::go_quote;

use crate::fixture::Expect;
use crate::replay::{Outcome, Produced};

/// One replayed fixture.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// The fixture path as given or found.
    pub path: String,
    /// The expectation, when the fixture parsed.
    pub expect: Option<Expect>,
    /// What happened.
    pub outcome: Outcome,
}

fn diff_line(label: &str, verdict: &str, rule: &str, endpoint: &str) -> String {
    format!(
        "  {label} verdict={:<12} rule={:<30} endpoint={}",
        go_quote(verdict),
        go_quote(rule),
        go_quote(endpoint)
    )
}

/// The text report: one line (or block) per fixture, then the summary line.
pub fn text(results: &[Replayed], explain: bool) -> String {
    let mut out = String::new();
    let mut mismatches = 0;
    for r in results {
        match (&r.outcome, &r.expect) {
            (Outcome::Pass(_), _) => {
                let _ = writeln!(out, "ok   {}", r.path);
            }
            (Outcome::Mismatch(got), Some(want)) => {
                mismatches += 1;
                let _ = writeln!(out, "FAIL {}", r.path);
                let _ = writeln!(
                    out,
                    "{}",
                    diff_line("want", &want.verdict, &want.rule, &want.endpoint)
                );
                let _ = writeln!(
                    out,
                    "{}",
                    diff_line("got ", &got.verdict, &got.rule, &got.endpoint)
                );
                if !got.reason.is_empty() && got.reason != want.reason {
                    let _ = writeln!(out, "  reason: {}", got.reason);
                }
                if explain {
                    explain_into(&mut out, got);
                }
            }
            (Outcome::Mismatch(_), None) => mismatches += 1,
            (Outcome::Error(e), _) => {
                mismatches += 1;
                let _ = writeln!(out, "FAIL {}: {e}", r.path);
            }
        }
    }
    let _ = writeln!(
        out,
        "{} action(s) checked, {mismatches} mismatch(es)",
        results.len()
    );
    let trimmed = out.trim_end_matches('\n').len();
    out.truncate(trimmed);
    out.push('\n');
    out
}

fn explain_into(out: &mut String, got: &Produced) {
    for (i, t) in got.traces.iter().enumerate() {
        if got.traces.len() > 1 {
            let _ = writeln!(out, "  statement {}:", i + 1);
        }
        if t.steps.is_empty() {
            let _ = writeln!(out, "    (no rule on this endpoint)");
        }
        for s in &t.steps {
            let _ = writeln!(
                out,
                "    rule {} (priority {}): {}",
                go_quote(&s.rule),
                s.priority,
                s.result
            );
        }
    }
}

/// JSON lines: one object per fixture, then `{"summary": …}`.
pub fn json_lines(results: &[Replayed], explain: bool) -> String {
    let mut out = String::new();
    let mut mismatches = 0;
    for r in results {
        let (status, error) = match &r.outcome {
            Outcome::Pass(_) => ("ok", None),
            Outcome::Mismatch(_) => ("fail", None),
            Outcome::Error(e) => ("error", Some(e.as_str())),
        };
        if r.outcome.failed() {
            mismatches += 1;
        }
        let mut v = serde_json::json!({"path": r.path, "status": status});
        if let Some(e) = error {
            v["error"] = serde_json::json!(e);
        }
        if let Some(w) = &r.expect {
            v["want"] =
                serde_json::json!({"verdict": w.verdict, "rule": w.rule, "endpoint": w.endpoint});
        }
        if let Some(g) = r.outcome.produced() {
            v["got"] = serde_json::json!({"verdict": g.verdict, "rule": g.rule,
                "endpoint": g.endpoint, "reason": g.reason});
            if explain && r.outcome.failed() {
                v["trace"] = g
                    .traces
                    .iter()
                    .map(|t| {
                        t.steps
                            .iter()
                            .map(|s| {
                                serde_json::json!({"rule": &*s.rule, "priority": s.priority,
                                    "result": s.result.to_string()})
                            })
                            .collect::<serde_json::Value>()
                    })
                    .collect();
            }
        }
        let _ = writeln!(out, "{v}");
    }
    let summary =
        serde_json::json!({"summary": {"checked": results.len(), "mismatches": mismatches}});
    let _ = writeln!(out, "{summary}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_lines_match_the_reference_layout() {
        assert_eq!(
            diff_line("want", "allow", "github-reads", "https.github"),
            "  want verdict=\"allow\"      rule=\"github-reads\"                 endpoint=\"https.github\""
        );
        assert_eq!(
            diff_line("got ", "deny", "github-reads", "https.github"),
            "  got  verdict=\"deny\"       rule=\"github-reads\"                 endpoint=\"https.github\""
        );
    }
}
