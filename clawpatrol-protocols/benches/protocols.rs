//! Parsing costs of the gateway's per-request work: ClickHouse statement facts, ClickHouse
//! native Query decoding, HTTP request heads, k8s path decomposition, and TLS ClientHello
//! peeking (a real rustls ClientHello). Prints each median.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clawpatrol_protocols::clickhouse::analyze_clickhouse;
use clawpatrol_protocols::clickhouse::native::{
    ClientDecoder, ClientHello, ClientItem, HelloAddendum, Query,
};
use clawpatrol_protocols::http::{parse_request_head, Limits};
use clawpatrol_protocols::k8s;
use clawpatrol_protocols::tls::{peek_client_hello, Peek};
use criterion::Criterion;

const CH_QUERY: &str = "SELECT toStartOfHour(e.ts) AS hour, e.tenant_id, count() AS n, \
uniqExact(e.user_id) AS users, quantile(0.95)(e.latency_ms) AS p95 \
FROM analytics.events AS e INNER JOIN analytics.tenants AS t ON t.id = e.tenant_id \
WHERE e.ts >= now() - INTERVAL 1 DAY AND t.plan IN ('pro', 'enterprise') \
GROUP BY hour, e.tenant_id ORDER BY hour DESC, n DESC LIMIT 100 \
SETTINGS max_threads = 8 FORMAT JSONEachRow";

const HTTP_HEAD: &[u8] = b"POST /v1/chat/completions?stream=true HTTP/1.1\r\n\
Host: api.openai.com\r\nUser-Agent: python-httpx/0.27.0\r\nAccept: application/json\r\n\
Accept-Encoding: gzip, deflate\r\nConnection: keep-alive\r\n\
Authorization: Bearer ph_openai_placeholder_0123456789\r\nContent-Type: application/json\r\n\
Content-Length: 512\r\nX-Stainless-Lang: python\r\nX-Stainless-Package-Version: 1.40.0\r\n\
OpenAI-Organization: org-abc123\r\n\r\n";

const K8S_TARGET: &str = "/api/v1/namespaces/dev/pods/web-0/exec?command=ls&command=%2Ftmp&container=web&stderr=true&stdout=true";

const REV: u64 = 54477;

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

fn client_hello_bytes() -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("api.github.com").expect("name");
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).expect("conn");
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).expect("write");
    }
    out
}

/// Hello + addendum + one Query, and a decoder positioned after the handshake.
fn native_query_bytes() -> (Vec<u8>, Vec<u8>) {
    let mut hs = Vec::new();
    ClientHello {
        client_name: "ClickHouse client".into(),
        version_major: 25,
        version_minor: 3,
        revision: REV,
        database: "analytics".into(),
        user: "agent".into(),
        password: "ph".into(),
    }
    .encode(&mut hs);
    HelloAddendum::default().encode(REV, &mut hs);
    let mut q = Vec::new();
    Query {
        query_id: "7d1f0c5e-9a43-4c1e-a1a0-2f0e2b9c1d11".into(),
        client_info: None,
        settings: Vec::new(),
        external_roles: Vec::new(),
        interserver_secret: Vec::new(),
        stage: 2,
        compression: false,
        query: CH_QUERY.as_bytes().to_vec(),
        truncated: false,
        parameters: Vec::new(),
    }
    .encode(REV, &mut q)
    .expect("encode");
    (hs, q)
}

fn decode_query(hs: &[u8], q: &[u8]) -> usize {
    let mut d = ClientDecoder::default();
    d.feed(hs);
    let _ = d.next_item();
    d.set_server_revision(REV);
    let _ = d.next_item();
    d.feed(q);
    match d.next_item() {
        Ok(Some(ClientItem::Packet { raw, .. })) => raw.len(),
        _ => 0,
    }
}

fn main() {
    let facts = analyze_clickhouse(CH_QUERY);
    assert_eq!(facts.verb, "select");
    let limits = Limits::default();
    assert!(matches!(
        parse_request_head(HTTP_HEAD, &limits),
        Ok(Some(_))
    ));
    assert!(k8s::decompose("GET", K8S_TARGET).is_some());
    let hello = client_hello_bytes();
    assert!(matches!(peek_client_hello(&hello), Ok(Peek::Complete(_))));
    let (hs, q) = native_query_bytes();
    assert_eq!(decode_query(&hs, &q), q.len());

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    c.bench_function("clickhouse/analyze_clickhouse", |b| {
        b.iter(|| analyze_clickhouse(black_box(CH_QUERY)))
    });
    c.bench_function("clickhouse/native_query_decode", |b| {
        b.iter(|| decode_query(black_box(&hs), black_box(&q)))
    });
    c.bench_function("http/request_head", |b| {
        b.iter(|| parse_request_head(black_box(HTTP_HEAD), &limits).is_ok())
    });
    c.bench_function("k8s/decompose", |b| {
        b.iter(|| k8s::decompose("GET", black_box(K8S_TARGET)))
    });
    c.bench_function("tls/peek_client_hello", |b| {
        b.iter(|| peek_client_hello(black_box(&hello)).is_ok())
    });
    c.final_summary();

    let ch = median_ns(
        || drop(black_box(analyze_clickhouse(black_box(CH_QUERY)))),
        500,
        31,
    );
    let native = median_ns(
        || {
            black_box(decode_query(black_box(&hs), black_box(&q)));
        },
        5_000,
        31,
    );
    let http = median_ns(
        || drop(black_box(parse_request_head(black_box(HTTP_HEAD), &limits))),
        20_000,
        31,
    );
    let k8s_ns = median_ns(
        || drop(black_box(k8s::decompose("GET", black_box(K8S_TARGET)))),
        20_000,
        31,
    );
    let tls = median_ns(
        || drop(black_box(peek_client_hello(black_box(&hello)))),
        20_000,
        31,
    );
    println!();
    println!(
        "ClickHouse statement facts, {}-char query (tables {:?}, functions {:?})",
        CH_QUERY.len(),
        facts.tables,
        facts.functions
    );
    println!(
        "analyze_clickhouse          (median) {:>9.2} µs",
        ch / 1000.0
    );
    println!(
        "native Query decode {:>4} B   (median) {:>9.2} µs",
        q.len(),
        native / 1000.0
    );
    println!(
        "HTTP request head {:>4} B     (median) {:>9.2} µs",
        HTTP_HEAD.len(),
        http / 1000.0
    );
    println!(
        "k8s decompose (exec URL)     (median) {:>9.2} µs",
        k8s_ns / 1000.0
    );
    println!(
        "TLS ClientHello peek {:>4} B  (median) {:>9.2} µs",
        hello.len(),
        tls / 1000.0
    );
}
