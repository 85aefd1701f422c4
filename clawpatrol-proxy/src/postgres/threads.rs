//! Session threads: Postgres sessions run on a few single-threaded runtimes, not on the
//! gateway's work-stealing one.
//!
//! A Postgres session is a ping-pong of small reads and writes. On the multi-threaded
//! runtime every readiness event may wake a second worker to steal work, which on a busy
//! machine costs more than the statement's own parsing and deciding (measured with
//! `bench/pgbench.sh`: about 15 µs of CPU per transaction). Each session thread runs a
//! current-thread runtime, like one pgbouncer process per core: it sleeps in `epoll_wait`
//! only when none of its sessions has work. Accepted connections are dealt round-robin.
//!
//! Optional busy polling (`gateway --postgres-busy-poll`): after a session's last read the
//! thread keeps polling its sockets (non-blocking) for a set time before it sleeps. When
//! the gateway has cores of its own this saves waking an idle CPU for every message, which
//! on a virtual machine costs the database's CPU an inter-processor interrupt and the
//! session the wake-up latency; when the gateway shares cores with the database or the
//! agents, the polling takes CPU from them, so it is off by default.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// The longest busy-polling window accepted, in microseconds.
pub const MAX_BUSY_POLL_US: u32 = 10_000;

/// The session threads; [`SessionThreads::stop`] (or drop) ends them and every task left.
pub struct SessionThreads {
    handles: Vec<Handle>,
    next: AtomicUsize,
    stop: CancellationToken,
    threads: Vec<JoinHandle<()>>,
    /// Non-blocking polls made while busy polling, one counter per thread (for tests and
    /// diagnostics).
    polls: Vec<Arc<PollCount>>,
}

/// A thread's busy-poll counter, alone on its cache line so that polling threads do not
/// contend for it.
#[derive(Default)]
#[repr(align(128))]
struct PollCount(AtomicU64);

/// One thread's busy-polling state, shared by its poller and its sessions.
struct BusyPoll {
    /// How long to keep polling after the last activity.
    window: Duration,
    /// When a session on this thread last read something.
    last: Cell<Instant>,
    /// The poller's waker while it sleeps (no activity within the window).
    sleeping: RefCell<Option<Waker>>,
}

thread_local! {
    /// This thread's busy-polling state; `None` on threads that do not busy-poll.
    static BUSY_POLL: RefCell<Option<Rc<BusyPoll>>> = const { RefCell::new(None) };
}

/// Tells the current session thread's busy poller that a session just read something, so
/// the thread keeps polling for the next message instead of sleeping. Does nothing on a
/// thread without busy polling.
pub fn active() {
    BUSY_POLL.with(|b| {
        if let Some(bp) = b.borrow().as_ref() {
            bp.last.set(Instant::now());
            if let Some(w) = bp.sleeping.borrow_mut().take() {
                w.wake();
            }
        }
    });
}

