//! Arbitrary bytes as what an agent sends on an intercepted connection (after TLS
//! termination): `clawpatrol_proxy::http::conn::serve` reads, decides, injects and forwards
//! them over an in-memory duplex. The upstream is a local port that accepts and closes at
//! once, so allowed requests end in 502. Must not panic, must terminate, and whatever the
//! gateway writes back must start with an HTTP/1.1 status line.
#![no_main]

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use clawpatrol_core::Policy;
use clawpatrol_proxy::audit::{writer, AuditStore};
use clawpatrol_proxy::http::conn::{serve, ConnCtx};
use clawpatrol_proxy::http::upstream::{ConnectTo, Dialer};
use clawpatrol_proxy::runtime::{Shared, Timeouts};
use clawpatrol_proxy::secrets::SecretStore;
use clawpatrol_proxy::state::StateDir;
use clawpatrol_proxy::tls::{CertAuthority, LeafCache, UpstreamTls};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const POLICY: &str = r#"schema_version = 1

endpoint "https" "api" {
  hosts = ["api.test"]
}

endpoint "kubernetes" "k8s" {
  server = "k8s.test:443"
}

credential "bearer_token" "api-token" {
  endpoint    = https.api
  placeholder = "placeholder-token"
}

credential "header_token" "api-key" {
  endpoint    = https.api
  header      = "X-Api-Key"
  placeholder = "placeholder-key"
}

credential "bearer_token" "k8s-token" {
  endpoint = kubernetes.k8s
}

profile "dev" {
  credentials = [bearer_token.api-token, header_token.api-key, bearer_token.k8s-token]
}

rule "no-deletes" {
  endpoint  = https.api
  condition = "http.method == 'DELETE'"
  verdict   = "deny"
  reason    = "deletes are not allowed"
}

rule "body-word" {
  endpoint  = https.api
  condition = "http.path.startsWith('/upload') && http.body.contains('forbidden')"
  verdict   = "deny"
  reason    = "the body carries a forbidden word"
}

rule "json-field" {
  endpoint  = https.api
  condition = "has(http.body_json.admin) && http.body_json.admin == true"
  verdict   = "deny"
  reason    = "no admin requests"
}

rule "danger-header" {
  endpoint  = https.api
  condition = "'X-Danger' in http.headers && http.headers['X-Danger'][0] == 'yes'"
  verdict   = "deny"
  reason    = "dangerous header"
}

rule "no-secrets" {
  endpoint  = kubernetes.k8s
  condition = "k8s.resource == 'secrets'"
  verdict   = "deny"
  reason    = "secrets are off limits"
}
"#;

/// Everything built once: the runtime and the gateway's shared state.
struct Env {
    rt: tokio::runtime::Runtime,
    shared: Arc<Shared>,
    /// Keeps the audit writer thread alive.
    _writer: writer::AuditWriter,
}

/// Setup failures are bugs of the harness, not findings.
fn fail(what: &str, e: &dyn std::fmt::Display) -> ! {
    panic!("{what}: {e}")
}

/// A port that accepts connections and closes them at once.
fn closing_upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| fail("bind upstream", &e));
    let addr = l
        .local_addr()
        .unwrap_or_else(|e| fail("upstream address", &e));
    std::thread::spawn(move || {
        for s in l.incoming() {
            drop(s);
        }
    });
    addr
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("clawpatrol-fuzz-{}", std::process::id()));
        let policy =
            Policy::from_source("policy.hcl", POLICY).unwrap_or_else(|e| fail("policy", &e));
        let state = StateDir::open(&dir).unwrap_or_else(|e| fail("state dir", &e));
        let ca = Arc::new(CertAuthority::load_or_create(&state).unwrap_or_else(|e| fail("ca", &e)));
        let store = AuditStore::open(&state.db_path()).unwrap_or_else(|e| fail("audit", &e));
        let (audit, writer) = writer::spawn(store, 1024).unwrap_or_else(|e| fail("writer", &e));
        let up = closing_upstream();
        let connect_to: Vec<ConnectTo> = ["api.test", "k8s.test", "other.test"]
            .iter()
            .map(|h| {
                format!("{h}:443:{up}")
                    .parse()
                    .unwrap_or_else(|e: String| fail("connect-to", &e))
            })
            .collect();
        let ms = Duration::from_millis;
        let timeouts = Timeouts {
            idle: ms(100),
            head: ms(100),
            handshake: ms(200),
            connect: ms(200),
            response: ms(200),
        };
        let secret_file: PathBuf = dir.join("key.txt");
        std::fs::write(&secret_file, "file-secret\n").unwrap_or_else(|e| fail("secret", &e));
        let shared = Arc::new(Shared {
            policy: ArcSwap::from_pointee(policy),
            leaves: LeafCache::new(ca),
            upstream_tls: UpstreamTls::from_roots(Vec::new()),
            secrets: SecretStore::from_vars([
                (
                    "CLAWPATROL_SECRET_API_TOKEN".to_string(),
                    "real-api-secret".to_string(),
                ),
                (
                    "CLAWPATROL_SECRET_API_KEY".to_string(),
                    format!("@{}", secret_file.display()),
                ),
            ]),
            audit,
            state,
            dialer: Dialer::new(&connect_to, timeouts.connect),
            timeouts,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            extra_ca: None,
            approvals: clawpatrol_proxy::approvals::Approvals::new("fuzz".to_string()),
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| fail("runtime", &e));
        Env {
            rt,
            shared,
            _writer: writer,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let env = env();
    // The first byte picks the host and whether the agent's profile reaches it.
    let (selector, bytes) = match data.split_first() {
        Some((s, rest)) => (*s, rest),
        None => (0, data),
    };
    let host = match selector % 3 {
        0 => "api.test",
        1 => "k8s.test",
        _ => "other.test",
    };
    let profile = if selector & 0x80 == 0 {
        "dev"
    } else {
        "nobody"
    };
    let ctx = ConnCtx {
        peer: SocketAddr::from(([127, 0, 0, 1], 40000)),
        profile: Some(profile.to_string()),
        host: host.to_string(),
        port: 443,
    };
    let shared = env.shared.clone();
    let written = env.rt.block_on(async move {
        let (agent, gateway) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(serve(gateway, ctx, shared));
        let mut out = Vec::new();
        let (mut rd, mut wr) = tokio::io::split(agent);
        let send = async {
            let _ = wr.write_all(bytes).await;
            let _ = wr.shutdown().await;
        };
        let recv = async {
            let _ = rd.read_to_end(&mut out).await;
        };
        let bounded = tokio::time::timeout(Duration::from_secs(20), async {
            tokio::join!(send, recv);
        });
        if bounded.await.is_err() {
            panic!("the gateway did not finish the connection in time");
        }
        drop((rd, wr));
        if let Err(e) = server.await {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
        out
    });
    if !written.is_empty() {
        assert!(
            written.starts_with(b"HTTP/1.1 "),
            "response does not start with a status line: {:?}",
            String::from_utf8_lossy(&written[..written.len().min(200)])
        );
    }
});
