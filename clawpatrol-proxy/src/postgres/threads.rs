//! Session threads: Postgres sessions run on a few single-threaded runtimes, not on the
//! gateway's work-stealing one.
//!
//! A Postgres session is a ping-pong of small reads and writes. On the multi-threaded
//! runtime every readiness event may wake a second worker to steal work, which on a busy
//! machine costs more than the statement's own parsing and deciding (measured with
//! `bench/pgbench.sh`: about 15 µs of CPU per transaction). Each session thread runs a
//! current-thread runtime, like one pgbouncer process per core: it sleeps in `epoll_wait`
//! only when none of its sessions has work. Accepted connections are dealt round-robin.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why the session threads could not start.
#[derive(Debug, thiserror::Error)]
pub enum ThreadsError {
    /// Building a runtime or spawning its thread failed.
    #[error("cannot start a postgres session thread: {0}")]
    Start(#[from] std::io::Error),
    /// The thread ended before handing over its runtime.
    #[error("a postgres session thread ended while starting")]
    Died,
}

/// The session threads; [`SessionThreads::stop`] (or drop) ends them and every task left.
pub struct SessionThreads {
    handles: Vec<Handle>,
    next: AtomicUsize,
    stop: CancellationToken,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for SessionThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionThreads")
            .field("threads", &self.handles.len())
            .finish()
    }
}

impl SessionThreads {
    /// Starts `count` threads (at least one), each running a current-thread runtime.
    pub fn start(count: usize) -> Result<SessionThreads, ThreadsError> {
        let mut pool = SessionThreads {
            handles: Vec::new(),
            next: AtomicUsize::new(0),
            stop: CancellationToken::new(),
            threads: Vec::new(),
        };
        for i in 0..count.max(1) {
            // On an error, dropping `pool` ends the threads started so far.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (tx, rx) = mpsc::channel();
            let token = pool.stop.clone();
            pool.threads.push(
                std::thread::Builder::new()
                    .name(format!("clawpatrol-pg{i}"))
                    .spawn(move || {
                        let _ = tx.send(rt.handle().clone());
                        rt.block_on(token.cancelled());
                        // Dropping the runtime drops the sessions still running on it.
                    })?,
            );
            pool.handles
                .push(rx.recv().map_err(|_| ThreadsError::Died)?);
        }
        Ok(pool)
    }

    /// Runs `fut` on the next thread, tracked by `tracker` (shutdown waits for it).
    pub fn spawn<F>(&self, tracker: &TaskTracker, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // `start` made at least one thread, so the index is in range.
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        tracker.spawn_on(fut, &self.handles[i]);
    }

    /// Ends every thread: sessions still running are dropped (their sockets close).
    pub fn stop(&mut self) {
        self.stop.cancel();
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!("a postgres session thread panicked");
            }
        }
    }
}

impl Drop for SessionThreads {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn tasks_are_dealt_round_robin_and_tracked() {
        let pool = SessionThreads::start(2).unwrap();
        let tracker = TaskTracker::new();
        let names = Arc::new(std::sync::Mutex::new(Vec::new()));
        for _ in 0..4 {
            let names = names.clone();
            pool.spawn(&tracker, async move {
                let name = std::thread::current().name().unwrap_or("").to_string();
                names.lock().unwrap().push(name);
            });
        }
        tracker.close();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(tracker.wait());
        let mut names = names.lock().unwrap().clone();
        names.sort();
        assert_eq!(
            names,
            [
                "clawpatrol-pg0",
                "clawpatrol-pg0",
                "clawpatrol-pg1",
                "clawpatrol-pg1"
            ]
        );
    }

    #[test]
    fn stop_drops_running_sessions() {
        let mut pool = SessionThreads::start(1).unwrap();
        let tracker = TaskTracker::new();
        let (tx, rx) = mpsc::channel::<()>();
        pool.spawn(&tracker, async move {
            let _keep = tx;
            std::future::pending::<()>().await;
        });
        pool.stop();
        // The task was dropped with its runtime: its sender is gone.
        assert!(rx.recv().is_err());
        assert!(tracker.is_empty());
    }
}