/// Polls the thread's sockets without blocking for as long as a session was active within
/// the window, then sleeps until [`active`] is called again. Each round yields to the
/// runtime, which then polls for I/O with a zero timeout instead of blocking in the kernel.
async fn poll_while_active(bp: Rc<BusyPoll>, polls: Arc<PollCount>) {
    loop {
        if bp.last.get().elapsed() < bp.window {
            polls.0.fetch_add(1, Ordering::Relaxed);
            tokio::task::yield_now().await;
            continue;
        }
        std::future::poll_fn(|cx| {
            if bp.last.get().elapsed() < bp.window {
                Poll::Ready(())
            } else {
                *bp.sleeping.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
    }
}

impl std::fmt::Debug for SessionThreads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionThreads")
            .field("threads", &self.handles.len())
            .finish()
    }
}

impl SessionThreads {
    /// Starts `count` threads (at least one), each running a current-thread runtime, without
    /// busy polling.
    pub fn start(count: usize) -> Result<SessionThreads, ThreadsError> {
        SessionThreads::start_with(count, Duration::ZERO)
    }

    /// Starts `count` threads (at least one); each keeps polling for I/O for `busy_poll`
    /// after a session's last read before it sleeps (zero: never busy-polls).
    pub fn start_with(count: usize, busy_poll: Duration) -> Result<SessionThreads, ThreadsError> {
        let mut pool = SessionThreads {
            handles: Vec::new(),
            next: AtomicUsize::new(0),
            stop: CancellationToken::new(),
            threads: Vec::new(),
            polls: Vec::new(),
        };
        for i in 0..count.max(1) {
            // On an error, dropping `pool` ends the threads started so far.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (tx, rx) = mpsc::channel();
            let token = pool.stop.clone();
            let polls = Arc::new(PollCount::default());
            pool.polls.push(polls.clone());
            pool.threads.push(
                std::thread::Builder::new()
                    .name(format!("clawpatrol-pg{i}"))
                    .spawn(move || {
                        let _ = tx.send(rt.handle().clone());
                        if busy_poll.is_zero() {
                            rt.block_on(token.cancelled());
                        } else {
                            let bp = Rc::new(BusyPoll {
                                window: busy_poll,
                                // Starts asleep: nothing has happened yet.
                                last: Cell::new(
                                    Instant::now()
                                        .checked_sub(busy_poll)
                                        .unwrap_or_else(Instant::now),
                                ),
                                sleeping: RefCell::new(None),
                            });
                            BUSY_POLL.with(|b| *b.borrow_mut() = Some(bp.clone()));
                            rt.block_on(async {
                                tokio::select! {
                                    () = token.cancelled() => {}
                                    () = poll_while_active(bp, polls) => {}
                                }
                            });
                        }
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

    /// Non-blocking I/O polls made by busy polling so far, over all threads.
    pub fn busy_polls(&self) -> u64 {
        self.polls.iter().map(|c| c.0.load(Ordering::Relaxed)).sum()
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

    /// Waits until `polls` stays the same for 100 ms; false if it is still moving after 10 s.
    fn settles(pool: &SessionThreads) -> bool {
        let mut last = pool.busy_polls();
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(100));
            let now = pool.busy_polls();
            if now == last {
                return true;
            }
            last = now;
        }
        false
    }

    /// Waits (at most 10 s) until `polls` exceeds `than`.
    fn rises_above(pool: &SessionThreads, than: u64) -> bool {
        for _ in 0..1000 {
            if pool.busy_polls() > than {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn busy_polling_follows_activity_and_then_sleeps() {
        let pool = SessionThreads::start_with(1, Duration::from_millis(50)).unwrap();
        let tracker = TaskTracker::new();
        // Nothing has happened yet: the thread sleeps.
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(pool.busy_polls(), 0);
        for round in 0..2 {
            let before = pool.busy_polls();
            pool.spawn(&tracker, async { active() });
            assert!(
                rises_above(&pool, before),
                "round {round}: no polling after activity"
            );
            assert!(
                settles(&pool),
                "round {round}: still polling long after the window"
            );
        }
    }

    #[test]
    fn without_busy_polling_activity_polls_nothing() {
        let pool = SessionThreads::start(1).unwrap();
        let tracker = TaskTracker::new();
        let (tx, rx) = mpsc::channel();
        pool.spawn(&tracker, async move {
            active();
            let _ = tx.send(());
        });
        rx.recv().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(pool.busy_polls(), 0);
    }

    #[test]
    fn stop_ends_busy_polling_threads() {
        let mut pool = SessionThreads::start_with(1, Duration::from_millis(10_000)).unwrap();
        let tracker = TaskTracker::new();
        pool.spawn(&tracker, async { active() });
        assert!(rises_above(&pool, 0));
        // The thread is polling (for 10 s more); stop still ends it at once.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            pool.stop();
            let _ = tx.send(pool.busy_polls());
        });
        let after = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("stop() did not end a polling thread");
        assert!(after > 0);
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
