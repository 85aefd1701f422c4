//! A closed-loop HTTPS load generator for keep-alive GETs.
//!
//! Each of `--connections` connections dials the proxy (one CONNECT) or the upstream, does
//! one TLS handshake, then sends GETs one after another, each after the previous response
//! was read whole (responses must carry `Content-Length`). Requests completed during the
//! warm-up are not counted; latency is from writing a request to reading the last byte of
//! its response. A failed request (I/O error, timeout, status other than 200, unsupported
//! framing) is counted in `errors` and the connection is opened anew.
//!
//! Prints one JSON object on stdout; the first distinct error messages go to stderr.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clawpatrol_bench::{
    add_pem_roots, head_end, parse_head, provider, status_code, Args, MAX_HEAD,
};
use hdrhistogram::Histogram;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

const USAGE: &str = "\
usage: loadgen --url https://HOST[:PORT]/PATH [options]

  --url URL             what to GET (https only)
  --proxy ADDR:PORT     go through this HTTP proxy with one CONNECT per connection
  --connect-to ADDR:PORT  without --proxy: dial ADDR:PORT instead of the URL's host
                        (SNI and Host stay the URL's)
  --ca PEM              trust the certificates of this PEM file (repeatable; required)
  --header 'N: v'       add this header to every request (repeatable)
  --connections N       concurrent keep-alive connections [16]
  --duration S          measured seconds [10]
  --warmup S            seconds before measuring [2]
  --timeout S           per-request and per-connect timeout [10]
  --threads N           runtime worker threads [available CPUs]

Prints {\"requests\":..,\"rps\":..,\"p50_us\":..,\"p99_us\":..,\"errors\":..,...}";

struct Config {
    host: String,
    port: u16,
    dial: String,
    proxy: bool,
    connector: TlsConnector,
    server_name: ServerName<'static>,
    request: Vec<u8>,
    timeout: Duration,
}

struct Opts {
    url: Option<String>,
    proxy: Option<String>,
    connect_to: Option<String>,
    cas: Vec<PathBuf>,
    headers: Vec<String>,
    connections: usize,
    duration: f64,
    warmup: f64,
    timeout: f64,
    threads: Option<usize>,
}

fn parse_opts() -> Result<Opts, String> {
    let mut o = Opts {
        url: None,
        proxy: None,
        connect_to: None,
        cas: Vec::new(),
        headers: Vec::new(),
        connections: 16,
        duration: 10.0,
        warmup: 2.0,
        timeout: 10.0,
        threads: None,
    };
    let mut args = Args::from_env();
    while let Some(flag) = args.next_flag() {
        match flag.as_str() {
            "--url" => o.url = Some(args.value(&flag)?),
            "--proxy" => o.proxy = Some(args.value(&flag)?),
            "--connect-to" => o.connect_to = Some(args.value(&flag)?),
            "--ca" => o.cas.push(PathBuf::from(args.value(&flag)?)),
            "--header" => o.headers.push(args.value(&flag)?),
            "--connections" => o.connections = args.parsed(&flag)?,
            "--duration" => o.duration = args.parsed(&flag)?,
            "--warmup" => o.warmup = args.parsed(&flag)?,
            "--timeout" => o.timeout = args.parsed(&flag)?,
            "--threads" => o.threads = Some(args.parsed(&flag)?),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if o.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    if o.duration <= 0.0 || !o.duration.is_finite() {
        return Err("--duration must be positive".into());
    }
    if o.warmup < 0.0 || o.timeout <= 0.0 || !o.warmup.is_finite() || !o.timeout.is_finite() {
        return Err("--warmup must be >= 0 and --timeout positive".into());
    }
    if o.proxy.is_some() && o.connect_to.is_some() {
        return Err("--connect-to is for direct mode; with --proxy the proxy dials".into());
    }
    if o.cas.is_empty() {
        return Err("at least one --ca is needed".into());
    }
    Ok(o)
}

/// Splits `https://host[:port]/path` into (host, port, path).
fn parse_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| format!("`{url}`: only https:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse()
                .map_err(|_| format!("`{url}`: invalid port `{p}`"))?,
        ),
        None => (authority, 443),
    };
    if host.is_empty() || host.contains('[') {
        return Err(format!("`{url}`: a host name or IPv4 address is needed"));
    }
    Ok((host.to_string(), port, path.to_string()))
}

fn build(o: &Opts) -> Result<Config, String> {
    let url = o.url.as_deref().ok_or("--url is required")?;
    let (host, port, path) = parse_url(url)?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in &o.cas {
        add_pem_roots(&mut roots, ca)?;
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let server_name = ServerName::try_from(host.clone())
        .map_err(|e| format!("`{host}` is not a valid server name: {e}"))?;
    let authority = if port == 443 {
        host.clone()
    } else {
        format!("{host}:{port}")
    };
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\n");
    for h in &o.headers {
        let Some((name, value)) = h.split_once(':') else {
            return Err(format!("--header `{h}`: expected `Name: value`"));
        };
        request += &format!("{}: {}\r\n", name.trim(), value.trim());
    }
    request += "\r\n";
    let (dial, proxy) = match (&o.proxy, &o.connect_to) {
        (Some(p), _) => (p.clone(), true),
        (None, Some(c)) => (c.clone(), false),
        (None, None) => (format!("{host}:{port}"), false),
    };
    Ok(Config {
        host,
        port,
        dial,
        proxy,
        connector: TlsConnector::from(Arc::new(tls)),
        server_name,
        request: request.into_bytes(),
        timeout: Duration::from_secs_f64(o.timeout),
    })
}

/// Opens one connection: TCP, CONNECT when proxied, TLS.
async fn open(cfg: &Config) -> Result<TlsStream<TcpStream>, String> {
    let mut tcp = TcpStream::connect(&cfg.dial)
        .await
        .map_err(|e| format!("connect {}: {e}", cfg.dial))?;
    tcp.set_nodelay(true)
        .map_err(|e| format!("set_nodelay: {e}"))?;
    if cfg.proxy {
        let target = format!("{}:{}", cfg.host, cfg.port);
        let req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
        tcp.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("CONNECT write: {e}"))?;
        // The proxy sends nothing after its reply until our ClientHello, so reading in
        // chunks cannot swallow TLS bytes; anything past the head is a protocol error.
        let mut buf = Vec::with_capacity(512);
        let end = loop {
            if let Some(end) = head_end(&buf) {
                break end;
            }
            if buf.len() > MAX_HEAD {
                return Err("CONNECT reply head too large".into());
            }
            let n = tcp
                .read_buf(&mut buf)
                .await
                .map_err(|e| format!("CONNECT read: {e}"))?;
            if n == 0 {
                return Err("proxy closed the connection after CONNECT".into());
            }
        };
        let head = parse_head(&buf[..end])?;
        if status_code(head.first_line) != Some(200) || end != buf.len() {
            return Err(format!("CONNECT refused: {}", head.first_line));
        }
    }
    cfg.connector
        .connect(cfg.server_name.clone(), tcp)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))
}

