//! The gateway's state directory: audit database, CA material, the combined CA bundle and
//! the per-profile proxy tokens (DESIGN §3 "Local mode", §7).
//!
//! The directory is created with mode 0700; private files (`ca-key.pem`, `tokens.json`) are
//! written with mode 0600. Looser permissions on an existing directory are reported with a
//! warning and left as they are: we never change an operator's choice silently.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use ring::rand::{SecureRandom as _, SystemRandom};
use subtle::ConstantTimeEq as _;

/// The audit database file name.
const DB_FILE: &str = "clawpatrol.db";
/// The gateway CA certificate file name.
const CA_CERT_FILE: &str = "ca.pem";
/// The gateway CA private key file name.
const CA_KEY_FILE: &str = "ca-key.pem";
/// The combined bundle (system roots + gateway CA) file name.
const CA_BUNDLE_FILE: &str = "ca-bundle.pem";
/// The profile proxy token file name.
const TOKENS_FILE: &str = "tokens.json";
/// Random bytes in a profile token (hex-encoded: twice as many characters).
const TOKEN_BYTES: usize = 32;

/// Errors opening or using the state directory.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// No `--state-dir`, no `gateway.state_dir` and no `$HOME`.
    #[error("no state directory: pass `--state-dir DIR`, set `gateway.state_dir`, or set `HOME`")]
    NoHome,
    /// The state directory could not be created.
    #[error("cannot create state directory `{path}`: {source}")]
    Create {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The state path exists but is not a directory.
    #[error("state directory `{0}` exists but is not a directory")]
    NotADirectory(PathBuf),
    /// The write probe failed.
    #[error("state directory `{path}` is not writable: {source}")]
    NotWritable {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A state file could not be read or written.
    #[error("cannot access `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// `tokens.json` exists but does not parse; it is left untouched.
    #[error(
        "`{path}` is corrupt ({detail}); fix or remove it (every profile then gets a new token)"
    )]
    CorruptTokens {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        detail: String,
    },
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
}

/// Resolves the state directory: the flag, else `gateway.state_dir`, else `$HOME/.clawpatrol`.
pub fn resolve(flag: Option<&Path>, config_state_dir: Option<&str>) -> Result<PathBuf, StateError> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = config_state_dir.filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    match std::env::var_os("HOME") {
        Some(home) if !home.is_empty() => Ok(PathBuf::from(home).join(".clawpatrol")),
        _ => Err(StateError::NoHome),
    }
}

/// An opened, writable state directory.
pub struct StateDir {
    /// The directory.
    path: PathBuf,
    /// Serialises token generation within this process and caches the parsed token file.
    tokens: Mutex<TokenCache>,
}

/// The parsed `tokens.json` and the file metadata it was read with.
#[derive(Default)]
struct TokenCache {
    /// `(modified, len)` of the file when it was parsed; `None` = not read yet or absent.
    stamp: Option<(Option<SystemTime>, u64)>,
    /// profile name → token.
    map: BTreeMap<String, String>,
}

