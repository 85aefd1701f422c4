//! SQL facts for a ~200-character Postgres statement (DESIGN §8 budget: median ≤ 40 µs):
//! `analyze_postgres` (split, then libpg_query's summary for plain DML like this SELECT), the
//! full parse-tree walk it falls back to for everything else, and a raw `pg_query::parse` of
//! the same text, in the same run. Prints the medians and the ratio.

use std::hint::black_box;
use std::time::{Duration, Instant};

use clawpatrol_protocols::sql::{analyze_postgres, analyze_postgres_full};
use criterion::Criterion;

const STATEMENT: &str = "SELECT u.id, u.email, count(o.id) AS orders, max(o.created_at) \
FROM public.users u JOIN sales.orders o ON o.user_id = u.id \
WHERE u.created_at > now() - interval '30 days' AND o.status = 'paid' GROUP BY u.id, u.email";

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
    let facts = analyze_postgres(STATEMENT);
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[0].verb, "select");
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let mut g = c.benchmark_group("sql/postgres-200");
    g.bench_function("analyze_postgres", |b| {
        b.iter(|| analyze_postgres(black_box(STATEMENT)))
    });
    g.bench_function("analyze_postgres_full", |b| {
        b.iter(|| analyze_postgres_full(black_box(STATEMENT)))
    });
    g.bench_function("pg_query::parse", |b| {
        b.iter(|| pg_query::parse(black_box(STATEMENT)).is_ok())
    });
    g.finish();
    let ours = median_ns(
        || drop(black_box(analyze_postgres(black_box(STATEMENT)))),
        2_000,
        31,
    );
    let full = median_ns(
        || drop(black_box(analyze_postgres_full(black_box(STATEMENT)))),
        500,
        31,
    );
    let raw = median_ns(
        || drop(black_box(pg_query::parse(black_box(STATEMENT)))),
        2_000,
        31,
    );
    c.final_summary();
    println!();
    println!(
        "SQL facts, {}-char Postgres statement: tables {:?}, functions {:?}",
        STATEMENT.len(),
        facts[0].tables,
        facts[0].functions
    );
    println!(
        "analyze_postgres (median) {:>9.2} µs   budget 40 µs",
        ours / 1000.0
    );
    println!(
        "  full parse-tree walk     {:>9.2} µs   (the path for DDL, CTEs, DO, MERGE, utility)",
        full / 1000.0
    );
    println!("pg_query::parse  (median) {:>9.2} µs", raw / 1000.0);
    println!("ratio (ours / raw parse)  {:>9.2}x", ours / raw);
}