/// What one response told about the connection.
enum Outcome {
    KeepAlive,
    Close,
}

/// Sends the request and reads one whole response; `buf` is reused between requests.
async fn exchange(
    s: &mut TlsStream<TcpStream>,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> Result<Outcome, String> {
    s.write_all(request)
        .await
        .map_err(|e| format!("write: {e}"))?;
    let end = loop {
        if let Some(end) = head_end(buf) {
            break end;
        }
        if buf.len() > MAX_HEAD {
            return Err("response head too large".into());
        }
        fill(s, buf).await?;
    };
    let (status, len, close, first) = {
        let head = parse_head(&buf[..end])?;
        if head.transfer_encoding {
            return Err("response without Content-Length (Transfer-Encoding)".into());
        }
        (
            status_code(head.first_line),
            head.content_length,
            head.close,
            head.first_line.to_string(),
        )
    };
    let Some(len) = len else {
        return Err(format!("response without Content-Length: {first}"));
    };
    while buf.len() < end + len {
        fill(s, buf).await?;
    }
    buf.drain(..end + len);
    if status != Some(200) {
        return Err(format!("unexpected status: {first}"));
    }
    if !buf.is_empty() {
        return Err("bytes after the response".into());
    }
    Ok(if close {
        Outcome::Close
    } else {
        Outcome::KeepAlive
    })
}

async fn fill(s: &mut TlsStream<TcpStream>, buf: &mut Vec<u8>) -> Result<(), String> {
    buf.reserve(4096);
    match s.read_buf(buf).await {
        Ok(0) => Err("connection closed mid-response".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("read: {e}")),
    }
}

struct Stats {
    hist: Histogram<u64>,
    requests: u64,
    errors: u64,
    connects: u64,
    messages: Vec<String>,
}

impl Stats {
    fn new() -> Stats {
        Stats {
            hist: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            requests: 0,
            errors: 0,
            connects: 0,
            messages: Vec::new(),
        }
    }

    fn error(&mut self, msg: String) {
        self.errors += 1;
        if self.messages.len() < 5 && !self.messages.contains(&msg) {
            self.messages.push(msg);
        }
    }

    fn merge(&mut self, other: Stats) {
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.hist.add(&other.hist);
        self.requests += other.requests;
        self.errors += other.errors;
        self.connects += other.connects;
        for m in other.messages {
            if self.messages.len() < 5 && !self.messages.contains(&m) {
                self.messages.push(m);
            }
        }
    }
}

/// One connection's loop until `end`; reconnects after an error or `Connection: close`.
async fn worker(cfg: Arc<Config>, measure_from: Instant, end: Instant) -> Stats {
    let mut st = Stats::new();
    let mut buf = Vec::with_capacity(8192);
    'connect: while Instant::now() < end {
        let mut s = match tokio::time::timeout(cfg.timeout, open(&cfg)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                st.error(e);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Err(_) => {
                st.error("connect timed out".into());
                continue;
            }
        };
        st.connects += 1;
        buf.clear();
        loop {
            let t0 = Instant::now();
            if t0 >= end {
                break 'connect;
            }
            let r =
                tokio::time::timeout(cfg.timeout, exchange(&mut s, &cfg.request, &mut buf)).await;
            let t1 = Instant::now();
            match r {
                Ok(Ok(outcome)) => {
                    if t1 >= measure_from && t1 <= end {
                        st.requests += 1;
                        let us = u64::try_from((t1 - t0).as_micros()).unwrap_or(u64::MAX);
                        st.hist.saturating_record(us.max(1));
                    }
                    if let Outcome::Close = outcome {
                        continue 'connect;
                    }
                }
                Ok(Err(e)) => {
                    st.error(e);
                    continue 'connect;
                }
                Err(_) => {
                    st.error("request timed out".into());
                    continue 'connect;
                }
            }
        }
    }
    st
}

