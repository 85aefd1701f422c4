//! The gateway CA (reference §9.3 item 7): ECDSA P-256, self-signed, "clawpatrol gateway CA",
//! ten years, minted on first start into the state directory and loaded afterwards.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::client::danger::ServerCertVerifier as _;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use sha2::{Digest as _, Sha256};

use super::{der_to_pem, leaf, now_offset, provider, TlsError};
use crate::state::{self, StateDir};

/// The CA's common name.
pub const CA_COMMON_NAME: &str = "clawpatrol gateway CA";
/// The CA's validity: ten years, in seconds.
const CA_VALIDITY_SECS: i64 = 10 * 365 * 24 * 3600;
/// Backdating of `notBefore` against clock skew, in seconds.
pub(crate) const BACKDATE_SECS: i64 = 3600;
/// The host a probe leaf is minted for when an existing CA is loaded.
const PROBE_HOST: &str = "clawpatrol.internal";

/// The gateway's certificate authority: its certificate and the key that signs leaves.
pub struct CertAuthority {
    /// Where the certificate lives.
    cert_path: PathBuf,
    /// The certificate, PEM.
    cert_pem: String,
    /// The certificate, DER.
    cert_der: CertificateDer<'static>,
    /// Uppercase colon-separated SHA-256 of the DER.
    fingerprint: String,
    /// Subject, key identifier method and signing key, for signing leaves.
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for CertAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("CertAuthority")
            .field("cert_path", &self.cert_path)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl CertAuthority {
    /// Loads `ca.pem` and `ca-key.pem`, or mints and writes them when both are absent.
    pub fn load_or_create(state: &StateDir) -> Result<CertAuthority, TlsError> {
        let cert_path = state.ca_cert_path();
        let key_path = state.ca_key_path();
        match (exists(&cert_path)?, exists(&key_path)?) {
            (true, true) => CertAuthority::load(cert_path, &key_path),
            (false, false) => CertAuthority::create(cert_path, &key_path),
            (true, false) => Err(TlsError::CaIncomplete {
                present: cert_path,
                missing: key_path,
            }),
            (false, true) => Err(TlsError::CaIncomplete {
                present: key_path,
                missing: cert_path,
            }),
        }
    }

    /// The certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Uppercase colon-separated SHA-256 of the certificate's DER (`AA:BB:…`).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Where the certificate is stored.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The issuer that signs leaves.
    pub(crate) fn issuer(&self) -> &Issuer<'static, KeyPair> {
        &self.issuer
    }

    /// Mints a new CA and writes it (key first, mode 0600; then the certificate).
    fn create(cert_path: PathBuf, key_path: &Path) -> Result<CertAuthority, TlsError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, CA_COMMON_NAME);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = now_offset(-BACKDATE_SECS);
        params.not_after = now_offset(CA_VALIDITY_SECS);
        let cert = params.self_signed(&key)?;
        let cert_pem = cert.pem();
        let cert_der = cert.der().clone();
        state::write_private_atomic(key_path, key.serialize_pem().as_bytes()).map_err(
            |source| TlsError::Io {
                path: key_path.to_path_buf(),
                source,
            },
        )?;
        state::write_atomic(&cert_path, cert_pem.as_bytes(), false).map_err(|source| {
            TlsError::Io {
                path: cert_path.clone(),
                source,
            }
        })?;
        let fingerprint = fingerprint(&cert_der);
        tracing::info!(path = %cert_path.display(), %fingerprint, "created the gateway CA");
        Ok(CertAuthority {
            cert_path,
            cert_pem,
            cert_der,
            fingerprint,
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads an existing CA and checks that the pair signs leaves that verify.
    fn load(cert_path: PathBuf, key_path: &Path) -> Result<CertAuthority, TlsError> {
        let cert_text = read(&cert_path)?;
        let key_text = read(key_path)?;
        let corrupt = |path: &Path, detail: String| TlsError::CorruptCa {
            path: path.to_path_buf(),
            detail,
        };
        let cert_der = CertificateDer::from_pem_slice(cert_text.as_bytes())
            .map_err(|e| corrupt(&cert_path, format!("no PEM certificate ({e})")))?;
        let key_der = PrivateKeyDer::from_pem_slice(key_text.as_bytes())
            .map_err(|e| corrupt(key_path, format!("no PEM private key ({e})")))?;
        let key = KeyPair::try_from(&key_der)
            .map_err(|e| corrupt(key_path, format!("unsupported private key ({e})")))?;
        let signing_key = provider()
            .key_provider
            .load_private_key(key_der.clone_key())
            .map_err(|e| corrupt(key_path, format!("unsupported private key ({e})")))?;
        CertifiedKey::new(vec![cert_der.clone()], signing_key)
            .keys_match()
            .map_err(|e| {
                corrupt(
                    key_path,
                    format!("does not belong to `{}` ({e})", cert_path.display()),
                )
            })?;
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|e| corrupt(&cert_path, format!("unreadable certificate ({e})")))?;
        let ca = CertAuthority {
            fingerprint: fingerprint(&cert_der),
            cert_pem: der_to_pem(&cert_der),
            cert_der,
            cert_path,
            issuer,
        };
        ca.probe()
            .map_err(|detail| corrupt(&ca.cert_path, detail))?;
        tracing::debug!(path = %ca.cert_path.display(), fingerprint = %ca.fingerprint, "loaded the gateway CA");
        Ok(ca)
    }

    /// Mints a throwaway leaf and verifies it against this CA alone (catches an expired CA,
    /// a certificate that is not a CA, or a subject that leaves cannot chain to).
    fn probe(&self) -> Result<(), String> {
        let host = ServerName::try_from(PROBE_HOST).map_err(|e| e.to_string())?;
        let (chain, _key) = leaf::mint(self, &host).map_err(|e| e.to_string())?;
        let mut roots = RootCertStore::empty();
        roots
            .add(self.cert_der.clone())
            .map_err(|e| format!("not a usable trust anchor ({e})"))?;
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .map_err(|e| e.to_string())?;
        let (end_entity, intermediates) = chain
            .split_first()
            .ok_or_else(|| "minted an empty chain".to_string())?;
        verifier
            .verify_server_cert(end_entity, intermediates, &host, &[], UnixTime::now())
            .map(|_| ())
            .map_err(|e| format!("leaves it signs do not verify ({e})"))
    }
}

