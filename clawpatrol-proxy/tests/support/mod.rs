//! Test harness for the gateway: a test CA, a real HTTPS upstream, the gateway binary,
//! curl, and a keep-alive TLS client through the proxy.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clawpatrol_protocols::http::{
    parse_request_head, request_framing, BodyDecoder, Limits, RequestHead,
};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A CA for the test upstream (not the gateway's).
pub struct TestCa {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "upstream test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server config for `names`, signed by this CA.
    pub fn server_config(&self, names: &[&str]) -> Arc<rustls::ServerConfig> {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let chain = vec![cert.der().clone()];
        let key_der = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .unwrap();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(cfg)
    }

    /// A server config for `names` that requires a client certificate signed by this CA.
    pub fn mtls_server_config(&self, names: &[&str]) -> Arc<rustls::ServerConfig> {
        let key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let key_der = rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert_der()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![cert.der().clone()], key_der)
            .unwrap();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(cfg)
    }

    /// A client certificate for `name` signed by this CA: (certificate PEM, key PEM).
    pub fn client_cert(&self, name: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A server certificate for `names` (DNS names or IP addresses) signed by this CA, for a
    /// server that is not a rustls one (PostgreSQL): (certificate PEM, PKCS#8 key PEM).
    pub fn server_cert_pem(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// This CA's certificate, DER.
    pub fn cert_der(&self) -> rustls_pki_types::CertificateDer<'static> {
        <rustls_pki_types::CertificateDer as rustls_pki_types::pem::PemObject>::from_pem_slice(
            self.pem.as_bytes(),
        )
        .unwrap()
    }
}

/// One request as the upstream received it (body decoded).
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A real HTTPS server on a random loopback port, recording every request.
pub struct Upstream {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub connections: Arc<Mutex<usize>>,
}

impl Upstream {
    pub fn start(config: Arc<rustls::ServerConfig>) -> Upstream {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let (s2, c2) = (seen.clone(), connections.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(l.local_addr().unwrap()).unwrap();
                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                loop {
                    let Ok((tcp, _)) = l.accept().await else {
                        continue;
                    };
                    *c2.lock().unwrap() += 1;
                    let (acceptor, seen) = (acceptor.clone(), s2.clone());
                    tokio::spawn(async move {
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            serve_upstream(tls, seen).await;
                        }
                    });
                }
            });
        });
        Upstream {
            addr: rx.recv().unwrap(),
            seen,
            connections,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn last(&self) -> Seen {
        self.seen()
            .last()
            .cloned()
            .expect("upstream saw no request")
    }
}