fn main() -> ExitCode {
    let opts = match parse_opts() {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("loadgen: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let cfg = match build(&opts) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = opts.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = match rt.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let duration = Duration::from_secs_f64(opts.duration);
    let total = rt.block_on(async {
        let start = Instant::now();
        let measure_from = start + Duration::from_secs_f64(opts.warmup);
        let end = measure_from + duration;
        let tasks: Vec<_> = (0..opts.connections)
            .map(|_| tokio::spawn(worker(cfg.clone(), measure_from, end)))
            .collect();
        let mut total = Stats::new();
        for t in tasks {
            match t.await {
                Ok(st) => total.merge(st),
                Err(e) => total.error(format!("worker failed: {e}")),
            }
        }
        total
    });
    for m in &total.messages {
        eprintln!("loadgen: error: {m}");
    }
    let h = &total.hist;
    let rps = total.requests as f64 / duration.as_secs_f64();
    let (p50, p90, p99, max, mean) = if total.requests > 0 {
        (
            h.value_at_quantile(0.50),
            h.value_at_quantile(0.90),
            h.value_at_quantile(0.99),
            h.max(),
            h.mean(),
        )
    } else {
        (0, 0, 0, 0, 0.0)
    };
    println!(
        "{{\"requests\":{},\"rps\":{:.1},\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"max_us\":{},\"mean_us\":{:.1},\"errors\":{},\"connects\":{},\"connections\":{},\"duration_s\":{}}}",
        total.requests,
        rps,
        p50,
        p90,
        p99,
        max,
        mean,
        total.errors,
        total.connects,
        opts.connections,
        opts.duration
    );
    if total.requests == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
