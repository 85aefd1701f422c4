//! `clawpatrol gateway <config>`: run the firewall.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use clawpatrol_core::Policy;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::AuditStore;
use crate::defaults::{
    DEFAULT_MANAGEMENT_LISTEN, DEFAULT_PROXY_LISTEN, DEFAULT_TRANSPARENT_LISTEN,
};
use crate::http::upstream::{ConnectTo, Dialer};
use crate::logging::{self, LogFormat};
use crate::postgres::threads::SessionThreads;
use crate::runtime::{Shared, Timeouts};
use crate::secrets::SecretStore;
use crate::state::{self, StateDir};
use crate::tls::{CertAuthority, LeafCache, UpstreamTls};
use crate::{listen, reload};

/// Arguments of `gateway`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Secrets come from CLAWPATROL_SECRET_<NAME> (the credential name upper-cased, `-` as `_`),
either the value itself or `@/path/to/file`.

Point an agent at the gateway with `eval \"$(clawpatrol env <config>)\"`.
The config is watched: a valid edit takes effect on the next request; SIGHUP forces a reload.

Examples:
  clawpatrol gateway fixtures/quickstart/policy.hcl
  clawpatrol gateway --state-dir /var/lib/clawpatrol --log-format json ./policies/")]
pub struct Args {
    /// A config file, or a directory whose `*.hcl` files are merged in name order.
    config: PathBuf,
    /// State directory (CA, audit database, proxy tokens); default `gateway.state_dir`,
    /// else `$HOME/.clawpatrol`.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Forward proxy listener; default `gateway.proxy_listen`, else 127.0.0.1:8080.
    #[arg(long)]
    proxy_listen: Option<SocketAddr>,
    /// Transparent TLS listener; default `gateway.transparent_listen`, else 127.0.0.1:8443.
    #[arg(long)]
    transparent_listen: Option<SocketAddr>,
    /// Management API listener (approvals); default `gateway.management_listen`, else
    /// 127.0.0.1:8081.
    #[arg(long)]
    management_listen: Option<SocketAddr>,
    /// Log format on stderr (or in `gateway.log_path`).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Dial ADDR:PORT instead of HOST:PORT for upstream connections (repeatable), e.g.
    /// `api.example.com:443:10.0.0.7:443`.
    #[arg(long = "connect-to", value_name = "HOST:PORT:ADDR:PORT")]
    connect_to: Vec<ConnectTo>,
    /// A PEM file of extra CA certificates trusted for the gateway's own outbound calls
    /// (Slack, webhooks), e.g. a corporate TLS-inspection CA.
    #[arg(long, value_name = "PEM")]
    extra_ca: Option<PathBuf>,
    /// How often the config files are checked for changes, in milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    reload_poll_ms: u64,
    /// How long in-flight requests may take to finish after SIGINT/SIGTERM, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    shutdown_grace: u64,
    /// Threads that run Postgres sessions (each a single-threaded event loop); default: one
    /// per CPU.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    postgres_threads: Option<u16>,
    /// After a Postgres session's last read, keep polling for the next message this many
    /// microseconds before the thread sleeps (0, the default: off). Saves waking an idle CPU
    /// per message when the gateway has cores of its own; costs CPU, so leave it off when the
    /// gateway shares cores with the database or the agents.
    #[arg(long, value_name = "MICROSECONDS", default_value_t = 0,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(crate::postgres::threads::MAX_BUSY_POLL_US)))]
    postgres_busy_poll: u32,
    /// Audit records held in memory while the audit writer catches up. Once half are
    /// waiting, connections stop reading new requests and statements until it has caught
    /// up, so that no action goes unaudited; a record that still finds the queue full waits
    /// in its connection, which relays and reads nothing meanwhile.
    #[arg(long, value_name = "RECORDS", default_value_t = 4096,
          value_parser = clap::value_parser!(u32).range(2..=1_048_576))]
    audit_queue: u32,
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
enum StartError {
    #[error("state directory: {0}")]
    State(#[from] state::StateError),
    #[error("tls: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("audit database: {0}")]
    Audit(#[from] crate::audit::AuditError),
    #[error("cannot listen on `{addr}`: {why}")]
    Listen { addr: String, why: std::io::Error },
    #[error("invalid listen address `{0}` in the config")]
    ListenAddr(String),
    #[error("cannot read --extra-ca {0}")]
    ExtraCa(String),
    #[error("cannot start the audit writer: {0}")]
    Writer(std::io::Error),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("{0}")]
    PgThreads(#[from] crate::postgres::threads::ThreadsError),
    #[error("cannot open the log file: {0}")]
    Log(String),
    #[error(
        "the audit writer died; the gateway stopped so that no action runs unaudited (see the error above)"
    )]
    WriterDown,
}

/// Runs the gateway until SIGINT/SIGTERM. Exit 0 after a clean shutdown, 2 on a config
/// error, 1 on any other start failure.
pub fn run(args: Args) -> ExitCode {
    let policy = match Policy::load(&args.config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = logging::init(
        args.log_format,
        policy
            .config()
            .gateway
            .as_ref()
            .and_then(|g| g.log_path.as_deref()),
    ) {
        eprintln!("clawpatrol gateway: {}", StartError::Log(e));
        return ExitCode::from(1);
    }
    match start(args, policy) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("clawpatrol gateway: {e}");
            ExitCode::from(1)
        }
    }
}

