//! A tiny HTTPS upstream for the benchmark: generates a CA at start (written to
//! `--ca-out`), serves a leaf for `--name` signed by it, and answers every request with a
//! small fixed `200` over keep-alive.
//!
//! `GET /__stats` answers the counters as JSON (and is not counted itself):
//! `{"requests":N,"connections":N,"authorized":N}`, where `authorized` counts requests
//! whose `Authorization` equals `--expect-auth` (to check credential injection).
//!
//! Prints `listening on ADDR` on stdout once it accepts connections.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use clawpatrol_bench::{head_end, parse_head, provider, Args, MAX_HEAD};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const USAGE: &str = "\
usage: bench-upstream --ca-out PATH [options]

  --ca-out PATH        write the generated CA certificate (PEM) here (required)
  --listen ADDR:PORT   where to listen [127.0.0.1:0]
  --name HOST          a name of the served certificate (repeatable) [bench.test]
  --body-size N        response body bytes [32]
  --expect-auth VALUE  count requests whose Authorization equals VALUE
  --threads N          runtime worker threads [available CPUs]";

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    connections: AtomicU64,
    authorized: AtomicU64,
}

struct Opts {
    ca_out: Option<PathBuf>,
    listen: SocketAddr,
    names: Vec<String>,
    body_size: usize,
    expect_auth: Option<String>,
    threads: Option<usize>,
}

fn parse_opts() -> Result<Opts, String> {
    let mut o = Opts {
        ca_out: None,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        names: Vec::new(),
        body_size: 32,
        expect_auth: None,
        threads: None,
    };
    let mut args = Args::from_env();
    while let Some(flag) = args.next_flag() {
        match flag.as_str() {
            "--ca-out" => o.ca_out = Some(PathBuf::from(args.value(&flag)?)),
            "--listen" => o.listen = args.parsed(&flag)?,
            "--name" => o.names.push(args.value(&flag)?),
            "--body-size" => o.body_size = args.parsed(&flag)?,
            "--expect-auth" => o.expect_auth = Some(args.value(&flag)?),
            "--threads" => o.threads = Some(args.parsed(&flag)?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if o.names.is_empty() {
        o.names.push("bench.test".into());
    }
    if o.ca_out.is_none() {
        return Err("--ca-out is required".into());
    }
    Ok(o)
}

/// A fresh CA and a server config for `names` signed by it; returns (config, CA PEM).
fn tls_config(names: &[String]) -> Result<(Arc<rustls::ServerConfig>, String), String> {
    let err = |e: rcgen::Error| e.to_string();
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "clawpatrol bench upstream CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().map_err(err)?;
    let cert = CertificateParams::new(names.to_vec())
        .map_err(err)?
        .signed_by(&key, &issuer)
        .map_err(err)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key_der)
        .map_err(|e| e.to_string())?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(cfg), ca_cert.pem()))
}

/// Serves one connection until the peer closes, errs, or asks to close.
async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    counters: &Counters,
    response: &[u8],
    expect_auth: Option<&[u8]>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    loop {
        let end = loop {
            if let Some(end) = head_end(&buf) {
                break end;
            }
            if buf.len() > MAX_HEAD {
                let _ = s
                    .write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                return;
            }
            buf.reserve(4096);
            match s.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        let (stats, body_len, close, authorized) = match parse_head(&buf[..end]) {
            Ok(h) if !h.transfer_encoding => (
                h.first_line.split(' ').nth(1) == Some("/__stats"),
                h.content_length.unwrap_or(0),
                h.close,
                expect_auth.is_some() && h.authorization == expect_auth,
            ),
            _ => {
                let _ = s
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
                return;
            }
        };
        // Discard a request body, if any (the benchmark sends none).
        while buf.len() < end + body_len {
            buf.reserve(4096);
            match s.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        buf.drain(..end + body_len);
        let written = if stats {
            let body = format!(
                "{{\"requests\":{},\"connections\":{},\"authorized\":{}}}",
                counters.requests.load(Ordering::Relaxed),
                counters.connections.load(Ordering::Relaxed),
                counters.authorized.load(Ordering::Relaxed)
            );
            let resp = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            s.write_all(resp.as_bytes()).await
        } else {
            counters.requests.fetch_add(1, Ordering::Relaxed);
            if authorized {
                counters.authorized.fetch_add(1, Ordering::Relaxed);
            }
            s.write_all(response).await
        };
        if written.is_err() || close {
            let _ = s.shutdown().await;
            return;
        }
    }
}

fn main() -> ExitCode {
    let opts = match parse_opts() {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("bench-upstream: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (config, ca_pem) = match tls_config(&opts.names) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("bench-upstream: cannot make certificates: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(path) = &opts.ca_out {
        if let Err(e) = std::fs::write(path, &ca_pem) {
            eprintln!("bench-upstream: cannot write `{}`: {e}", path.display());
            return ExitCode::from(1);
        }
    }
    let body = "x".repeat(opts.body_size);
    let response: Arc<[u8]> = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
    .into();
    let expect_auth: Option<Arc<[u8]>> = opts.expect_auth.map(|a| a.into_bytes().into());
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = opts.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench-upstream: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result: Result<(), String> = rt.block_on(async move {
        let listener = TcpListener::bind(opts.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", opts.listen))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        println!("listening on {addr}");
        let _ = std::io::stdout().flush();
        let acceptor = TlsAcceptor::from(config);
        let counters = Arc::new(Counters::default());
        loop {
            let (tcp, _) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    eprintln!("bench-upstream: accept: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            counters.connections.fetch_add(1, Ordering::Relaxed);
            let (acceptor, counters) = (acceptor.clone(), counters.clone());
            let (response, expect_auth) = (response.clone(), expect_auth.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve(tls, &counters, &response, expect_auth.as_deref()).await;
                }
            });
        }
    });
    if let Err(e) = result {
        eprintln!("bench-upstream: {e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
