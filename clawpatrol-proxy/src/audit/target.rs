//! The audit database the writer appends to, opened again at its path when its file is
//! deleted, moved or replaced under the gateway (SQLite would go on writing to the file it
//! has open: in WAL mode, rows appended to a deleted file vanish with it).

use std::path::PathBuf;
use std::time::Duration;

use clawpatrol_core::audit::AuditRecord;

use super::store::{AuditError, AuditStore};

/// The writer's audit database: `store` is `None` between closing a store whose file left
/// its path and opening the database at the path.
#[derive(Debug)]
pub(crate) struct Target {
    store: Option<AuditStore>,
    path: PathBuf,
    /// A busy timeout set on the store, for its successor too.
    busy: Option<Duration>,
    /// A store was retired and the `-wal`/`-shm` files it left at the path are not cleared
    /// yet: no database may be opened there before they are.
    leftovers: bool,
}

impl Target {
    /// The target that starts with `store` and follows its path.
    pub(crate) fn new(store: AuditStore) -> Target {
        Target {
            path: store.path().to_path_buf(),
            store: Some(store),
            busy: None,
            leftovers: false,
        }
    }

    /// Appends `recs` to the audit database at the path. When the file there is no longer
    /// the one the store has open, the store is checkpointed into its old file and closed,
    /// its `-wal`/`-shm` files at the path are cleared, and the database at the path is
    /// opened (created when none is there). When that happens while the rows are written,
    /// they went to the old file: [`AuditError::Moved`] makes the caller append them again
    /// (the writer treats it as an unavailable database).
    pub(crate) fn append(&mut self, recs: &mut [AuditRecord]) -> Result<(), AuditError> {
        if self.store.as_ref().is_some_and(|s| !s.still_at_path()) {
            tracing::error!(
                path = %self.path.display(),
                "audit database was deleted, moved or replaced under the gateway; rows go to \
                 the database at its path from now on"
            );
            if let Some(old) = self.store.take() {
                retire(old);
                self.leftovers = true;
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

    /// Opens the database at the path, once the retired store's leftovers are cleared.
    fn open(&mut self) -> Result<&mut AuditStore, AuditError> {
        let moved = |path: &PathBuf| AuditError::Moved { path: path.clone() };
        if self.leftovers {
            if let Err(e) = clear_leftovers(&self.path) {
                tracing::error!(error = %e, "cannot clear the old audit database's WAL files");
                return Err(moved(&self.path));
            }
            self.leftovers = false;
        }
        let store = match AuditStore::open(&self.path) {
            Ok(store) => store,
            Err(e) => {
                tracing::error!(
                    path = %self.path.display(),
                    error = %e,
                    "cannot open the audit database at its path"
                );
                return Err(moved(&self.path));
            }
        };
        if let Some(busy) = self.busy {
            store.set_busy_timeout(busy)?;
        }
        tracing::warn!(path = %self.path.display(), "audit database opened again at its path");
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

/// Writes what the store holds into its (moved, replaced or deleted) file and closes it.
/// SQLite does neither on close once the file has moved, and leaves its `-wal` and `-shm` at
/// the path.
fn retire(old: AuditStore) {
    match old.checkpoint() {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            "readers kept some frames of the audit database that left its path in its WAL file"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "cannot checkpoint the audit database that left its path")
        }
    }
    if let Err(e) = old.close() {
        tracing::warn!(error = %e, "closing the audit database that left its path");
    }
}

/// Clears the `-wal` and `-shm` files a retired store left at `path`, which a database
/// opened there would otherwise take as its own (laying the old pages over it): the `-shm`
/// (an index, never the only copy of a row) and an empty `-wal` are removed; a `-wal` with
/// frames is renamed aside with an `.orphaned-<ns>` suffix, never deleted (it may hold the
/// only copy of rows a reader kept from the checkpoint, or of a deleted file's rows).
fn clear_leftovers(path: &std::path::Path) -> std::io::Result<()> {
    for suffix in ["-shm", "-wal"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = PathBuf::from(side);
        let len = match std::fs::metadata(&side) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if suffix == "-wal" && len > 0 {
            let mut aside = side.clone().into_os_string();
            aside.push(format!(".orphaned-{}", super::store::now_ns()));
            std::fs::rename(&side, &aside)?;
            tracing::warn!(file = ?side, to = ?aside, "the old audit database's WAL file was moved aside");
        } else {
            std::fs::remove_file(&side)?;
        }
    }
    Ok(())
}
