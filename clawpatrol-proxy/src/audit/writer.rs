//! The audit writer: one OS thread owns the [`AuditStore`]; request handlers hand it records
//! through a bounded queue without ever blocking.
//!
//! Connections do not outrun the writer: once half the queue is waiting (the writer is
//! behind: a slow disk, a locked database, a starved CPU), they stop reading new actions
//! until it has caught up ([`AuditHandle::room`]), so the other half absorbs the records of
//! actions already under way. A record that still finds the queue full (many statements
//! pipelined in one write, many connections finishing at once) waits in its connection,
//! which reads and relays nothing meanwhile ([`AuditHandle::record`]): no record is dropped
//! while the writer runs.
//!
//! A database that cannot take rows (locked by another process, disk full, I/O errors) fails
//! closed too: the writer keeps the batch and retries it, with growing pauses, and counts as
//! behind meanwhile, so connections wait instead of acting unaudited. Only a record the
//! database refuses for itself, or rows still unwritable at shutdown, are lost (and counted).
//!
//! A writer thread that dies (a panic) fails closed: from then on the writer counts as
//! behind for good, so connections read no further actions, and [`AuditHandle::writer_down`]
//! tells the gateway to stop instead of serving actions it cannot audit.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clawpatrol_core::audit::AuditRecord;

use super::store::{AuditError, AuditStore};
use super::target::Target;

/// The most records written in one transaction.
const MAX_BATCH: usize = 1024;
/// How long the writer gathers records after the first one before committing them.
const GATHER: std::time::Duration = std::time::Duration::from_millis(5);
/// At most one "record dropped" warning per this interval.
const WARN_EVERY: Duration = Duration::from_secs(1);
/// The first pause before a failed batch is retried; it doubles up to `MAX_RETRY_PAUSE`.
const RETRY_AFTER: Duration = Duration::from_millis(100);
/// The longest pause between attempts while the database is unavailable.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(2);
/// The busy timeout of each remaining attempt once stopping has found the database
/// unavailable.
const STOPPING_BUSY_TIMEOUT: Duration = Duration::from_millis(100);

enum Msg {
    Record(Box<AuditRecord>),
    Shutdown,
    /// Makes the writer thread panic (tests of the fail-closed path).
    #[cfg(test)]
    Panic,
}

#[derive(Debug)]
struct Counters {
    dropped: AtomicU64,
    failed: AtomicU64,
    /// Records queued and not yet taken by the writer.
    queued: AtomicUsize,
    /// Queued records at which connections stop reading new actions.
    high_water: usize,
    /// Times a connection was held back because the writer was behind.
    held_back: AtomicU64,
    /// Woken each time the writer has taken a batch off the queue, and when it dies.
    taken: tokio::sync::Notify,
    /// The writer thread died (panicked): nothing queued from then on is written.
    down: AtomicBool,
    /// Records taken off the queue and not yet handed to the store (the batch being built).
    in_batch: AtomicUsize,
    /// The writer is retrying a batch the database could not take (it counts as behind).
    stalled: AtomicBool,
    /// The gateway is stopping: a batch the database still cannot take is given up.
    stopping: AtomicBool,
    /// Milliseconds after `start` of the last "queue full" warning, plus one (0 = never).
    last_warn_ms: AtomicU64,
    /// The same for the "writer is behind" warning.
    last_behind_ms: AtomicU64,
    start: Instant,
}

/// The cheap, cloneable side of the audit log that request handlers use.
#[derive(Clone)]
pub struct AuditHandle {
    tx: SyncSender<Msg>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for AuditHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditHandle")
            .field("dropped", &self.dropped())
            .field("failed", &self.failed())
            .finish()
    }
}

/// The writer thread; [`AuditWriter::shutdown`] (or drop) drains the queue and flushes.
#[derive(Debug)]
pub struct AuditWriter {
    tx: SyncSender<Msg>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
}

