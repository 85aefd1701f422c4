//! The audit database the writer appends to, opened again at its path when its file is
//! deleted, moved or replaced under the gateway (SQLite would go on writing to the file it
//! has open: in WAL mode, rows appended to a deleted file vanish with it).

use std::path::PathBuf;
use std::time::Duration;

use clawpatrol_core::audit::AuditRecord;

use super::store::{AuditError, AuditStore};

/// The writer's audit database: `store` is `None` between closing a store whose file left
/// its path and opening its successor there.
#[derive(Debug)]
pub(crate) struct Target {
    store: Option<AuditStore>,
    path: PathBuf,
    /// A busy timeout set on the store, for its successor too.
    busy: Option<Duration>,
    /// The last store retired left frames in its WAL that its file lacks.
    wal_kept: bool,
}

impl Target {
    /// The target that starts with `store` and follows its path.
    pub(crate) fn new(store: AuditStore) -> Target {
        Target {
            path: store.path().to_path_buf(),
            store: Some(store),
            busy: None,
            wal_kept: false,
        }
    }

    /// Appends `recs` to the audit database at the path. When the file there is no longer
    /// the one the store has open, the store is closed (which checkpoints its WAL into the
    /// old file) and a database is opened (created) at the path. When that happens while the
    /// rows are written, they went to the old file: [`AuditError::Moved`] makes the caller
    /// append them again (the writer treats it as an unavailable database).
    pub(crate) fn append(&mut self, recs: &mut [AuditRecord]) -> Result<(), AuditError> {
        if self.store.as_ref().is_some_and(|s| !s.still_at_path()) {
            tracing::error!(
                path = %self.path.display(),
                "audit database was deleted, moved or replaced under the gateway; rows go to a \
                 new database at its path (a new hash chain)"
            );
            if let Some(old) = self.store.take() {
                self.wal_kept = !retire(old);
            }
        }
        let store = match &mut self.store {
            Some(store) => store,
            None => self.open()?,
        };
        store.append(recs)?;
        if store.still_at_path() {
            Ok(())
        } else {
            Err(AuditError::Moved {
                path: self.path.clone(),
            })
        }
    }

    /// Opens the successor at the path. A `-wal` or `-shm` file left there without its
    /// database belongs to the file that left, and the new database must not take its pages:
    /// the `-shm` (an index, never the only copy of a row) and a `-wal` whose frames are all
    /// in the old file are removed; a `-wal` with frames readers kept from the checkpoint is
    /// renamed aside.
    fn open(&mut self) -> Result<&mut AuditStore, AuditError> {
        if !self.path.exists() {
            for suffix in ["-shm", "-wal"] {
                let mut side = self.path.as_os_str().to_owned();
                side.push(suffix);
                let keep = suffix == "-wal" && self.wal_kept;
                if let Err(e) = clear_leftover(PathBuf::from(side), keep) {
                    tracing::error!(error = %e, "cannot clear a leftover audit file");
                    return Err(AuditError::Moved {
                        path: self.path.clone(),
                    });
                }
            }
        }
        let store = match AuditStore::open(&self.path) {
            Ok(store) => store,
            Err(e) => {
                tracing::error!(
                    path = %self.path.display(),
                    error = %e,
                    "cannot open a new audit database at its path"
                );
                return Err(AuditError::Moved {
                    path: self.path.clone(),
                });
            }
        };
        if let Some(busy) = self.busy {
            store.set_busy_timeout(busy)?;
        }
        tracing::warn!(path = %self.path.display(), "new audit database opened");
        Ok(self.store.insert(store))
    }

    /// Sets the busy timeout of the store and of any successor.
    pub(crate) fn set_busy_timeout(&mut self, timeout: Duration) -> Result<(), AuditError> {
        self.busy = Some(timeout);
        match &self.store {
            Some(store) => store.set_busy_timeout(timeout),
            None => Ok(()),
        }
    }
}

/// Writes what the store holds into its (moved or deleted) file and closes it; false when
/// its WAL still holds frames the file lacks (readers kept them).
fn retire(old: AuditStore) -> bool {
    let complete = match old.checkpoint() {
        Ok(complete) => complete,
        Err(e) => {
            tracing::warn!(error = %e, "cannot checkpoint the audit database that left its path");
            false
        }
    };
    if let Err(e) = old.close() {
        tracing::warn!(error = %e, "closing the audit database that left its path");
    }
    complete
}

/// Removes `side`, or (`keep`) renames it aside with an `.orphaned-<ns>` suffix; a missing
/// file is fine.
fn clear_leftover(side: PathBuf, keep: bool) -> std::io::Result<()> {
    if !side.exists() {
        return Ok(());
    }
    if keep {
        let mut aside = side.clone().into_os_string();
        aside.push(format!(".orphaned-{}", super::store::now_ns()));
        std::fs::rename(&side, &aside)?;
        tracing::warn!(file = ?side, to = ?aside, "the old audit database's WAL still held rows; moved aside");
    } else {
        std::fs::remove_file(&side)?;
    }
    Ok(())
}