/// A listen address from the flag, else the config, else the default.
fn listen_addr(
    flag: Option<SocketAddr>,
    config: Option<&str>,
    default: &str,
) -> Result<SocketAddr, StartError> {
    if let Some(a) = flag {
        return Ok(a);
    }
    let text = config.unwrap_or(default);
    text.parse()
        .map_err(|_| StartError::ListenAddr(text.to_string()))
}

fn start(args: Args, policy: Policy) -> Result<(), StartError> {
    for w in policy.warnings() {
        tracing::warn!("{}", w.to_string().trim_end());
    }
    let gw = policy.config().gateway.clone().unwrap_or_default();
    let state_path = state::resolve(args.state_dir.as_deref(), gw.state_dir.as_deref())?;
    let state = StateDir::open(&state_path)?;
    let ca = Arc::new(CertAuthority::load_or_create(&state)?);
    let upstream_tls = UpstreamTls::new()?;
    let bundle = upstream_tls.combined_bundle_pem(&ca);
    if let Err(e) = std::fs::write(state.ca_bundle_path(), bundle) {
        tracing::warn!(error = %e, "cannot write the combined CA bundle");
    }
    let store = AuditStore::open(&state.db_path())?;
    let (audit, writer) = crate::audit::writer::spawn(store, args.audit_queue as usize)
        .map_err(StartError::Writer)?;
    let proxy_addr = listen_addr(
        args.proxy_listen,
        gw.proxy_listen.as_deref(),
        DEFAULT_PROXY_LISTEN,
    )?;
    let transparent_addr = listen_addr(
        args.transparent_listen,
        gw.transparent_listen.as_deref(),
        DEFAULT_TRANSPARENT_LISTEN,
    )?;
    let management_addr = listen_addr(
        args.management_listen,
        gw.management_listen.as_deref(),
        DEFAULT_MANAGEMENT_LISTEN,
    )?;
    let management_token = state.management_token()?;
    let extra_ca = match &args.extra_ca {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| StartError::ExtraCa(format!("`{}`: {e}", p.display())))?,
        ),
        None => None,
    };
    let timeouts = Timeouts::default();
    let summary = reload::summary(&policy);
    let shared = Arc::new(Shared {
        policy: ArcSwap::from_pointee(policy),
        leaves: LeafCache::new(ca.clone()),
        upstream_tls,
        secrets: SecretStore::from_env(),
        audit,
        state,
        dialer: Dialer::new(&args.connect_to, timeouts.connect),
        timeouts,
        shutdown: CancellationToken::new(),
        tracker: TaskTracker::new(),
        extra_ca,
        approvals: crate::approvals::Approvals::new(management_token),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("clawpatrol")
        .build()
        .map_err(StartError::Runtime)?;
    let addrs = Addrs {
        proxy: proxy_addr,
        transparent: transparent_addr,
        management: management_addr,
    };
    let result = runtime.block_on(serve(args, shared.clone(), addrs, summary, ca));
    drop(runtime);
    let dropped = shared.audit.dropped();
    let held_back = shared.audit.held_back();
    drop(shared);
    writer.shutdown();
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "audit rows were dropped: the writer thread died, or connections were torn down while their rows waited for room"
        );
    }
    if held_back > 0 {
        tracing::warn!(
            held_back,
            "connections waited for the audit writer to catch up"
        );
    }
    tracing::info!("gateway stopped");
    result
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|why| StartError::Listen {
            addr: addr.to_string(),
            why,
        })
}

/// The listener addresses of one gateway.
struct Addrs {
    proxy: SocketAddr,
    transparent: SocketAddr,
    management: SocketAddr,
}

/// The bound address of a listener.
fn bound(l: &TcpListener, wanted: SocketAddr) -> Result<SocketAddr, StartError> {
    l.local_addr().map_err(|why| StartError::Listen {
        addr: wanted.to_string(),
        why,
    })
}