/// Starts the writer thread with a queue of `capacity` records.
pub fn spawn(store: AuditStore, capacity: usize) -> std::io::Result<(AuditHandle, AuditWriter)> {
    let capacity = capacity.max(2);
    let (tx, rx) = sync_channel(capacity);
    let counters = Arc::new(Counters {
        dropped: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        queued: AtomicUsize::new(0),
        high_water: capacity / 2,
        held_back: AtomicU64::new(0),
        taken: tokio::sync::Notify::new(),
        down: AtomicBool::new(false),
        in_batch: AtomicUsize::new(0),
        stalled: AtomicBool::new(false),
        stopping: AtomicBool::new(false),
        last_warn_ms: AtomicU64::new(0),
        last_behind_ms: AtomicU64::new(0),
        start: Instant::now(),
    });
    let thread_counters = Arc::clone(&counters);
    let thread = std::thread::Builder::new()
        .name("clawpatrol-audit".into())
        .spawn(move || {
            let _down = DownOnPanic(&thread_counters);
            run(Target::new(store), rx, &thread_counters);
        })?;
    Ok((
        AuditHandle {
            tx: tx.clone(),
            counters: Arc::clone(&counters),
        },
        AuditWriter {
            tx,
            thread: Some(thread),
            counters,
        },
    ))
}

impl AuditHandle {
    /// Queues a record for writing, waiting while the queue is full: a record is lost only
    /// when the writer has stopped or died, or when this future is dropped before the record
    /// was queued (each is counted as dropped).
    pub async fn record(&self, rec: AuditRecord) {
        let mut one = Unqueued {
            handle: self,
            recs: VecDeque::from([Box::new(rec)]),
        };
        self.record_all(&mut one.recs).await;
    }

    /// Queues `recs` in order, waiting while the queue is full (see [`AuditHandle::record`]).
    /// What is still in `recs` when this future is dropped was not queued: the caller counts
    /// it ([`AuditHandle::count_lost`]).
    pub async fn record_all(&self, recs: &mut VecDeque<Box<AuditRecord>>) {
        while let Some(rec) = recs.pop_front() {
            if let Err(rec) = self.try_record(rec) {
                recs.push_front(rec);
                // A writer that dies never makes room: the record is then counted as dropped.
                tokio::select! {
                    () = self.room() => {}
                    () = self.writer_down() => {}
                }
            }
        }
    }

