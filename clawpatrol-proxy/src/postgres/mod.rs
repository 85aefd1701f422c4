//! The Postgres gateway (reference §4.4.2, §9.4): one listener per `postgres` endpoint with a
//! `listen` address. The agent logs in with placeholders; the gateway authenticates upstream
//! with the real secret and decides every statement before it reaches the server.

mod prepared;
mod session;
mod settings;
mod startup;
pub mod threads;
pub mod upstream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::runtime::Shared;
use threads::SessionThreads;
use upstream::UpstreamTarget;

/// A bidirectional byte stream (plain TCP or TLS) of either leg.
pub trait PgStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PgStream for T {}

/// A boxed stream of either leg.
pub type BoxStream = Box<dyn PgStream>;

/// Why a Postgres session failed. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Socket error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The peer broke the wire protocol.
    #[error("protocol violation: {0}")]
    Protocol(clawpatrol_protocols::postgres::PgError),
    /// Dial, TLS or authentication failure on the upstream leg.
    #[error("{0}")]
    Upstream(String),
    /// The endpoint or credential configuration cannot serve this session.
    #[error("{0}")]
    Config(String),
    /// The session's client encoding is one the gateway cannot read statements in.
    #[error("client_encoding {0:?} is not supported through the gateway: it reads statements as UTF-8, so sessions must use UTF8")]
    UnreadableEncoding(String),
    /// The agent's TLS handshake failed.
    #[error("agent tls: {0}")]
    AgentTls(String),
    /// A startup setting (a parameter, or a setting in `options`) was refused.
    #[error("{0}")]
    Setting(String),
    /// The agent did not finish the startup in time.
    #[error("timed out")]
    Timeout,
    /// The agent pipelined more requests than the gateway keeps answers owed for.
    #[error("more than {0} answers owed to the agent; closing the session")]
    TooManyOwed(usize),
    /// The agent pipelined more Parse/Close messages than the gateway follows.
    #[error("more than {0} unanswered Parse/Close messages; closing the session")]
    TooManyPrepares(usize),
    /// A simple Query inside an extended-protocol batch: the server skips it after an error
    /// in the batch, so the gateway could no longer match answers to requests.
    #[error("simple Query inside an unfinished extended-protocol batch (no Sync before it); closing the session")]
    QueryInBatch,
    /// The server answered a request other than the one the gateway expected.
    #[error("the server's answers no longer match the requests the gateway forwarded; closing the session")]
    Desync,
    /// The agent pipelined statements whose audit rows outgrow what a session may keep.
    #[error("more than {0} MiB of audit rows kept for statements the server has not answered yet; closing the session")]
    TooManyHeldRows(usize),
}

/// Where to send a CancelRequest the agent addressed to the key it was given.
#[derive(Debug, Clone)]
pub struct CancelTarget {
    /// The server.
    pub target: UpstreamTarget,
    /// The upstream backend's process id.
    pub process_id: i32,
    /// The upstream backend's secret key.
    pub secret_key: Vec<u8>,
}

/// Agent-visible cancel keys → upstream backends, for one listener.
#[derive(Debug, Default)]
pub struct CancelMap {
    map: Mutex<HashMap<(i32, Vec<u8>), CancelTarget>>,
}

impl CancelMap {
    fn insert(&self, key: (i32, Vec<u8>), t: CancelTarget) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, t);
    }

    fn remove(&self, key: &(i32, Vec<u8>)) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    fn get(&self, key: &(i32, Vec<u8>)) -> Option<CancelTarget> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }
}

/// Accepts agent connections for `endpoint` (typed name) until shutdown; each session runs
/// on one of `threads`.
pub async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    endpoint: String,
    threads: Arc<SessionThreads>,
) {
    let cancels = Arc::new(CancelMap::default());
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = shared.shutdown.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "set_nodelay failed");
                }
                // The socket moves to the session thread's reactor.
                let stream = match stream.into_std() {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(peer = %peer, error = %e, "postgres connection dropped");
                        continue;
                    }
                };
                let s = shared.clone();
                let ep = endpoint.clone();
                let c = cancels.clone();
                threads.spawn(&shared.tracker, async move {
                    match tokio::net::TcpStream::from_std(stream) {
                        Ok(stream) => startup::handle(stream, peer, s, ep, c).await,
                        Err(e) => {
                            tracing::warn!(peer = %peer, error = %e, "postgres connection dropped")
                        }
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "postgres accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}
