//! Hot reload (reference §9.7, DESIGN §3): poll the config file (or every `*.hcl` of a config
//! directory) for changes and listen for SIGHUP; a valid new config is swapped atomically,
//! an invalid one is refused and the old policy stays in force.
//!
//! A file caught in the middle of a write must never become the policy: a plain
//! `open(O_TRUNC)` + `write` leaves it empty for a moment, and an empty file is a valid
//! config with no endpoints and no rules. So a change seen by polling is loaded only once two
//! snapshots a settling interval apart agree; a loaded config is swapped in only if the files
//! still hold what that snapshot saw (otherwise the next poll looks again); and a reload to a
//! config with no content at all is refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clawpatrol_core::Policy;
use sha2::{Digest, Sha256};
use tokio::signal::unix::Signal;
use tokio_util::sync::CancellationToken;

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

/// The longest wait for a changed config to stop changing before each re-check.
const MAX_SETTLE: Duration = Duration::from_millis(250);
/// Re-checks of a config that keeps changing before it is loaded anyway (the check after
/// loading still keeps a config that changed meanwhile out).
const MAX_SETTLE_ROUNDS: usize = 20;

/// True when the config has no content: the file, or every `*.hcl` file of the directory
/// (or there is none), is empty or only whitespace. Unreadable files count as content, so
/// that loading them reports the error.
pub fn is_blank(path: &Path) -> bool {
    if path.is_dir() && std::fs::read_dir(path).is_err() {
        // Left to the loader, which reports why the directory cannot be read.
        return false;
    }
    let files: Vec<PathBuf> = snapshot(path).into_keys().collect();
    files
        .iter()
        .all(|p| std::fs::read(p).is_ok_and(|bytes| bytes.iter().all(u8::is_ascii_whitespace)))
}

/// A config read for a reload, before anything is swapped.
#[derive(Debug)]
pub enum Loaded {
    /// Valid, and (when checked) still what the snapshot saw.
    Valid(Box<Policy>),
    /// No content at all (refused).
    Blank,
    /// Invalid (refused), with the loader's errors.
    Invalid(clawpatrol_core::ConfigError),
    /// The files changed meanwhile: nothing to report, the next look decides.
    Changed,
}

/// Reads and compiles the config; with `expected`, a config whose files no longer hold what
/// `expected` fingerprints once read is [`Loaded::Changed`].
pub fn load_checked(path: &Path, expected: Option<&Snapshot>) -> Loaded {
    let changed = || expected.is_some_and(|e| snapshot(path) != *e);
    let loaded = if is_blank(path) {
        Loaded::Blank
    } else {
        match Policy::load(path) {
            Ok(policy) => Loaded::Valid(Box::new(policy)),
            Err(e) => Loaded::Invalid(e),
        }
    };
    if changed() {
        Loaded::Changed
    } else {
        loaded
    }
}