impl std::fmt::Debug for StateDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens.
        f.debug_struct("StateDir")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl StateDir {
    /// Creates (mode 0700, recursively) and checks the directory; warns if others can access it.
    pub fn open(path: impl AsRef<Path>) -> Result<StateDir, StateError> {
        let path = path.as_ref().to_path_buf();
        create_private_dir(&path).map_err(|source| StateError::Create {
            path: path.clone(),
            source,
        })?;
        let meta = fs::metadata(&path).map_err(|source| StateError::Create {
            path: path.clone(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(StateError::NotADirectory(path));
        }
        warn_if_shared(&path, &meta, "the state directory");
        write_probe(&path).map_err(|source| StateError::NotWritable {
            path: path.clone(),
            source,
        })?;
        let state = StateDir {
            path,
            tokens: Mutex::new(TokenCache::default()),
        };
        for file in [state.ca_key_path(), state.tokens_path(), state.db_path()] {
            if let Ok(meta) = fs::metadata(&file) {
                warn_if_shared(&file, &meta, "a private state file");
            }
        }
        Ok(state)
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The audit database, `clawpatrol.db`.
    pub fn db_path(&self) -> PathBuf {
        self.path.join(DB_FILE)
    }

    /// The gateway CA certificate, `ca.pem`.
    pub fn ca_cert_path(&self) -> PathBuf {
        self.path.join(CA_CERT_FILE)
    }

    /// The gateway CA private key, `ca-key.pem` (mode 0600).
    pub fn ca_key_path(&self) -> PathBuf {
        self.path.join(CA_KEY_FILE)
    }

    /// The combined bundle (system roots + gateway CA), `ca-bundle.pem`, rewritten at start.
    pub fn ca_bundle_path(&self) -> PathBuf {
        self.path.join(CA_BUNDLE_FILE)
    }

    /// The profile proxy tokens, `tokens.json` (mode 0600).
    pub fn tokens_path(&self) -> PathBuf {
        self.path.join(TOKENS_FILE)
    }

    /// The proxy token of `profile`, generated (32 random bytes, hex) and persisted on first use.
    pub fn profile_token(&self, profile: &str) -> Result<String, StateError> {
        let mut cache = self.lock_tokens();
        self.refresh_tokens(&mut cache)?;
        if let Some(t) = cache.map.get(profile) {
            return Ok(t.clone());
        }
        let mut bytes = [0u8; TOKEN_BYTES];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| StateError::Random)?;
        let token = hex::encode(bytes);
        let mut map = cache.map.clone();
        map.insert(profile.to_string(), token.clone());
        let path = self.tokens_path();
        let mut text = serde_json::to_string_pretty(&map).map_err(|e| StateError::Io {
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        text.push('\n');
        write_private_atomic(&path, text.as_bytes())
            .map_err(|source| StateError::Io { path, source })?;
        tracing::info!(profile, "generated a proxy token for the profile");
        cache.map = map;
        cache.stamp = None;
        Ok(token)
    }

    /// The management API token, `management-token` (0600), generated on first use.
    pub fn management_token(&self) -> Result<String, StateError> {
        let path = self.path.join("management-token");
        match fs::read_to_string(&path) {
            Ok(t) if t.trim().len() == 2 * TOKEN_BYTES => return Ok(t.trim().to_string()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(StateError::Io { path, source }),
        }
        let mut bytes = [0u8; TOKEN_BYTES];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| StateError::Random)?;
        let token = hex::encode(bytes);
        write_private_atomic(&path, format!("{token}\n").as_bytes())
            .map_err(|source| StateError::Io { path, source })?;
        Ok(token)
    }

    /// Where the running gateway's management API listens, `management.addr`.
    pub fn management_addr_path(&self) -> PathBuf {
        self.path.join("management.addr")
    }

    /// Whether `token` is `profile`'s proxy token (constant-time comparison).
    pub fn check_profile_token(&self, profile: &str, token: &str) -> bool {
        let mut cache = self.lock_tokens();
        if let Err(e) = self.refresh_tokens(&mut cache) {
            tracing::warn!(error = %e, "cannot read the profile tokens; refusing the credentials");
            return false;
        }
        match cache.map.get(profile) {
            Some(expected) => bool::from(expected.as_bytes().ct_eq(token.as_bytes())),
            None => {
                // Compare anyway so an unknown profile costs about as much as a known one.
                let _ = [0u8; 2 * TOKEN_BYTES].ct_eq(token.as_bytes());
                false
            }
        }
    }

    /// Locks the token cache; a poisoned lock still holds consistent data (writes are atomic).
    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, TokenCache> {
        self.tokens.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Re-reads `tokens.json` when its size or modification time changed since the last read.
    fn refresh_tokens(&self, cache: &mut TokenCache) -> Result<(), StateError> {
        let path = self.tokens_path();
        let meta = match fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                cache.map.clear();
                cache.stamp = None;
                return Ok(());
            }
            Err(source) => return Err(StateError::Io { path, source }),
        };
        let stamp = (meta.modified().ok(), meta.len());
        if cache.stamp == Some(stamp) {
            return Ok(());
        }
        let text = fs::read_to_string(&path).map_err(|source| StateError::Io {
            path: path.clone(),
            source,
        })?;
        let map: BTreeMap<String, String> =
            serde_json::from_str(&text).map_err(|e| StateError::CorruptTokens {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        cache.map = map;
        cache.stamp = Some(stamp);
        Ok(())
    }
}

/// Creates `path` and missing parents with mode 0700 (before the umask).
fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(path)
}

/// Warns when group or others have any access to `path` (`what` names it in the message).
fn warn_if_shared(path: &Path, meta: &fs::Metadata, what: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            let fix = if meta.is_dir() {
                "chmod 700"
            } else {
                "chmod 600"
            };
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{mode:o}"),
                "{what} is accessible to other users; it guards the CA key, proxy tokens and \
                 audit log (fix with `{fix}`)"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, meta, what);
}

/// Creates and removes a probe file so a read-only directory fails at start, not later.
fn write_probe(dir: &Path) -> io::Result<()> {
    let probe = dir.join(format!(".write-probe-{}", std::process::id()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)?;
    let res = f.write_all(b"ok").and_then(|()| f.sync_all());
    drop(f);
    let removed = fs::remove_file(&probe);
    res.and(removed)
}

/// Opens `path` for writing (created or truncated) with mode 0600 on Unix.
fn open_private(path: &Path) -> io::Result<fs::File> {
    let mut o = fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    o.open(path)
}

/// Writes `bytes` to a mode-0600 temporary file beside `path` and renames it over `path`.
pub(crate) fn write_private_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic(path, bytes, true)
}

/// Writes `bytes` to a temporary file beside `path` and renames it over `path`; private
/// files get mode 0600, others the default mode.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let res = (|| {
        let mut f = if private {
            open_private(&tmp)?
        } else {
            fs::File::create(&tmp)?
        };
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt as _;
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn resolve_prefers_flag_then_config_then_home() {
        let flag = Path::new("/tmp/flag");
        assert_eq!(resolve(Some(flag), Some("/cfg")).unwrap(), flag);
        assert_eq!(resolve(None, Some("/cfg")).unwrap(), Path::new("/cfg"));
        if let Some(home) = std::env::var_os("HOME") {
            assert_eq!(
                resolve(None, None).unwrap(),
                PathBuf::from(home).join(".clawpatrol")
            );
        }
    }

    #[test]
    fn open_creates_nested_private_dir() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/state");
        let s = StateDir::open(&dir).unwrap();
        assert!(dir.is_dir());
        #[cfg(unix)]
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(s.db_path(), dir.join("clawpatrol.db"));
        assert_eq!(s.ca_cert_path(), dir.join("ca.pem"));
        assert_eq!(s.ca_key_path(), dir.join("ca-key.pem"));
        assert_eq!(s.ca_bundle_path(), dir.join("ca-bundle.pem"));
        // The probe left nothing behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    }

    #[test]
    fn open_refuses_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, "x").unwrap();
        assert!(StateDir::open(&file).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn open_leaves_loose_permissions_alone() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("s");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        StateDir::open(&dir).unwrap();
        assert_eq!(mode(&dir), 0o755);
    }

    #[test]
    fn tokens_are_stable_across_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let s = StateDir::open(tmp.path()).unwrap();
        let a = s.profile_token("dev").unwrap();
        let b = s.profile_token("ops").unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(s.profile_token("dev").unwrap(), a);
        #[cfg(unix)]
        assert_eq!(mode(&s.tokens_path()), 0o600);
        drop(s);
        let s = StateDir::open(tmp.path()).unwrap();
        assert_eq!(s.profile_token("dev").unwrap(), a);
        assert_eq!(s.profile_token("ops").unwrap(), b);
    }

    #[test]
    fn check_token() {
        let tmp = tempfile::tempdir().unwrap();
        let s = StateDir::open(tmp.path()).unwrap();
        let t = s.profile_token("dev").unwrap();
        assert!(s.check_profile_token("dev", &t));
        assert!(!s.check_profile_token("dev", &t[..63]));
        assert!(!s.check_profile_token("dev", ""));
        assert!(!s.check_profile_token("ops", &t));
        let mut wrong = t.clone().into_bytes();
        wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
        assert!(!s.check_profile_token("dev", &String::from_utf8(wrong).unwrap()));
    }

    #[test]
    fn check_sees_tokens_written_by_another_process() {
        let tmp = tempfile::tempdir().unwrap();
        let gateway = StateDir::open(tmp.path()).unwrap();
        assert!(!gateway.check_profile_token("dev", "x"));
        let cli = StateDir::open(tmp.path()).unwrap();
        let t = cli.profile_token("dev").unwrap();
        assert!(gateway.check_profile_token("dev", &t));
    }

    #[test]
    fn corrupt_tokens_are_an_error_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let s = StateDir::open(tmp.path()).unwrap();
        fs::write(s.tokens_path(), "{not json").unwrap();
        let e = s.profile_token("dev").unwrap_err();
        assert!(e.to_string().contains("tokens.json"), "{e}");
        assert!(!s.check_profile_token("dev", "x"));
        assert_eq!(fs::read_to_string(s.tokens_path()).unwrap(), "{not json");
    }
}