    /// Queues a record unless the queue is full, when it is handed back. After the writer
    /// has stopped or died the record is dropped and counted.
    pub fn try_record(&self, rec: Box<AuditRecord>) -> Result<(), Box<AuditRecord>> {
        // Counted before the send, so the writer never takes more than was counted.
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        let sent = self.tx.try_send(Msg::Record(rec));
        if sent.is_err() {
            self.counters.queued.fetch_sub(1, Ordering::Relaxed);
        }
        match sent {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(Msg::Record(rec))) if !self.is_down() => Err(rec),
            Err(TrySendError::Full(_)) => {
                self.drop_n(1, "audit writer died; record dropped");
                Ok(())
            }
            Err(TrySendError::Disconnected(_)) => {
                self.drop_n(1, "audit writer stopped; record dropped");
                Ok(())
            }
        }
    }

    /// Counts `n` records lost without reaching the queue (a connection torn down while
    /// its records waited for room).
    pub fn count_lost(&self, n: usize) {
        if n > 0 {
            self.drop_n(
                n,
                "audit records lost: their connection ended while they waited for the writer",
            );
        }
    }

    /// Records lost: sent after the writer stopped or died, or left unqueued by a
    /// connection torn down while they waited for room.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// True while the writer is behind: half the queue or more is waiting for it, it is
    /// retrying rows the database could not take, or its thread has died (for good).
    pub fn behind(&self) -> bool {
        let c = &self.counters;
        c.queued.load(Ordering::Relaxed) >= c.high_water
            || c.stalled.load(Ordering::Relaxed)
            || c.down.load(Ordering::Acquire)
    }

    /// True once the writer thread has died: no record is written any more.
    pub fn is_down(&self) -> bool {
        self.counters.down.load(Ordering::Acquire)
    }

    /// Returns once the writer thread has died (never while it runs).
    pub async fn writer_down(&self) {
        loop {
            let woken = self.counters.taken.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            if self.is_down() {
                return;
            }
            woken.await;
        }
    }

    /// Returns once the writer is not behind (at once when it is not). A connection awaits
    /// this before it reads another action, so that actions are held back rather than left
    /// unaudited when the writer cannot keep up.
    pub async fn room(&self) {
        if !self.behind() {
            return;
        }
        self.note_behind();
        loop {
            // Registered before the check, so a batch taken in between still wakes it.
            let taken = self.counters.taken.notified();
            tokio::pin!(taken);
            taken.as_mut().enable();
            if !self.behind() {
                return;
            }
            taken.await;
        }
    }

    /// Counts a connection held back by a writer that is behind, with a warning at most once
    /// per second.
    fn note_behind(&self) {
        let c = &self.counters;
        let total = c.held_back.fetch_add(1, Ordering::Relaxed) + 1;
        if due(c, &c.last_behind_ms) {
            tracing::warn!(
                queued = c.queued.load(Ordering::Relaxed),
                held_back_total = total,
                "audit writer is behind; connections wait before reading more actions"
            );
        }
    }

    /// Times a connection was held back because the writer was behind.
    pub fn held_back(&self) -> u64 {
        self.counters.held_back.load(Ordering::Relaxed)
    }

    /// Records lost because the database refused them.
    pub fn failed(&self) -> u64 {
        self.counters.failed.load(Ordering::Relaxed)
    }

    /// Counts `n` records as dropped, with a warning at most once per [`WARN_EVERY`].
    fn drop_n(&self, n: usize, what: &'static str) {
        let c = &self.counters;
        let total = c.dropped.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if due(c, &c.last_warn_ms) {
            tracing::warn!(lost = n, dropped_total = total, "{what}");
        }
    }
}

/// Records [`AuditHandle::record`] has not queued yet; counted as lost if dropped so.
struct Unqueued<'a> {
    handle: &'a AuditHandle,
    recs: VecDeque<Box<AuditRecord>>,
}

impl Drop for Unqueued<'_> {
    fn drop(&mut self) {
        self.handle.count_lost(self.recs.len());
    }
}

/// True (and `last` set to now) when the warning that `last` tracks is due: never given, or
/// given at least [`WARN_EVERY`] ago. Exactly one of concurrent callers gets true.
fn due(c: &Counters, last: &AtomicU64) -> bool {
    let now = u64::try_from(c.start.elapsed().as_millis()).unwrap_or(u64::MAX) + 1;
    let prev = last.load(Ordering::Relaxed);
    (prev == 0 || now.saturating_sub(prev) >= WARN_EVERY.as_millis() as u64)
        && last
            .compare_exchange(prev, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
}

impl AuditWriter {
    /// Stops the writer: every record queued before this call is written, then the thread
    /// exits. Records sent afterwards are dropped and counted.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        // From now on a batch the database cannot take is given up, not retried for good.
        self.counters.stopping.store(true, Ordering::Relaxed);
        // Blocks only while the queue is full; the writer is draining it.
        if self.tx.send(Msg::Shutdown).is_err() {
            tracing::error!("audit writer thread ended early");
        }
        if thread.join().is_err() {
            tracing::error!("audit writer thread panicked");
        }
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Marks the writer down when its thread unwinds from a panic, counts the records that die
/// with it (its batch and the queue) as dropped, and wakes everything waiting on it
/// (connections keep waiting: the writer now counts as behind for good).
struct DownOnPanic<'a>(&'a Counters);

impl Drop for DownOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let c = self.0;
            c.down.store(true, Ordering::Release);
            // The queue's records go with the receiver; senders from now on count their own.
            let lost = c.in_batch.swap(0, Ordering::Relaxed) + c.queued.swap(0, Ordering::Relaxed);
            c.dropped.fetch_add(lost as u64, Ordering::Relaxed);
            c.taken.notify_waiters();
            tracing::error!(
                lost,
                "audit writer thread died; its unwritten records are lost and connections read \
                 no further actions (fail closed)"
            );
        }
    }
}