/// Uppercase colon-separated SHA-256 of a certificate's DER.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let hex = hex::encode_upper(digest);
    let mut out = String::with_capacity(hex.len() / 2 * 3);
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        if i > 0 {
            out.push(':');
        }
        out.extend(pair.iter().map(|&b| char::from(b)));
    }
    out
}

/// Whether `path` exists (errors other than "not found" are reported).
fn exists(path: &Path) -> Result<bool, TlsError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(TlsError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Reads a CA file as text.
fn read(path: &Path) -> Result<String, TlsError> {
    fs::read_to_string(path).map_err(|source| match source.kind() {
        io::ErrorKind::InvalidData => TlsError::CorruptCa {
            path: path.to_path_buf(),
            detail: "not UTF-8 text".to_string(),
        },
        _ => TlsError::Io {
            path: path.to_path_buf(),
            source,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> (tempfile::TempDir, StateDir) {
        let tmp = tempfile::tempdir().unwrap();
        let s = StateDir::open(tmp.path().join("state")).unwrap();
        (tmp, s)
    }

    #[test]
    fn create_then_reload_keeps_the_fingerprint() {
        let (_tmp, s) = state();
        let a = CertAuthority::load_or_create(&s).unwrap();
        assert_eq!(a.fingerprint().len(), 32 * 3 - 1);
        assert!(a
            .fingerprint()
            .bytes()
            .all(|c| c == b':' || c.is_ascii_digit() || c.is_ascii_uppercase()));
        assert!(a.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let b = CertAuthority::load_or_create(&s).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.cert_der(), b.cert_der());
        assert_eq!(fingerprint(b.cert_der()), b.fingerprint());
    }

    #[cfg(unix)]
    #[test]
    fn key_file_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let (tmp, s) = state();
        CertAuthority::load_or_create(&s).unwrap();
        let mode = |p: PathBuf| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(s.ca_key_path()), 0o600);
        assert_eq!(mode(tmp.path().join("state")), 0o700);
        // No temporary files left behind.
        let names: Vec<String> = fs::read_dir(tmp.path().join("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn corrupt_cert_is_an_error_and_untouched() {
        let (_tmp, s) = state();
        CertAuthority::load_or_create(&s).unwrap();
        fs::write(s.ca_cert_path(), "garbage").unwrap();
        let e = CertAuthority::load_or_create(&s).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("ca.pem"), "{msg}");
        assert!(matches!(e, TlsError::CorruptCa { .. }), "{e:?}");
        assert_eq!(fs::read_to_string(s.ca_cert_path()).unwrap(), "garbage");
    }

    #[test]
    fn corrupt_key_is_an_error_and_untouched() {
        let (_tmp, s) = state();
        CertAuthority::load_or_create(&s).unwrap();
        fs::write(
            s.ca_key_path(),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let msg = CertAuthority::load_or_create(&s).unwrap_err().to_string();
        assert!(msg.contains("ca-key.pem"), "{msg}");
        assert!(fs::read_to_string(s.ca_key_path())
            .unwrap()
            .contains("AAAA"));
    }

    #[test]
    fn key_of_another_ca_is_refused() {
        let (_tmp, s1) = state();
        let (_tmp2, s2) = state();
        CertAuthority::load_or_create(&s1).unwrap();
        CertAuthority::load_or_create(&s2).unwrap();
        fs::copy(s2.ca_key_path(), s1.ca_key_path()).unwrap();
        let msg = CertAuthority::load_or_create(&s1).unwrap_err().to_string();
        assert!(msg.contains("does not belong"), "{msg}");
    }

    #[test]
    fn half_a_ca_is_refused_and_not_replaced() {
        let (_tmp, s) = state();
        CertAuthority::load_or_create(&s).unwrap();
        let key = fs::read(s.ca_key_path()).unwrap();
        fs::remove_file(s.ca_cert_path()).unwrap();
        let e = CertAuthority::load_or_create(&s).unwrap_err();
        assert!(matches!(e, TlsError::CaIncomplete { .. }), "{e:?}");
        assert!(!s.ca_cert_path().exists());
        assert_eq!(fs::read(s.ca_key_path()).unwrap(), key);
    }
}
