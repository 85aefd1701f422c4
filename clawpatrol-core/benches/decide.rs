//! `decide()` on the platform policy (57 rules over 5 endpoints, `fixtures/examples/platform`)
//! for an http, k8s, sql (facts given) and ssh action, and in the same run the same conditions
//! evaluated by the `cel` crate's interpreter. Prints a summary table of medians at the end.
//!
//! Run: `cargo bench -p clawpatrol-core --bench decide`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cel::Value;
use clawpatrol_core::facts::{Action, Facts};
use clawpatrol_core::{Policy, StepResult};
use criterion::Criterion;
use serde_json::{json, Value as Json};

fn policy() -> Policy {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/examples/platform/policy.hcl"
    );
    match Policy::load(path) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn action(v: Json) -> Action {
    match Action::from_json(&v) {
        Ok(a) => a,
        Err(e) => panic!("{e}"),
    }
}

/// One action per family; each walks several rules before its match.
fn actions() -> Vec<(&'static str, Action)> {
    vec![
        (
            "http",
            action(json!({"host": "api.github.com", "credential": "github-pat",
                "http": {"method": "GET", "path": "/repos/acme/app/pulls",
                         "query": {"state": ["open"]},
                         "headers": {"Authorization": ["Bearer ghp_placeholder_agent"],
                                     "Accept": ["application/vnd.github+json"]}}})),
        ),
        (
            "k8s",
            action(json!({"host": "k8s-prod.example.com:6443",
                "k8s": {"verb": "get", "resource": "pods", "namespace": "dev", "name": "web-1"}})),
        ),
        (
            "sql",
            action(json!({"host": "pg-main.internal:5432",
                "sql": {"statement": "SELECT id, total FROM orders WHERE customer_id = 42 ORDER BY created_at DESC LIMIT 10",
                        "verb": "select", "tables": ["orders"], "functions": [], "database": "prod"}})),
        ),
        (
            "ssh",
            action(json!({"host": "build.example.com:22",
                "ssh": {"verb": "exec", "command": "make test", "user": "ci"}})),
        ),
    ]
}

/// The facet variables of an action as the `cel` crate's interpreter sees them.
fn oracle_vars(a: &Action) -> Vec<(&'static str, Json)> {
    let http = |h: &clawpatrol_core::facts::HttpFacts| {
        json!({"method": h.method(), "path": h.path(), "query": h.query(),
               "headers": h.headers(), "body": h.body_text(), "body_json": h.body_json()})
    };
    match &a.facts {
        Facts::Http(h) => vec![("http", http(h))],
        Facts::K8s { http: h, k8s } => {
            let mut k = k8s
                .as_ref()
                .map(|k| serde_json::to_value(k).unwrap_or(Json::Null))
                .unwrap_or(Json::Null);
            for f in ["verb", "resource", "namespace", "name"] {
                if k.get(f).is_none() {
                    k[f] = json!("");
                }
            }
            if k.get("params").is_none() {
                k["params"] = json!({});
            }
            vec![("http", http(h)), ("k8s", k)]
        }
        Facts::Sql(s) => vec![(
            "sql",
            json!({"verb": s.verb, "tables": s.tables, "functions": s.functions,
                   "statement": s.statement, "database": s.database}),
        )],
        Facts::Ssh(s) => vec![(
            "ssh",
            json!({"verb": s.verb, "command": s.command, "subsystem": s.subsystem,
                   "forward_host": s.forward_host, "forward_port": s.forward_port,
                   "user": s.user, "stdin": s.stdin}),
        )],
    }
}

/// A `sets` extension function over two lists.
type SetFn = fn(&[Value], &[Value]) -> bool;

/// An interpreter context with the action's variables and the `sets` extension.
fn oracle_context(a: &Action) -> cel::Context<'static, 'static> {
    let mut ctx = cel::Context::default();
    for (name, v) in oracle_vars(a) {
        match cel::to_value(&v) {
            Ok(value) => ctx.add_variable_from_value(name, value),
            Err(e) => panic!("{e}"),
        }
    }
    let sets: [(&str, SetFn); 3] = [
        ("sets.contains", |a, b| b.iter().all(|x| a.contains(x))),
        ("sets.intersects", |a, b| a.iter().any(|x| b.contains(x))),
        ("sets.equivalent", |a, b| {
            a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
        }),
    ];
    for (name, f) in sets {
        let r = ctx.add_function(name, move |a: Arc<Vec<Value>>, b: Arc<Vec<Value>>| {
            f(&a, &b)
        });
        if let Err(e) = r {
            panic!("{e:?}");
        }
    }
    ctx
}

/// The conditions `decide()` evaluated for this action, compiled by the `cel` crate.
fn walked_programs(policy: &Policy, a: &Action) -> Vec<cel::Program> {
    let d = policy.decide_traced(a);
    let trace = d.trace.unwrap_or_default();
    trace
        .steps
        .iter()
        .filter(|s| matches!(s.result, StepResult::Matched | StepResult::NoMatch))
        .filter_map(|s| policy.condition_of(&s.rule))
        .map(|c| match cel::Program::compile(c.source()) {
            Ok(p) => p,
            Err(e) => panic!("{}: {e}", c.source()),
        })
        .collect()
}

/// Median of `samples` batch means, in nanoseconds per call.
fn median_ns(mut f: impl FnMut(), batch: u32, samples: usize) -> f64 {
    for _ in 0..batch {
        f();
    }
    let mut means: Vec<f64> = (0..samples)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(batch)
        })
        .collect();
    means.sort_by(f64::total_cmp);
    means[means.len() / 2]
}

fn main() {
    let policy = policy();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut rows = Vec::new();
    for (name, a) in actions() {
        let d = policy.decide_traced(&a);
        let programs = walked_programs(&policy, &a);
        let ctx = oracle_context(&a);
        // Every walked condition must run on the interpreter too (same work on both sides).
        for p in &programs {
            if let Err(e) = p.execute(&ctx) {
                panic!("cel interpreter failed on {name}: {e}");
            }
        }
        let mut g = c.benchmark_group(format!("decide/{name}"));
        g.bench_function("clawpatrol", |b| b.iter(|| policy.decide(black_box(&a))));
        g.bench_function("cel-interpreter", |b| {
            b.iter(|| {
                for p in &programs {
                    let _ = black_box(p.execute(black_box(&ctx)));
                }
            })
        });
        g.finish();
        let ours = median_ns(|| drop(black_box(policy.decide(black_box(&a)))), 20_000, 31);
        let theirs = median_ns(
            || {
                for p in &programs {
                    let _ = black_box(p.execute(black_box(&ctx)));
                }
            },
            2_000,
            31,
        );
        rows.push((
            name,
            d.rule.unwrap_or_default().to_string(),
            programs.len(),
            ours,
            theirs,
        ));
    }
    c.final_summary();
    println!();
    println!("decide() on fixtures/examples/platform/policy.hcl (57 rules, 5 endpoints)");
    println!(
        "{:<5} {:<22} {:>10} {:>16} {:>22} {:>9}",
        "kind",
        "matched rule",
        "conditions",
        "clawpatrol (med)",
        "cel interpreter (med)",
        "speed-up"
    );
    for (name, rule, n, ours, theirs) in rows {
        println!(
            "{name:<5} {rule:<22} {n:>10} {:>13.0} ns {:>19.0} ns {:>8.1}x",
            ours,
            theirs,
            theirs / ours
        );
    }
}