async fn serve(
    args: Args,
    shared: Arc<Shared>,
    addrs: Addrs,
    summary: String,
    ca: Arc<CertAuthority>,
) -> Result<(), StartError> {
    let proxy = bind(addrs.proxy).await?;
    let transparent = bind(addrs.transparent).await?;
    let management = bind(addrs.management).await?;
    let proxy_at = bound(&proxy, addrs.proxy)?;
    let transparent_at = bound(&transparent, addrs.transparent)?;
    let management_at = bound(&management, addrs.management)?;
    if let Err(e) = std::fs::write(
        shared.state.management_addr_path(),
        format!("{management_at}\n"),
    ) {
        tracing::warn!(error = %e, "cannot record the management address; `clawpatrol approvals` needs --api");
    }
    // Signal handlers go in before the gateway announces itself: a SIGHUP or SIGTERM sent
    // right after the "listening" lines must not meet the default action (termination).
    let stop = StopSignals::install();
    let hup = reload::hangup_signal();
    tracing::info!(
        config = %args.config.display(),
        state_dir = %shared.state.path().display(),
        ca_fingerprint = %ca.fingerprint(),
        "gateway started: {summary}"
    );
    // Machine-readable lines on stdout (tests and scripts read the bound ports here).
    println!("proxy listening on {proxy_at}");
    println!("transparent listening on {transparent_at}");
    println!("management listening on {management_at}");
    println!("ca certificate {}", shared.state.ca_cert_path().display());
    let mut pg = Vec::new();
    for (typed, addr) in postgres_listeners(&shared.policy.load())? {
        let listener = bind(addr).await?;
        let at = listener.local_addr().map_err(|why| StartError::Listen {
            addr: addr.to_string(),
            why,
        })?;
        println!("postgres {typed} listening on {at}");
        pg.push((typed, listener));
    }
    // Postgres sessions run on their own event-loop threads (see `postgres::threads`).
    let pg_threads = if pg.is_empty() {
        None
    } else {
        let n = args.postgres_threads.map_or_else(
            || std::thread::available_parallelism().map_or(1, usize::from),
            usize::from,
        );
        let busy_poll = std::time::Duration::from_micros(u64::from(args.postgres_busy_poll));
        let threads = SessionThreads::start_with(n, busy_poll)?;
        tracing::info!(
            busy_poll_us = args.postgres_busy_poll,
            "{n} postgres session thread{}",
            if n == 1 { "" } else { "s" }
        );
        Some(Arc::new(threads))
    };
    println!("audit database {}", shared.state.db_path().display());

    let mut tasks = Vec::new();
    if let Some(threads) = &pg_threads {
        for (typed, listener) in pg {
            tasks.push(tokio::spawn(crate::postgres::run(
                listener,
                shared.clone(),
                typed,
                threads.clone(),
            )));
        }
    }
    tasks.extend([
        tokio::spawn(listen::proxy::run(proxy, shared.clone())),
        tokio::spawn(listen::transparent::run(transparent, shared.clone())),
        tokio::spawn(crate::approvals::api::run(management, shared.clone())),
        tokio::spawn(reload::watch(
            args.config.clone(),
            shared.clone(),
            Duration::from_millis(args.reload_poll_ms.max(50)),
            hup,
        )),
    ]);

    // A dead audit writer stops the gateway: connections already wait (the writer counts as
    // behind for good), and a gateway that cannot audit must not keep accepting them.
    let writer_down = tokio::select! {
        () = stop.wait() => false,
        () = shared.audit.writer_down() => true,
    };
    tracing::info!("shutting down: no new connections; waiting for in-flight requests");
    shared.shutdown.cancel();
    shared.tracker.close();
    for t in tasks {
        let _ = t.await;
    }
    let grace = Duration::from_secs(args.shutdown_grace);
    if tokio::time::timeout(grace, shared.tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            ?grace,
            "in-flight connections did not finish in time; closing them"
        );
    }
    // Postgres sessions still open after the grace period end here, before the audit queue
    // drains.
    if let Some(threads) = pg_threads {
        match Arc::try_unwrap(threads) {
            Ok(mut threads) => {
                threads.stop();
                if args.postgres_busy_poll > 0 {
                    tracing::info!(
                        polls = threads.busy_polls(),
                        "postgres session threads stopped; non-blocking polls made while busy polling"
                    );
                }
            }
            Err(_) => tracing::error!("postgres session threads still in use at shutdown"),
        }
    }
    // Also when the writer died during the drain, after a stop signal: rows were lost.
    if writer_down || shared.audit.is_down() {
        return Err(StartError::WriterDown);
    }
    Ok(())
}

/// `(typed endpoint, listen address)` of every `postgres` endpoint with a `listen` attribute.
/// Listen addresses are read at start; changing one needs a restart.
fn postgres_listeners(policy: &Policy) -> Result<Vec<(String, SocketAddr)>, StartError> {
    use clawpatrol_core::config::model::AttrValue;
    let mut out = Vec::new();
    for ep in &policy.config().endpoints {
        if ep.kind != "postgres" {
            continue;
        }
        let Some(AttrValue::Str(listen)) = ep.attrs.get("listen") else {
            continue;
        };
        let addr = listen
            .parse::<SocketAddr>()
            .map_err(|_| StartError::ListenAddr(listen.clone()))?;
        out.push((ep.typed_name(), addr));
    }
    Ok(out)
}

/// The SIGINT and SIGTERM listeners.
struct StopSignals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    /// Installs the handlers (from then on the signals no longer terminate the process).
    fn install() -> StopSignals {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(t), Ok(i)) => StopSignals {
                term: Some(t),
                int: Some(i),
            },
            _ => {
                tracing::warn!("cannot install signal handlers; stop with SIGKILL");
                StopSignals {
                    term: None,
                    int: None,
                }
            }
        }
    }

    /// Resolves on SIGINT or SIGTERM.
    async fn wait(self) {
        match (self.term, self.int) {
            (Some(mut t), Some(mut i)) => {
                tokio::select! {
                    _ = t.recv() => {}
                    _ = i.recv() => {}
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
}
