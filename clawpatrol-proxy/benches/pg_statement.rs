//! Where a Postgres statement's CPU goes in the gateway, without sockets: SQL facts (parsed,
//! and from the shape cache the session threads keep), the decision, the audit row's `extra` (redacted action), and the audit store's append per row
//! at several batch sizes (one SQLite transaction per batch, hash chain included).
//! `bench/pgbench.sh` measures the whole path; this splits the per-statement part.

use std::hint::black_box;
use std::time::Instant;

use clawpatrol_core::audit::chain::content_hash;
use clawpatrol_core::audit::extra::record_extra;
use clawpatrol_core::audit::record::AuditRecord;
use clawpatrol_core::audit::redact::redact_text;
use clawpatrol_core::facts::SqlFacts;
use clawpatrol_core::Policy;
use clawpatrol_core::{Action, Facts};
use clawpatrol_protocols::sql::PostgresCache;
use clawpatrol_proxy::audit::AuditStore;

/// The gateway binary's allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A previous row's hash, as the chain passes it.
const HEAD: &str = "5f1e0c7d9a3b2e4f6a8c0d1e2f3a4b5c6d7e8f901a2b3c4d5e6f708192a3b4c5";

/// What pgbench -S sends, one statement per transaction.
const STATEMENT: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = 73519;";

const POLICY: &str = r#"
schema_version = 1
endpoint "postgres" "db" {
  host = "127.0.0.1:5432"
}
rule "no-ddl" {
  endpoint  = postgres.db
  priority  = 100
  condition = "sql.verb in ['drop', 'create', 'alter', 'truncate']"
  verdict   = "deny"
}
rule "no-files" {
  endpoint  = postgres.db
  condition = "'pg_read_file' in sql.functions"
  verdict   = "deny"
}
rule "reads" {
  endpoint  = postgres.db
  condition = "sql.verb == 'select'"
  verdict   = "allow"
}
"#;

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

fn base_action() -> Action {
    let mut a = Action::new(Facts::Sql(SqlFacts {
        statement: STATEMENT.to_string(),
        database: "appdb".to_string(),
        ..SqlFacts::default()
    }))
    .with_host("127.0.0.1:5432".to_string())
    .with_credential("postgres_credential.app".to_string());
    a.endpoint = Some("postgres.db".to_string());
    a.peer_ip = "127.0.0.1".to_string();
    a
}

fn record(a: &Action, secrets: &[String]) -> AuditRecord {
    AuditRecord {
        action_id: uuid::Uuid::now_v7().to_string(),
        ts_ns: 1_700_000_000_000_000_000,
        mode: "pg".to_string(),
        family: "sql".to_string(),
        agent_ip: "127.0.0.1".to_string(),
        host: "127.0.0.1:5432".to_string(),
        method: "select".to_string(),
        path: redact_text(STATEMENT, secrets),
        action: "allow".to_string(),
        extra: record_extra(a, secrets, 4096),
        endpoint: Some("postgres.db".to_string()),
        rule: Some("reads".to_string()),
        credential: Some("postgres_credential.app".to_string()),
        ..AuditRecord::default()
    }
}

fn main() {
    let policy = Policy::from_source("bench.hcl", POLICY).expect("bench policy compiles");
    let secrets = vec!["bench-0123456789abcdef01234567".to_string()];
    let base = base_action();

    let facts = median_ns(
        || {
            black_box(policy.sql_text_actions(black_box(&base)));
        },
        200,
        31,
    );
    // pgbench's statement with a new id each time, through the session threads' shape cache.
    let variants: Vec<Action> = (0..1024)
        .map(|n| {
            let mut a = base.clone();
            if let Facts::Sql(s) = &mut a.facts {
                s.statement = STATEMENT.replace("73519", &(n * 97 + 1).to_string());
            }
            a
        })
        .collect();
    let mut cache = PostgresCache::new();
    let mut next = 0usize;
    let cached = median_ns(
        || {
            next = (next + 1) % variants.len();
            black_box(policy.sql_text_actions_cached(black_box(&variants[next]), &mut cache));
        },
        2000,
        31,
    );
    assert!(
        cache.hits() > 0 && cache.len() == 1,
        "one shape for every id"
    );
    let actions = policy.sql_text_actions(&base).expect("a postgres endpoint");
    let decide = median_ns(
        || {
            black_box(policy.decide_fail_closed(black_box(&actions[0])));
        },
        2000,
        31,
    );
    let extra = median_ns(
        || {
            black_box(record_extra(black_box(&actions[0]), &secrets, 4096));
        },
        2000,
        31,
    );
    let row = median_ns(
        || {
            black_box(record(black_box(&actions[0]), &secrets));
        },
        2000,
        31,
    );
    println!("per statement ({} bytes, pgbench -S):", STATEMENT.len());
    println!(
        "  SQL facts (split + analyze)     {:8.2} µs",
        facts / 1000.0
    );
    println!(
        "  SQL facts, shape cache hit      {:8.2} µs",
        cached / 1000.0
    );
    println!(
        "  decide                          {:8.2} µs",
        decide / 1000.0
    );
    println!(
        "  audit extra (redacted action)   {:8.2} µs",
        extra / 1000.0
    );
    println!("  whole audit row                 {:8.2} µs", row / 1000.0);
    let sample = record(&actions[0], &secrets);
    let hash = median_ns(
        || {
            black_box(content_hash(black_box(&sample), HEAD));
        },
        2000,
        31,
    );
    println!("  audit row hash (chain link)     {:8.2} µs", hash / 1000.0);

    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = AuditStore::open(&dir.path().join("bench.db")).expect("audit store");
    println!("audit store append, per row (SQLite WAL, hash chain):     wall       CPU");
    for batch in [1usize, 40, 200, 1000] {
        let rows = 4000usize.max(batch * 4);
        let mut recs: Vec<AuditRecord> = (0..rows).map(|_| record(&actions[0], &secrets)).collect();
        let cpu = thread_cpu_ns();
        let t = Instant::now();
        for chunk in recs.chunks_mut(batch) {
            store.append(chunk).expect("append");
        }
        let per_row = t.elapsed().as_nanos() as f64 / rows as f64;
        let cpu_per_row = (thread_cpu_ns() - cpu) / rows as f64;
        println!(
            "  batch {batch:5}                     {:8.2} µs {:8.2} µs",
            per_row / 1000.0,
            cpu_per_row / 1000.0
        );
    }
}

/// CPU time this thread has used, in ns (the scheduler's count; steadier than wall time on a
/// shared VM, and without the time spent waiting for fsync).
fn thread_cpu_ns() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").expect("schedstat");
    stat.split_whitespace()
        .next()
        .and_then(|ns| ns.parse().ok())
        .expect("schedstat's first field is the CPU time in ns")
}