fn run(mut store: Target, rx: Receiver<Msg>, counters: &Counters) {
    let mut batch: Vec<AuditRecord> = Vec::with_capacity(64);
    loop {
        let mut stop = match rx.recv() {
            Ok(Msg::Record(r)) => {
                batch.push(*r);
                counters.in_batch.store(batch.len(), Ordering::Relaxed);
                counters.queued.fetch_sub(1, Ordering::Relaxed);
                false
            }
            Ok(Msg::Shutdown) | Err(_) => true,
            #[cfg(test)]
            Ok(Msg::Panic) => panic!("audit writer: panic requested by a test"),
        };
        // Gather what arrives within a short window (one transaction per batch, at most
        // `MAX_BATCH` records): under load this turns many small commits into few. The
        // writer sleeps through the window instead of waiting on the queue, so a sender never
        // has a waiter to wake: no futex call and no context switch per record.
        if !stop {
            std::thread::sleep(GATHER);
        }
        while !stop {
            match rx.try_recv() {
                Ok(Msg::Record(r)) => {
                    batch.push(*r);
                    counters.in_batch.store(batch.len(), Ordering::Relaxed);
                    counters.queued.fetch_sub(1, Ordering::Relaxed);
                    if batch.len() >= MAX_BATCH {
                        write(&mut store, &mut batch, counters);
                    }
                }
                Ok(Msg::Shutdown) => stop = true,
                #[cfg(test)]
                Ok(Msg::Panic) => panic!("audit writer: panic requested by a test"),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => stop = true,
            }
        }
        write(&mut store, &mut batch, counters);
        if stop {
            tracing::debug!("audit writer stopped");
            return;
        }
    }
}

/// Writes and clears the batch. While the database is unavailable the batch is retried (the
/// writer counts as behind meanwhile) until it goes in or the gateway stops. When the batch
/// fails for another reason, its records are retried one per transaction after a pause, so
/// one bad record loses no others; records that still fail are logged and counted.
fn write(store: &mut Target, batch: &mut Vec<AuditRecord>, counters: &Counters) {
    // The batch is off the queue: connections held back may look again.
    counters.taken.notify_waiters();
    if batch.is_empty() {
        return;
    }
    match append_retrying(store, batch, counters) {
        Ok(()) => {}
        Err(e) if e.is_unavailable() => {
            // Only when stopping: the database still cannot take them.
            counters
                .failed
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            tracing::error!(
                error = %e,
                records = batch.len(),
                "audit records lost: the database was still unavailable at shutdown"
            );
        }
        Err(e) => {
            tracing::warn!(error = %e, records = batch.len(), "audit write failed; retrying row by row");
            std::thread::sleep(RETRY_AFTER);
            for rec in batch.iter_mut() {
                if let Err(e) = append_retrying(store, std::slice::from_mut(rec), counters) {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %e, action_id = %rec.action_id, "audit record lost");
                }
            }
        }
    }
    batch.clear();
    counters.in_batch.store(0, Ordering::Relaxed);
}

