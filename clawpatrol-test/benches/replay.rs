//! Replaying 10,000 generated fixtures against the platform policy, end to end (discovery,
//! reading, parsing, SQL derivation, deciding, report). Budget: ≤ 1 s wall.
//!
//! Run: `cargo bench -p clawpatrol-test --bench replay`.

use std::path::Path;
use std::time::Instant;

use clawpatrol_core::Policy;
use clawpatrol_test::discover::fixture_files;
use clawpatrol_test::report;
use clawpatrol_test::runner::replay_files;
use serde_json::json;

const N: usize = 10_000;

/// Writes `N` fixtures cycling over the families; expectations come from a first replay so
/// the timed run reports no mismatch.
fn generate(dir: &Path) {
    let methods = ["GET", "POST", "DELETE", "PATCH", "PUT"];
    let paths = [
        "/repos/acme/app/pulls",
        "/repos/acme/app",
        "/repos/acme/app/issues/7/comments",
        "/admin/users",
        "/graphql",
    ];
    let statements = [
        "SELECT id, total FROM orders WHERE customer_id = 42",
        "DELETE FROM sessions WHERE expires_at < now()",
        "DROP TABLE audit_log",
        "SELECT * FROM tokens",
        "BEGIN; UPDATE accounts SET balance = 0 WHERE id = 1; COMMIT",
    ];
    let k8s = [
        ("get", "pods"),
        ("delete", "pods"),
        ("get", "secrets"),
        ("patch", "deployments"),
    ];
    let ssh = [
        ("exec", "make test"),
        ("pty", ""),
        ("exec", "./deploy prod"),
        ("forward", ""),
    ];
    for i in 0..N {
        let action = match i % 4 {
            0 => json!({"host": "api.github.com", "http": {"method": methods[i % 5],
                 "path": paths[(i / 5) % 5], "headers": {"Accept": ["application/json"]},
                 "body": format!("{{\"n\":{i}}}")}}),
            1 => {
                let (v, r) = k8s[(i / 4) % 4];
                json!({"host": "k8s-prod.example.com:6443",
                       "k8s": {"verb": v, "resource": r, "namespace": "dev", "name": format!("p{i}")}})
            }
            2 => json!({"host": "pg-main.internal:5432",
                        "sql": {"statement": statements[(i / 4) % 5], "database": "prod"}}),
            _ => {
                let (v, c) = ssh[(i / 4) % 4];
                json!({"host": "build.example.com:22",
                       "ssh": {"verb": v, "command": c, "forward_port": 5432}})
            }
        };
        let fixture = json!({"action": action, "match": {"verdict": "allow"}});
        let path = dir.join(format!("f{i:05}.json"));
        if let Err(e) = std::fs::write(&path, fixture.to_string()) {
            panic!("{}: {e}", path.display());
        }
    }
}

fn main() {
    let policy_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/examples/platform/policy.hcl"
    );
    let dir = std::env::temp_dir().join(format!("clawpatrol-replay-bench-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("{e}");
    }
    generate(&dir);
    let mut times = Vec::new();
    let mut checked = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let policy = match Policy::load(policy_path) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        let files = match fixture_files(&dir, false) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        };
        let results = replay_files(&policy, &files);
        let out = report::text(&results, false);
        times.push(t.elapsed());
        checked = results.len();
        std::hint::black_box(out);
    }
    times.sort();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "clawpatrol test: {checked} fixtures replayed in {:.0} ms (median of 5 runs; min {:.0} ms, max {:.0} ms; {} threads)",
        times[2].as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[4].as_secs_f64() * 1e3,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
}