/// Loads the config again and swaps it in when valid; with `expected`, only if the files
/// still hold what `expected` fingerprints once loaded (else nothing is swapped or reported:
/// the next look decides).
pub fn reload(path: &Path, shared: &Shared, expected: Option<&Snapshot>) {
    match load_checked(path, expected) {
        Loaded::Changed => {
            tracing::debug!(config = %path.display(), "config changed while loading; looking again");
        }
        Loaded::Blank => {
            tracing::error!(
                config = %path.display(),
                "config reload refused, the previous policy stays in force: the config is empty \
                 (a write still in progress, or a mistake); restart the gateway to run without a policy"
            );
        }
        Loaded::Invalid(e) => {
            tracing::error!(
                config = %path.display(),
                "config reload refused, the previous policy stays in force:\n{}",
                e.to_string().trim_end()
            );
        }
        Loaded::Valid(policy) => {
            for w in policy.warnings() {
                tracing::warn!("{}", w.to_string().trim_end());
            }
            let line = summary(&policy);
            shared.policy.store(Arc::from(policy));
            tracing::info!(config = %path.display(), "config reloaded: {line}");
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

/// Waits until the config stops changing: returns the first snapshot that a second one,
/// taken `settle` later, confirms (`None` on shutdown; the latest one after
/// `MAX_SETTLE_ROUNDS` looks). `changed` is the snapshot that showed the change.
pub async fn settled(
    path: &Path,
    changed: Snapshot,
    settle: Duration,
    shutdown: &CancellationToken,
) -> Option<Snapshot> {
    let mut last = changed;
    for _ in 0..MAX_SETTLE_ROUNDS {
        tokio::select! {
            () = tokio::time::sleep(settle) => {}
            () = shutdown.cancelled() => return None,
        }
        let again = snapshot(path);
        if again == last {
            return Some(again);
        }
        tracing::debug!(config = %path.display(), "config still changing; waiting before reloading");
        last = again;
    }
    tracing::warn!(
        config = %path.display(),
        "config keeps changing; loading it as it is now"
    );
    Some(last)
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
        let mut now = snapshot(&path);
        if forced || now != seen {
            if forced {
                tracing::info!("SIGHUP: reloading the config");
            } else {
                match settled(&path, now, every.min(MAX_SETTLE), &shared.shutdown).await {
                    Some(stable) => now = stable,
                    None => return,
                }
            }
            seen = now;
            // Files that changed meanwhile no longer match `seen`: the next poll looks again.
            reload(&path, &shared, Some(&seen));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    }

    #[test]
    fn a_change_is_taken_only_once_a_second_look_confirms_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.hcl");
        // What the poll saw: the file in the middle of a write (truncated).
        std::fs::write(&file, "").unwrap();
        let mid_write = snapshot(&file);
        // What it holds by the time of the next look.
        std::fs::write(&file, "schema_version = 1\n").unwrap();
        let done = snapshot(&file);
        let stop = CancellationToken::new();
        let t = std::time::Instant::now();
        let got = rt().block_on(settled(
            &file,
            mid_write.clone(),
            Duration::from_millis(20),
            &stop,
        ));
        assert_eq!(
            got,
            Some(done.clone()),
            "settled on a snapshot no second look confirmed"
        );
        assert!(t.elapsed() >= Duration::from_millis(40), "one look only");
        // Unchanged since the change was seen: one confirming look.
        let got = rt().block_on(settled(
            &file,
            done.clone(),
            Duration::from_millis(1),
            &stop,
        ));
        assert_eq!(got, Some(done));
        stop.cancel();
        assert_eq!(
            rt().block_on(settled(&file, mid_write, Duration::from_secs(60), &stop)),
            None
        );
    }

    #[test]
    fn a_config_that_changed_since_its_snapshot_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.hcl");
        std::fs::write(&file, "schema_version = 1\n").unwrap();
        let seen = snapshot(&file);
        assert!(matches!(load_checked(&file, Some(&seen)), Loaded::Valid(_)));
        assert!(matches!(load_checked(&file, None), Loaded::Valid(_)));
        // Rewritten after the snapshot that decided to load it (valid, invalid or blank now).
        for text in ["schema_version = 1\n# edited\n", "rule \"x\" {\n", ""] {
            std::fs::write(&file, text).unwrap();
            assert!(
                matches!(load_checked(&file, Some(&seen)), Loaded::Changed),
                "{text:?}"
            );
        }
        assert!(matches!(load_checked(&file, None), Loaded::Blank));
        std::fs::write(&file, "rule \"x\" {\n").unwrap();
        assert!(matches!(load_checked(&file, None), Loaded::Invalid(_)));
        let now = snapshot(&file);
        assert!(matches!(
            load_checked(&file, Some(&now)),
            Loaded::Invalid(_)
        ));
    }

    #[test]
    fn blank_configs_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("policy.hcl");
        std::fs::write(&file, "").unwrap();
        assert!(is_blank(&file));
        std::fs::write(&file, " \n\t\n").unwrap();
        assert!(is_blank(&file));
        std::fs::write(&file, "# a comment\n").unwrap();
        assert!(!is_blank(&file), "a comment is content");
        assert!(
            !is_blank(&dir.path().join("missing.hcl")),
            "unreadable: left to the loader"
        );
        let conf = dir.path().join("conf.d");
        std::fs::create_dir(&conf).unwrap();
        assert!(is_blank(&conf), "a directory without *.hcl files");
        std::fs::write(conf.join("a.hcl"), "\n").unwrap();
        assert!(is_blank(&conf));
        std::fs::write(conf.join("b.hcl"), "schema_version = 1\n").unwrap();
        assert!(!is_blank(&conf));
    }

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