/// Appends `recs`; while the database is unavailable (and the gateway is not stopping) the
/// writer counts as behind, and the append is retried with growing pauses: connections wait
/// rather than act unaudited. Errors of the records themselves are returned at once.
fn append_retrying(
    store: &mut Target,
    recs: &mut [AuditRecord],
    counters: &Counters,
) -> Result<(), AuditError> {
    let mut pause = RETRY_AFTER;
    let result = loop {
        match store.append(recs) {
            Err(e) if e.is_unavailable() && !counters.stopping.load(Ordering::Relaxed) => {
                if !counters.stalled.swap(true, Ordering::Relaxed) {
                    tracing::error!(
                        error = %e,
                        records = recs.len(),
                        "audit database unavailable; connections wait until their rows are written"
                    );
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(MAX_RETRY_PAUSE);
            }
            other => break other,
        }
    };
    if counters.stalled.swap(false, Ordering::Relaxed) {
        if result.is_ok() {
            tracing::warn!("audit database writable again; connections go on");
        }
        counters.taken.notify_waiters();
    }
    if result.as_ref().is_err_and(AuditError::is_unavailable) {
        // Stopping with the database still unavailable: the rest of the queue gets one short
        // try each instead of the full busy timeout, so shutdown ends soon.
        if let Err(e) = store.set_busy_timeout(STOPPING_BUSY_TIMEOUT) {
            tracing::debug!(error = %e, "cannot shorten the audit database's busy timeout");
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn temp_db(name: &str) -> std::path::PathBuf {
        std::env::temp_dir()
            .join(format!(
                "clawpatrol-writer-{name}-{}-{}",
                std::process::id(),
                super::super::store::now_ns()
            ))
            .join("clawpatrol.db")
    }

    /// Queues `r`, which must find room (or a stopped writer, which counts it as dropped).
    fn put(handle: &AuditHandle, r: AuditRecord) {
        assert!(handle.try_record(Box::new(r)).is_ok(), "the queue was full");
    }

    fn rec(n: usize) -> AuditRecord {
        AuditRecord {
            action_id: format!("a-{n}"),
            action: "allow".into(),
            extra: serde_json::json!({}),
            ..Default::default()
        }
    }

    #[test]
    fn shutdown_drains_everything_queued() {
        let path = temp_db("drain");
        let (handle, writer) = spawn(AuditStore::open(&path).unwrap(), 10_000).unwrap();
        let clones: Vec<AuditHandle> = (0..4).map(|_| handle.clone()).collect();
        let threads: Vec<_> = clones
            .into_iter()
            .enumerate()
            .map(|(t, h)| {
                std::thread::spawn(move || {
                    for i in 0..500 {
                        put(&h, rec(t * 1000 + i));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        writer.shutdown();
        assert_eq!(handle.dropped(), 0);
        assert_eq!(handle.failed(), 0);
        put(&handle, rec(99_999));
        assert_eq!(
            handle.dropped(),
            1,
            "after shutdown records are counted as dropped"
        );
        let store = AuditStore::open_existing(&path).unwrap();
        assert_eq!(store.verify().unwrap(), 2000);
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }

    #[test]
    fn a_bad_record_loses_only_itself() {
        let path = temp_db("bad");
        let (handle, writer) = spawn(AuditStore::open(&path).unwrap(), 100).unwrap();
        let mut bad = rec(2);
        bad.bytes_in = u64::MAX;
        // Queued together so that they share a batch when the writer picks them up.
        for r in [rec(1), bad, rec(3)] {
            put(&handle, r);
        }
        writer.shutdown();
        assert_eq!(handle.failed(), 1);
        let store = AuditStore::open_existing(&path).unwrap();
        assert_eq!(store.verify().unwrap(), 2);
        assert!(store.get("a-3").unwrap().is_some());
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }

    #[test]
    fn connections_are_held_back_while_the_writer_is_behind() {
        // The database's write lock is held, so the writer stalls on its first batch.
        let (path, blocker, handle, writer) = locked_writer("behind", 8, None);
        put(&handle, rec(0));
        std::thread::sleep(Duration::from_millis(300));
        // The writer holds record 0 and waits for the lock; the queue fills behind it.
        for i in 1..4 {
            put(&handle, rec(i));
        }
        assert!(!handle.behind(), "3 of 8 queued");
        assert!(room_within(&handle, 10));
        assert_eq!(handle.held_back(), 0);
        put(&handle, rec(4));
        assert!(handle.behind(), "4 of 8 queued: half");
        assert!(
            !room_within(&handle, 200),
            "room() returned while the writer was behind"
        );
        assert_eq!(handle.held_back(), 1);
        blocker.execute_batch("COMMIT").unwrap();
        drop(blocker);
        assert!(
            room_within(&handle, 10_000),
            "room() did not return after the writer caught up"
        );
        assert!(!handle.behind());
        writer.shutdown();
        assert_eq!(handle.dropped(), 0);
        let stored = AuditStore::open_existing(&path).unwrap().verify().unwrap();
        assert_eq!(stored, 5);
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }

    #[test]
    fn a_dead_writer_holds_connections_back_for_good_and_says_so() {
        let path = temp_db("dead");
        let (handle, writer) = spawn(AuditStore::open(&path).unwrap(), 64).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        put(&handle, rec(0));
        assert!(room_within(&handle, 10));
        assert!(!handle.is_down());
        // A waiter registered before the death is woken by it.
        let down = rt.block_on(async {
            let waiter = handle.writer_down();
            tokio::pin!(waiter);
            let quiet = tokio::time::timeout(Duration::from_millis(50), waiter.as_mut())
                .await
                .is_err();
            assert!(quiet, "writer_down() returned while the writer ran");
            // Records the writer takes into its batch (or leaves queued) before it dies.
            put(&handle, rec(1));
            put(&handle, rec(2));
            handle.tx.send(Msg::Panic).unwrap();
            tokio::time::timeout(Duration::from_secs(10), waiter).await
        });
        assert!(
            down.is_ok(),
            "writer_down() did not return after the writer died"
        );
        assert!(handle.is_down());
        assert!(handle.behind(), "nothing queued, but the writer is dead");
        assert!(
            !room_within(&handle, 200),
            "room() returned although no record can be written any more"
        );
        put(&handle, rec(3));
        writer.shutdown();
        let stored = AuditStore::open_existing(&path).unwrap().verify().unwrap();
        assert!(stored >= 1, "record 0 was written before the death");
        assert_eq!(
            stored + handle.dropped(),
            4,
            "every record is stored or counted as dropped ({stored} stored)"
        );
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }

    /// A writer with a queue of `capacity` over a database whose write lock another
    /// connection (the one returned) holds; `busy` shortens the store's busy timeout.
    fn locked_writer(
        name: &str,
        capacity: usize,
        busy: Option<Duration>,
    ) -> (PathBuf, rusqlite::Connection, AuditHandle, AuditWriter) {
        let path = temp_db(name);
        let store = AuditStore::open(&path).unwrap();
        if let Some(busy) = busy {
            store.set_busy_timeout(busy).unwrap();
        }
        let blocker = rusqlite::Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let (handle, writer) = spawn(store, capacity).unwrap();
        (path, blocker, handle, writer)
    }

    /// True when `room()` returns within `ms` milliseconds.
    fn room_within(handle: &AuditHandle, ms: u64) -> bool {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(async {
                tokio::time::timeout(Duration::from_millis(ms), handle.room())
                    .await
                    .is_ok()
            })
    }

    fn wait_behind(handle: &AuditHandle) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !handle.behind() {
            assert!(
                Instant::now() < deadline,
                "the writer never counted as behind (failed: {})",
                handle.failed()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn an_unavailable_database_holds_connections_back_and_loses_nothing() {
        let (path, blocker, handle, writer) =
            locked_writer("locked", 64, Some(Duration::from_millis(100)));
        for i in 0..3 {
            put(&handle, rec(i));
        }
        // Three records of 64 queued: only the unavailable database makes the writer behind.
        wait_behind(&handle);
        // Many busy timeouts later nothing is lost and connections still wait.
        assert!(
            !room_within(&handle, 1000),
            "room() returned while the rows could not be written"
        );
        assert_eq!(handle.failed(), 0);
        blocker.execute_batch("COMMIT").unwrap();
        drop(blocker);
        assert!(
            room_within(&handle, 10_000),
            "room() did not return once the database was back"
        );
        assert!(!handle.behind());
        writer.shutdown();
        assert_eq!((handle.failed(), handle.dropped()), (0, 0));
        let stored = AuditStore::open_existing(&path).unwrap().verify().unwrap();
        assert_eq!(stored, 3);
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }

    #[test]
    fn shutdown_gives_up_rows_the_database_still_cannot_take() {
        let (path, blocker, handle, writer) =
            locked_writer("locked-stop", 64, Some(Duration::from_millis(100)));
        put(&handle, rec(0));
        put(&handle, rec(1));
        wait_behind(&handle);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            writer.shutdown();
            let _ = tx.send(());
        });
        assert!(
            rx.recv_timeout(Duration::from_secs(20)).is_ok(),
            "shutdown hung on an unavailable database"
        );
        assert_eq!(handle.failed(), 2, "the rows given up are counted");
        blocker.execute_batch("COMMIT").unwrap();
        drop(blocker);
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }

    /// Waits until the database at `path` holds `n` rows.
    fn wait_stored(path: &std::path::Path, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stored = AuditStore::open_existing(path).and_then(|s| s.verify());
            if stored.as_ref().is_ok_and(|s| *s >= n) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{n} rows never stored: {stored:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_database_deleted_or_moved_under_the_writer_is_opened_again_and_loses_nothing() {
        for how in ["delete", "rename", "remove-dir", "replace"] {
            let path = temp_db(how);
            let (handle, writer) = spawn(AuditStore::open(&path).unwrap(), 64).unwrap();
            put(&handle, rec(0));
            wait_stored(&path, 1);
            let moved = path.with_extension("moved");
            // A database of its own (closed, so it has no WAL) put in the live one's place.
            let restored = path.with_extension("restored");
            let mut other = AuditStore::open(&restored).unwrap();
            other
                .append(&mut (100..105).map(rec).collect::<Vec<_>>())
                .unwrap();
            other.close().unwrap();
            match how {
                "delete" => std::fs::remove_file(&path).unwrap(),
                "rename" => std::fs::rename(&path, &moved).unwrap(),
                "replace" => std::fs::rename(&restored, &path).unwrap(),
                _ => std::fs::remove_dir_all(path.parent().unwrap()).unwrap(),
            }
            // Nothing else opens the path before the writer has noticed: a connection opened
            // there now would take the old database's WAL as the new file's.
            put(&handle, rec(1));
            std::thread::sleep(Duration::from_millis(100));
            put(&handle, rec(2));
            writer.shutdown();
            assert_eq!((handle.dropped(), handle.failed()), (0, 0), "{how}");
            let store = AuditStore::open_existing(&path).unwrap();
            let before = if how == "replace" { 5 } else { 0 };
            assert_eq!(
                store.verify().unwrap(),
                before + 2,
                "{how}: the chain at the path"
            );
            assert!(store.get("a-1").unwrap().is_some() && store.get("a-2").unwrap().is_some());
            assert!(
                store.get("a-0").unwrap().is_none(),
                "{how}: the old file's row"
            );
            if how == "replace" {
                assert!(
                    store.get("a-100").unwrap().is_some(),
                    "the replacement's rows"
                );
            }
            if how == "rename" {
                let old = AuditStore::open_existing(&moved).unwrap();
                assert_eq!(old.verify().unwrap(), 1, "the moved file keeps its rows");
                assert!(old.get("a-0").unwrap().is_some());
            }
            std::fs::remove_dir_all(path.parent().unwrap()).ok();
        }
    }

    #[test]
    fn wal_frames_a_reader_kept_from_the_moved_database_are_moved_aside_not_taken() {
        let path = temp_db("reader");
        let (handle, writer) = spawn(AuditStore::open(&path).unwrap(), 64).unwrap();
        put(&handle, rec(0));
        wait_stored(&path, 1);
        // A reader's snapshot keeps later frames in the WAL through any checkpoint.
        let reader = rusqlite::Connection::open(&path).unwrap();
        reader
            .execute_batch("BEGIN; SELECT count(*) FROM actions;")
            .unwrap();
        put(&handle, rec(1));
        wait_stored(&path, 2);
        let moved = path.with_extension("moved");
        std::fs::rename(&path, &moved).unwrap();
        put(&handle, rec(2));
        writer.shutdown();
        drop(reader);
        assert_eq!((handle.dropped(), handle.failed()), (0, 0));
        let store = AuditStore::open_existing(&path).unwrap();
        assert_eq!(
            store.verify().unwrap(),
            1,
            "only record 2 is in the new database"
        );
        assert!(store.get("a-2").unwrap().is_some());
        let dir = path.parent().unwrap();
        let aside: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("clawpatrol.db-wal.orphaned-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        // The moved file with its WAL beside it holds both earlier records.
        std::fs::rename(dir.join(&aside[0]), dir.join("clawpatrol.moved-wal")).unwrap();
        let old = AuditStore::open_existing(&moved).unwrap();
        assert_eq!(old.verify().unwrap(), 2);
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_record_whose_wait_is_abandoned_is_counted_as_dropped() {
        let (path, blocker, handle, writer) = locked_writer("abandoned", 4, None);
        put(&handle, rec(0));
        std::thread::sleep(Duration::from_millis(300));
        for i in 1..5 {
            put(&handle, rec(i));
        }
        let waited = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(async {
                tokio::time::timeout(Duration::from_millis(300), handle.record(rec(5))).await
            });
        assert!(
            waited.is_err(),
            "record() returned while the queue was full"
        );
        assert_eq!(handle.dropped(), 1, "the abandoned record is counted");
        blocker.execute_batch("COMMIT").unwrap();
        drop(blocker);
        writer.shutdown();
        let stored = AuditStore::open_existing(&path).unwrap().verify().unwrap();
        assert_eq!((stored, handle.dropped(), handle.failed()), (5, 1, 0));
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }

    #[test]
    fn a_record_waiting_for_room_is_counted_when_the_writer_dies() {
        // The writer is stuck in the database lock with record 0; a panic request and
        // record 1 fill its queue of 2, so record 2 waits for room.
        let (path, blocker, handle, writer) = locked_writer("dies-full", 2, None);
        put(&handle, rec(0));
        std::thread::sleep(Duration::from_millis(300));
        handle.tx.send(Msg::Panic).unwrap();
        put(&handle, rec(1));
        let waiter = handle.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(waiter.record(rec(2)));
            let _ = tx.send(());
        });
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        // Record 0 goes in, then the writer takes the panic request and dies.
        blocker.execute_batch("COMMIT").unwrap();
        drop(blocker);
        assert!(
            rx.recv_timeout(Duration::from_secs(10)).is_ok(),
            "record() kept waiting for a writer that died"
        );
        writer.shutdown();
        let stored = AuditStore::open_existing(&path).unwrap().verify().unwrap();
        assert_eq!((stored, handle.dropped()), (1, 2));
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }

    #[test]
    fn a_full_queue_hands_records_back_and_record_waits_for_room() {
        // The database's write lock is held, so the writer stalls on its first batch.
        let (path, blocker, handle, writer) = locked_writer("full", 4, None);
        // The first record sends the writer into the database lock; while it waits there the
        // queue takes 4 records and hands the next one back instead of blocking or dropping.
        put(&handle, rec(0));
        std::thread::sleep(Duration::from_millis(300));
        for i in 1..5 {
            put(&handle, rec(i));
        }
        let back = handle.try_record(Box::new(rec(5)));
        assert_eq!(back.map_err(|r| r.action_id), Err("a-5".to_string()));
        // `record` waits (the connection reads nothing meanwhile) until the writer has room.
        let waiter = handle.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let sender = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let mut rest: VecDeque<Box<AuditRecord>> =
                (5..1000).map(|i| Box::new(rec(i))).collect();
            rt.block_on(waiter.record_all(&mut rest));
            let _ = tx.send(rest.len());
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(500)).is_err(),
            "record_all returned while the queue was full"
        );
        blocker.execute_batch("COMMIT").unwrap();
        drop(blocker);
        assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(0));
        sender.join().unwrap();
        writer.shutdown();
        assert_eq!((handle.dropped(), handle.failed()), (0, 0));
        let stored = AuditStore::open_existing(&path).unwrap().verify().unwrap();
        assert_eq!(stored, 1000);
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }
}
