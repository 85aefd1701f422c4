//! Hot reload (reference §9.7, DESIGN §3): poll the config file (or every `*.hcl` of a config
//! directory) for changes and listen for SIGHUP; a valid new config is swapped atomically,
//! an invalid one is refused and the old policy stays in force.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clawpatrol_core::Policy;
use sha2::{Digest, Sha256};
use tokio::signal::unix::Signal;

use crate::runtime::Shared;

/// Content fingerprints of the files that make up a config.
type Snapshot = BTreeMap<PathBuf, [u8; 32]>;

/// Fingerprints the config: the file, or every `*.hcl` file of the directory.
pub fn snapshot(path: &Path) -> Snapshot {
    let mut files = Vec::new();
    if path.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "hcl") {
                    files.push(p);
                }
            }
        }
    } else {
        files.push(path.to_path_buf());
    }
    files
        .into_iter()
        .map(|p| {
            let digest = std::fs::read(&p).map_or([0u8; 32], |bytes| Sha256::digest(&bytes).into());
            (p, digest)
        })
        .collect()
}

/// One line describing a policy: what `config reloaded` logs.
pub fn summary(policy: &Policy) -> String {
    let c = policy.config();
    format!(
        "{} endpoint(s), {} rule(s), {} credential(s), {} profile(s)",
        c.endpoints.len(),
        c.rules.len(),
        c.credentials.len(),
        c.profiles.len()
    )
}

/// Loads the config again and swaps it in when valid. Returns whether it was swapped.
pub fn reload(path: &Path, shared: &Shared) -> bool {
    match Policy::load(path) {
        Ok(policy) => {
            for w in policy.warnings() {
                tracing::warn!("{}", w.to_string().trim_end());
            }
            let line = summary(&policy);
            shared.policy.store(Arc::new(policy));
            tracing::info!(config = %path.display(), "config reloaded: {line}");
            true
        }
        Err(e) => {
            tracing::error!(
                config = %path.display(),
                "config reload refused, the previous policy stays in force:\n{}",
                e.to_string().trim_end()
            );
            false
        }
    }
}

/// Installs the SIGHUP listener (`None`, with a warning, when that fails). Must run inside
/// the runtime.
pub fn hangup_signal() -> Option<Signal> {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; file watching only");
            None
        }
    }
}

/// Watches `path` every `every`, and on each `hup` signal, until shutdown.
pub async fn watch(path: PathBuf, shared: Arc<Shared>, every: Duration, mut hup: Option<Signal>) {
    let mut seen = snapshot(&path);
    loop {
        let forced = tokio::select! {
            () = tokio::time::sleep(every) => false,
            Some(()) = async {
                match hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            } => true,
            () = shared.shutdown.cancelled() => return,
        };
        let now = snapshot(&path);
        if forced || now != seen {
            if forced {
                tracing::info!("SIGHUP: reloading the config");
            }
            seen = now;
            reload(&path, &shared);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_sees_edits_additions_and_removals() {
        let dir = std::env::temp_dir().join(format!("cp-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.hcl"), "x").unwrap();
        let s1 = snapshot(&dir);
        std::fs::write(dir.join("a.hcl"), "y").unwrap();
        let s2 = snapshot(&dir);
        assert_ne!(s1, s2);
        std::fs::write(dir.join("b.hcl"), "z").unwrap();
        let s3 = snapshot(&dir);
        assert_eq!(s3.len(), 2);
        std::fs::remove_file(dir.join("a.hcl")).unwrap();
        assert_eq!(snapshot(&dir).len(), 1);
        std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
        assert_eq!(snapshot(&dir).len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
