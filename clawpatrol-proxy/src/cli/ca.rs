//! `clawpatrol ca [--state-dir DIR] [--config FILE]`: print the gateway CA, creating it if
//! missing, so operators can trust it before the gateway first starts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clawpatrol_core::Policy;

use crate::state::{self, StateDir};
use crate::tls::{self, CertAuthority, LeafCache, UpstreamTls};

/// Arguments of `ca`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Prints the CA certificate's path, its SHA-256 fingerprint and the PEM.\n\n\
Examples:\n  clawpatrol ca\n  clawpatrol ca --config policy.hcl          # state dir from gateway.state_dir\n  \
clawpatrol ca --state-dir /var/lib/clawpatrol | sed -n '/BEGIN/,$p' > clawpatrol-ca.crt"
)]
pub struct Args {
    /// The state directory [default: `gateway.state_dir` of --config, else ~/.clawpatrol].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// A config file or directory whose `gateway.state_dir` locates the state directory.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Loads or creates the CA, checks that leaves it signs verify, and prints it; exit 2 on errors.
pub fn run(args: Args) -> ExitCode {
    super::init_logging();
    let policy = match args.config.as_deref().map(Policy::load).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let config_dir = policy
        .as_ref()
        .and_then(|p| p.config().gateway.as_ref())
        .and_then(|g| g.state_dir.as_deref());
    let (_state, ca) = match open_ca(args.state_dir.as_deref(), config_dir) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // Leaves signed by the CA must verify with nothing but the CA as a trust anchor.
    let leaves = LeafCache::new(ca.clone());
    if let Err(e) = tls::self_check(&ca, &leaves, &UpstreamTls::from_roots(Vec::new())) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    println!("certificate: {}", ca.cert_path().display());
    println!("sha256 fingerprint: {}", ca.fingerprint());
    print!("{}", ca.cert_pem());
    ExitCode::SUCCESS
}

/// Resolves (as an absolute path) and opens the state directory, then loads or creates the CA.
pub(crate) fn open_ca(
    flag: Option<&Path>,
    config_state_dir: Option<&str>,
) -> Result<(StateDir, Arc<CertAuthority>), String> {
    let dir = state::resolve(flag, config_state_dir).map_err(|e| e.to_string())?;
    let dir = std::path::absolute(&dir)
        .map_err(|e| format!("cannot resolve `{}`: {e}", dir.display()))?;
    let state = StateDir::open(&dir).map_err(|e| e.to_string())?;
    let ca = CertAuthority::load_or_create(&state).map_err(|e| e.to_string())?;
    Ok((state, Arc::new(ca)))
}
