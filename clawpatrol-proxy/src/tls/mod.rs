//! TLS plumbing: the gateway CA (`ca`), per-host leaf certificates for interception
//! (`leaf`) and verifying client configurations for upstream dials (`upstream`).
//!
//! Every rustls configuration is built with the ring provider explicitly; nothing relies on a
//! process-default provider.

pub mod ca;
pub mod leaf;
pub mod upstream;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};

pub use ca::CertAuthority;
pub use leaf::LeafCache;
pub use upstream::UpstreamTls;

/// The only ALPN protocol offered on either leg (reference §4.4.1).
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// Errors of the TLS layer.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A CA file could not be read or written.
    #[error("cannot access `{path}`: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A CA file exists but is unusable; it is left untouched.
    #[error(
        "`{path}` is not usable: {detail}; restore it, or remove both `ca.pem` and \
         `ca-key.pem` to mint a new CA (agents must then trust the new one)"
    )]
    CorruptCa {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// Only one of the CA certificate and key exists.
    #[error(
        "`{present}` exists but `{missing}` does not; restore the missing file, or remove \
         `{present}` to mint a new CA"
    )]
    CaIncomplete {
        /// The file that exists.
        present: PathBuf,
        /// The file that is missing.
        missing: PathBuf,
    },
    /// A certificate could not be generated or signed.
    #[error("cannot mint a certificate: {0}")]
    Mint(#[from] rcgen::Error),
    /// The host cannot be named in a certificate.
    #[error("`{0}` is not a valid DNS name or IP address for a certificate")]
    InvalidHost(String),
    /// PEM input (an endpoint's `ca_cert`, a client certificate or key) is unusable.
    #[error("{what}: {detail}")]
    BadPem {
        /// Which input (`ca_cert`, `client certificate`, `client key`).
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// The in-memory end-to-end check failed.
    #[error("tls self-check failed: {0}")]
    SelfCheck(String),
    /// rustls refused a configuration.
    #[error("tls configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The ring crypto provider every configuration is built with.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// A certificate as PEM (`CERTIFICATE` block, 64-character lines).
pub(crate) fn der_to_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 60);
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.extend(line.iter().map(|&b| char::from(b)));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// The UTC time `secs` seconds from now (negative: in the past); now if out of range.
pub(crate) fn now_offset(secs: i64) -> time::OffsetDateTime {
    let now = time::OffsetDateTime::now_utc();
    now.checked_add(time::Duration::seconds(secs))
        .unwrap_or(now)
}

/// Checks the whole chain the gateway relies on, in memory: leaves minted by `leaves` for a
/// DNS name and an IP address verify with an upstream client configuration that trusts the CA,
/// and `http/1.1` is negotiated.
pub fn self_check(
    ca: &CertAuthority,
    leaves: &LeafCache,
    upstream: &UpstreamTls,
) -> Result<(), TlsError> {
    let client = upstream.client_config(Some(ca.cert_pem()), None)?;
    for host in ["clawpatrol.internal", "127.0.0.1"] {
        let server = leaves.server_config(host)?;
        let alpn = handshake_in_memory(client.clone(), server, host).map_err(|e| {
            TlsError::SelfCheck(format!("a leaf for `{host}` does not verify: {e}"))
        })?;
        if alpn.as_deref() != Some(ALPN_HTTP11) {
            return Err(TlsError::SelfCheck(format!(
                "a handshake for `{host}` did not negotiate `http/1.1`"
            )));
        }
    }
    Ok(())
}

/// Runs a TLS handshake between `client` and `server` through memory buffers; returns the
/// negotiated ALPN protocol, or the first error either side raised.
pub(crate) fn handshake_in_memory(
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    name: &str,
) -> Result<Option<Vec<u8>>, rustls::Error> {
    let io = |e: std::io::Error| rustls::Error::General(e.to_string());
    let name = ServerName::try_from(name.to_string())
        .map_err(|e| rustls::Error::General(e.to_string()))?;
    let mut c = ClientConnection::new(client, name)?;
    let mut s = ServerConnection::new(server)?;
    // A TLS 1.3 handshake takes two round trips; allow generous slack.
    for _ in 0..8 {
        let mut buf = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut buf).map_err(io)?;
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            s.read_tls(&mut rd).map_err(io)?;
            s.process_new_packets()?;
        }
        let mut buf = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut buf).map_err(io)?;
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            c.read_tls(&mut rd).map_err(io)?;
            c.process_new_packets()?;
        }
        if !c.is_handshaking() && !s.is_handshaking() {
            return Ok(c.alpn_protocol().map(<[u8]>::to_vec));
        }
    }
    Err(rustls::Error::General(
        "handshake did not finish".to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateDir;

    #[test]
    fn self_check_passes_for_a_fresh_ca() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let ca = Arc::new(CertAuthority::load_or_create(&state).unwrap());
        let leaves = LeafCache::new(ca.clone());
        self_check(&ca, &leaves, &UpstreamTls::from_roots(Vec::new())).unwrap();
    }

    #[test]
    fn pem_encoding_round_trips() {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::CertificateDer;
        let der: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let pem = der_to_pem(&der);
        assert!(pem.lines().all(|l| l.len() <= 64));
        let back = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert_eq!(back.as_ref(), &der[..]);
    }
}