async fn serve_upstream<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let limits = Limits {
        body_buffer: 64 << 20,
        ..Limits::default()
    };
    let mut buf = Vec::new();
    loop {
        let head: RequestHead = loop {
            if let Ok(Some(h)) = parse_request_head(&buf, &limits) {
                break h;
            }
            let mut chunk = [0u8; 16384];
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        buf.drain(..head.head_len);
        let mut dec = BodyDecoder::new(request_framing(&head).unwrap(), &limits);
        while !dec.is_done() {
            if buf.is_empty() {
                let mut chunk = [0u8; 65536];
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let p = dec.feed(&buf).unwrap();
            buf.drain(..p.consumed);
        }
        let body = dec.inspected().bytes().to_vec();
        let headers: Vec<(String, String)> = head
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect();
        let path = head.target.split('?').next().unwrap_or("").to_string();
        seen.lock().unwrap().push(Seen {
            method: head.method.clone(),
            target: head.target.clone(),
            headers,
            body: body.clone(),
        });
        if path == "/ws" && head.is_websocket_upgrade() {
            let _ = s
                .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
                .await;
            let mut chunk = [0u8; 4096];
            if !buf.is_empty() {
                let _ = s.write_all(&buf).await;
            }
            loop {
                match s.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if s.write_all(&chunk[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
        if path == "/slow" {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let (extra, text) = match path.as_str() {
            "/sha256" => (String::new(), hex::encode(Sha256::digest(&body))),
            "/cookie" => (
                "Set-Cookie: session=upstream-session\r\nWWW-Authenticate: Bearer realm=\"x\"\r\nAlt-Svc: h3=\":443\"\r\n".to_string(),
                "cookie".to_string(),
            ),
            "/close" => ("Connection: close\r\n".to_string(), "bye".to_string()),
            // Slack's Web API, for approval notifications.
            "/api/chat.postMessage" => (
                String::new(),
                r#"{"ok":true,"channel":"C0123","ts":"1700000000.000100"}"#.to_string(),
            ),
            "/api/chat.update" => (String::new(), r#"{"ok":true}"#.to_string()),
            _ => (String::new(), format!("hello from upstream {path}")),
        };
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Upstream: yes\r\n{extra}Content-Length: {}\r\n\r\n{text}",
            text.len()
        );
        if s.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
        if path == "/close" {
            let _ = s.shutdown().await;
            return;
        }
    }
}

/// A running `clawpatrol gateway`.
pub struct Gateway {
    child: Option<Child>,
    pub proxy: SocketAddr,
    pub transparent: SocketAddr,
    pub state: PathBuf,
    pub log: PathBuf,
    pub ca: PathBuf,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_clawpatrol")
}

impl Gateway {
    /// Starts the gateway and waits until it listens.
    pub fn start(config: &Path, dir: &Path, env: &[(&str, &str)], extra: &[String]) -> Gateway {
        let state = dir.join("state");
        let log = dir.join("gateway.log");
        let mut cmd = Command::new(bin());
        cmd.arg("gateway")
            .arg(config)
            .arg("--state-dir")
            .arg(&state)
            .args([
                "--proxy-listen",
                "127.0.0.1:0",
                "--transparent-listen",
                "127.0.0.1:0",
                "--management-listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .args(if extra.iter().any(|a| a == "--reload-poll-ms") {
                &[][..]
            } else {
                &["--reload-poll-ms", "100"][..]
            })
            .env("RUST_LOG", "info")
            .env_remove("HTTPS_PROXY")
            .env_remove("HTTP_PROXY")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start gateway");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut proxy = None;
        let mut transparent = None;
        let mut ca = None;
        while let Some(Ok(line)) = lines.next() {
            if let Some(a) = line.strip_prefix("proxy listening on ") {
                proxy = Some(a.parse().unwrap());
            } else if let Some(a) = line.strip_prefix("transparent listening on ") {
                transparent = Some(a.parse().unwrap());
            } else if let Some(p) = line.strip_prefix("ca certificate ") {
                ca = Some(PathBuf::from(p));
            } else if line.starts_with("audit database ") {
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let (Some(proxy), Some(transparent), Some(ca)) = (proxy, transparent, ca) else {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("gateway did not start:\n{log}");
        };
        Gateway {
            child: Some(child),
            proxy,
            transparent,
            state,
            log,
            ca,
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle` `count` times.
    pub fn wait_log(&self, needle: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.log_text().matches(needle).count() >= count {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("log never showed {needle:?} x{count}:\n{}", self.log_text());
    }

    /// The gateway's process id.
    pub fn pid(&self) -> nix::unistd::Pid {
        let child = self.child.as_ref().expect("gateway already stopped");
        nix::unistd::Pid::from_raw(child.id() as i32)
    }

    /// Sends `sig` to the gateway.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(self.pid(), sig).unwrap();
    }

    /// Waits for the gateway to exit (after a signal); `None` if it did not within 30 s
    /// (it is killed then).
    pub fn wait_exit(&mut self) -> Option<std::process::ExitStatus> {
        wait_exit(self.child.take()?)
    }

    /// SIGTERM and wait; returns the exit status success.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.success();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs curl with `args`; never uses the environment's proxy settings.
pub fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .output()
        .expect("run curl")
}

pub fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A TLS connection to `host` through the proxy's CONNECT, trusting `ca_pem`.
pub struct Client {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

/// Sends `CONNECT host:443` with `extra` header lines; returns the stream and the response
/// head.
pub fn connect_raw(proxy: SocketAddr, host: &str, extra: &str) -> (TcpStream, String) {
    let mut tcp = TcpStream::connect(proxy).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        tcp,
        "CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n{extra}\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        tcp.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    (tcp, String::from_utf8(head).unwrap())
}

/// `Proxy-Authorization: Basic base64(user:password)` as a header line.
pub fn proxy_auth_line(user: &str, password: &str) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Proxy-Authorization: Basic {b64}\r\n")
}

impl Client {
    pub fn connect(proxy: SocketAddr, host: &str, ca_pem: &str) -> Client {
        Client::connect_with(proxy, host, ca_pem, "")
    }

    /// Like [`Client::connect`], with extra CONNECT header lines (e.g. proxy credentials).
    pub fn connect_with(proxy: SocketAddr, host: &str, ca_pem: &str, extra: &str) -> Client {
        let (tcp, head) = connect_raw(proxy, host, extra);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let mut roots = rustls::RootCertStore::empty();
        for cert in
            <rustls_pki_types::CertificateDer as rustls_pki_types::pem::PemObject>::pem_slice_iter(
                ca_pem.as_bytes(),
            )
        {
            roots.add(cert.unwrap()).unwrap();
        }
        let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls_pki_types::ServerName::try_from(host.to_string()).unwrap();
        let conn = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
        Client {
            tls: rustls::StreamOwned::new(conn, tcp),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.tls.write_all(bytes).unwrap();
        self.tls.flush().unwrap();
    }

    /// Sends a GET and reads one response: (status, headers text, body).
    pub fn get(&mut self, host: &str, path: &str, auth: &str) -> (u16, String, String) {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n\r\n");
        self.send_raw(req.as_bytes());
        self.read_response()
    }

    pub fn read_response(&mut self) -> (u16, String, String) {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if self.tls.read(&mut byte).unwrap() == 0 {
                panic!("closed after {:?}", String::from_utf8_lossy(&head));
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap();
        let status: u16 = head[9..12].parse().unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().unwrap())
            })
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        self.tls.read_exact(&mut body).unwrap();
        (status, head, String::from_utf8(body).unwrap())
    }

    /// Reads exactly `n` bytes.
    pub fn read_n(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        self.tls.read_exact(&mut buf).unwrap();
        buf
    }

    /// Reads until the server closes the connection.
    pub fn read_to_end(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match self.tls.read(&mut chunk) {
                Ok(0) | Err(_) => return out,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Whether the server closed the connection (read returns EOF or an error).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        !matches!(self.tls.read(&mut b), Ok(n) if n > 0)
    }
}

/// Searches every file under `dir` (recursively) for `needle`; returns the offending paths.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(bytes) = std::fs::read(&p) {
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    hits.push(p);
                }
            }
        }
    }
    hits
}

/// Raw requests a [`plain_server`] received.
pub type Recorded = Arc<Mutex<Vec<String>>>;

/// A plain-HTTP server on a random loopback port that stands in for a remote API: it reads
/// each request (head and `Content-Length` body), records its raw text, and writes
/// `answer(raw request)` as the whole response.
pub fn plain_server(answer: impl Fn(&str) -> String + Send + 'static) -> (u16, Recorded) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let seen: Recorded = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let complete = loop {
                let n = c.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break false;
                }
                buf.extend_from_slice(&chunk[..n]);
                let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if buf.len() >= i + 4 + len {
                    break true;
                }
            };
            if !complete {
                continue;
            }
            let text = String::from_utf8_lossy(&buf).into_owned();
            let reply = answer(&text);
            s2.lock().unwrap().push(text);
            let _ = c.write_all(reply.as_bytes());
        }
    });
    (port, seen)
}

/// A policy with one `https` endpoint `api.test` (trusting the upstream's test CA `ca_pem`),
/// a passthrough credential on it and a profile `dev` holding it, followed by `rest`.
pub fn open_api_policy(ca_pem: &str, rest: &str) -> String {
    format!(
        r#"schema_version = 1
endpoint "https" "api" {{
  hosts   = ["api.test"]
  ca_cert = <<EOT
{ca_pem}EOT
}}
credential "passthrough" "open" {{
  endpoint = https.api
}}
profile "dev" {{
  credentials = [passthrough.open]
}}
{rest}"#
    )
}

/// Waits up to 30 s for `child` to exit; kills it and returns `None` if it does not.
pub fn wait_exit(mut child: std::process::Child) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts that a client counting its answered actions in `done` is held back by a stalled
/// audit writer: after a moment fewer than half of its `total` actions are answered, and
/// the count stays put for 300 ms more.
pub fn assert_held_back(done: &std::sync::atomic::AtomicUsize, total: usize) {
    use std::sync::atomic::Ordering;
    std::thread::sleep(Duration::from_millis(300));
    let at = done.load(Ordering::SeqCst);
    assert!(
        at < total / 2,
        "{at} of {total} actions were answered while the audit writer could not write"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        done.load(Ordering::SeqCst),
        at,
        "the gateway went on reading actions while the audit writer was behind"
    );
}
