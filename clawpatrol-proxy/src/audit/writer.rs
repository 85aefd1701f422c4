//! The audit writer: one OS thread owns the [`AuditStore`]; request handlers hand it records
//! through a bounded queue without ever blocking (overflow is dropped and counted).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clawpatrol_core::audit::AuditRecord;

use super::store::AuditStore;

/// The most records written in one transaction.
const MAX_BATCH: usize = 1024;
/// How long the writer gathers records after the first one before committing them.
const GATHER: std::time::Duration = std::time::Duration::from_millis(5);
/// At most one "queue full" warning per this interval.
const WARN_EVERY: Duration = Duration::from_secs(1);
/// A failed batch is retried once after this pause.
const RETRY_AFTER: Duration = Duration::from_millis(100);

enum Msg {
    Record(Box<AuditRecord>),
    Shutdown,
}

struct Counters {
    dropped: AtomicU64,
    failed: AtomicU64,
    /// Milliseconds after `start` of the last "queue full" warning, plus one (0 = never).
    last_warn_ms: AtomicU64,
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
}

/// Starts the writer thread with a queue of `capacity` records.
pub fn spawn(store: AuditStore, capacity: usize) -> std::io::Result<(AuditHandle, AuditWriter)> {
    let (tx, rx) = sync_channel(capacity.max(1));
    let counters = Arc::new(Counters {
        dropped: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        last_warn_ms: AtomicU64::new(0),
        start: Instant::now(),
    });
    let thread_counters = Arc::clone(&counters);
    let thread = std::thread::Builder::new()
        .name("clawpatrol-audit".into())
        .spawn(move || run(store, rx, &thread_counters))?;
    Ok((
        AuditHandle {
            tx: tx.clone(),
            counters,
        },
        AuditWriter {
            tx,
            thread: Some(thread),
        },
    ))
}

impl AuditHandle {
    /// Queues a record for writing; never blocks. When the queue is full (or the writer has
    /// stopped) the record is dropped and counted.
    pub fn record(&self, rec: AuditRecord) {
        match self.tx.try_send(Msg::Record(Box::new(rec))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => self.drop_one("audit queue full; record dropped"),
            Err(TrySendError::Disconnected(_)) => {
                self.drop_one("audit writer stopped; record dropped")
            }
        }
    }

    /// Records dropped because the queue was full or the writer had stopped.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Records lost because the database refused them.
    pub fn failed(&self) -> u64 {
        self.counters.failed.load(Ordering::Relaxed)
    }

    fn drop_one(&self, what: &'static str) {
        let c = &self.counters;
        let total = c.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        let now = u64::try_from(c.start.elapsed().as_millis()).unwrap_or(u64::MAX) + 1;
        let last = c.last_warn_ms.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= WARN_EVERY.as_millis() as u64;
        if due
            && c.last_warn_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(dropped_total = total, "{what}");
        }
    }
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

fn run(mut store: AuditStore, rx: Receiver<Msg>, counters: &Counters) {
    let mut batch: Vec<AuditRecord> = Vec::with_capacity(64);
    loop {
        let mut stop = match rx.recv() {
            Ok(Msg::Record(r)) => {
                batch.push(*r);
                false
            }
            Ok(Msg::Shutdown) | Err(_) => true,
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
                    if batch.len() >= MAX_BATCH {
                        write(&mut store, &mut batch, counters);
                    }
                }
                Ok(Msg::Shutdown) => stop = true,
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

/// Writes and clears the batch. When the batch's transaction fails, its records are retried
/// one per transaction after a pause, so one bad record (or a passing lock) loses no others;
/// records that still fail are logged and counted.
fn write(store: &mut AuditStore, batch: &mut Vec<AuditRecord>, counters: &Counters) {
    if batch.is_empty() {
        return;
    }
    if let Err(e) = store.append(batch) {
        tracing::warn!(error = %e, records = batch.len(), "audit write failed; retrying row by row");
        std::thread::sleep(RETRY_AFTER);
        for rec in batch.iter_mut() {
            if let Err(e) = store.append(std::slice::from_mut(rec)) {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(error = %e, action_id = %rec.action_id, "audit record lost");
            }
        }
    }
    batch.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_db(name: &str) -> std::path::PathBuf {
        std::env::temp_dir()
            .join(format!(
                "clawpatrol-writer-{name}-{}-{}",
                std::process::id(),
                super::super::store::now_ns()
            ))
            .join("clawpatrol.db")
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
                        h.record(rec(t * 1000 + i));
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
        handle.record(rec(99_999));
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
            handle.record(r);
        }
        writer.shutdown();
        assert_eq!(handle.failed(), 1);
        let store = AuditStore::open_existing(&path).unwrap();
        assert_eq!(store.verify().unwrap(), 2);
        assert!(store.get("a-3").unwrap().is_some());
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }

    #[test]
    fn a_full_queue_drops_and_counts_without_blocking() {
        let path = temp_db("full");
        let store = AuditStore::open(&path).unwrap();
        // Hold the database's write lock so the writer stalls on its first batch.
        let blocker = rusqlite::Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let (handle, writer) = spawn(store, 4).unwrap();
        // The first record sends the writer into the database lock; while it waits there the
        // queue holds 4 records, and a blocking record() would hang here instead of dropping.
        handle.record(rec(0));
        std::thread::sleep(Duration::from_millis(300));
        for i in 1..1000 {
            handle.record(rec(i));
        }
        let dropped = handle.dropped();
        assert!(dropped >= 1000 - 1 - 4, "dropped {dropped}");
        blocker.execute_batch("COMMIT").unwrap();
        drop(blocker);
        writer.shutdown();
        let stored = AuditStore::open_existing(&path).unwrap().verify().unwrap();
        assert_eq!(stored + dropped + handle.failed(), 1000);
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }
}
