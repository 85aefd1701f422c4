//! Client TLS for upstream dials (reference §4.4.1): verification against the system roots plus
//! an endpoint's `ca_cert`, an optional client certificate, ALPN `http/1.1` only.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use sha2::{Digest as _, Sha256};

use super::{der_to_pem, provider, CertAuthority, TlsError, ALPN_HTTP11};

/// Most distinct client configurations kept; the cache is emptied when it is full.
const CONFIG_CACHE_CAPACITY: usize = 1024;

/// The system trust roots, loaded once, and the client configurations built from them.
pub struct UpstreamTls {
    /// The system roots as loaded (deduplicated), for the combined bundle.
    system_roots: Vec<CertificateDer<'static>>,
    /// The system roots that parse as trust anchors.
    root_store: RootCertStore,
    /// How many system roots did not parse.
    ignored: usize,
    /// SHA-256 of the inputs → configuration.
    configs: RwLock<HashMap<[u8; 32], Arc<ClientConfig>>>,
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the client keys of cached configurations.
        f.debug_struct("UpstreamTls")
            .field("system_roots", &self.system_roots.len())
            .finish_non_exhaustive()
    }
}

impl UpstreamTls {
    /// Loads the system roots; problems are logged as warnings and zero roots is not fatal.
    pub fn new() -> Result<UpstreamTls, TlsError> {
        let loaded = rustls_native_certs::load_native_certs();
        for e in &loaded.errors {
            tracing::warn!(error = %e, "problem loading system trust roots");
        }
        let upstream = UpstreamTls::from_roots(loaded.certs);
        let (roots, ignored) = (upstream.root_store.len(), upstream.ignored);
        if ignored > 0 {
            tracing::warn!(
                ignored,
                "some system trust roots do not parse and are ignored"
            );
        }
        if roots == 0 {
            tracing::warn!(
                "no system trust roots loaded: upstream TLS verifies only against endpoint `ca_cert`s"
            );
        } else {
            tracing::info!(roots, "loaded system trust roots");
        }
        Ok(upstream)
    }

    /// Uses `certs` as the system roots (deduplicated; unparsable ones are skipped), silently.
    pub fn from_roots(certs: Vec<CertificateDer<'static>>) -> UpstreamTls {
        let mut seen = HashSet::new();
        let system_roots: Vec<_> = certs
            .into_iter()
            .filter(|c| seen.insert(Sha256::digest(c.as_ref())))
            .collect();
        let mut root_store = RootCertStore::empty();
        let (_, ignored) = root_store.add_parsable_certificates(system_roots.iter().cloned());
        UpstreamTls {
            system_roots,
            root_store,
            ignored,
            configs: RwLock::new(HashMap::new()),
        }
    }

    /// How many system roots are trusted.
    #[cfg(test)]
    fn root_count(&self) -> usize {
        self.root_store.len()
    }

    /// A verifying client configuration: system roots plus every certificate of `extra_ca_pem`,
    /// with `client_cert` (certificate chain PEM, key PEM) for client authentication.
    pub fn client_config(
        &self,
        extra_ca_pem: Option<&str>,
        client_cert: Option<(&[u8], &[u8])>,
    ) -> Result<Arc<ClientConfig>, TlsError> {
        let key = cache_key(extra_ca_pem, client_cert);
        if let Some(c) = self
            .configs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(c.clone());
        }
        let config = Arc::new(self.build(extra_ca_pem, client_cert)?);
        let mut configs = self.configs.write().unwrap_or_else(|e| e.into_inner());
        if configs.len() >= CONFIG_CACHE_CAPACITY {
            configs.clear();
        }
        Ok(configs.entry(key).or_insert(config).clone())
    }

    /// The system roots followed by the gateway CA, PEM: what agents trust (`ca-bundle.pem`).
    pub fn combined_bundle_pem(&self, ca: &CertAuthority) -> String {
        let mut out = String::new();
        for root in &self.system_roots {
            // `SSL_CERT_FILE` may point at a previous bundle: do not repeat the gateway CA.
            if root.as_ref() != ca.cert_der().as_ref() {
                out.push_str(&der_to_pem(root));
            }
        }
        out.push_str(&der_to_pem(ca.cert_der()));
        out
    }

    /// Builds a configuration (no caching).
    fn build(
        &self,
        extra_ca_pem: Option<&str>,
        client_cert: Option<(&[u8], &[u8])>,
    ) -> Result<ClientConfig, TlsError> {
        let mut roots = self.root_store.clone();
        if let Some(pem) = extra_ca_pem {
            for (i, cert) in parse_certs(pem.as_bytes(), "ca_cert")?
                .into_iter()
                .enumerate()
            {
                roots.add(cert).map_err(|e| TlsError::BadPem {
                    what: "ca_cert",
                    detail: format!("certificate {} is not a usable trust anchor ({e})", i + 1),
                })?;
            }
        }
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots);
        let mut config = match client_cert {
            None => builder.with_no_client_auth(),
            Some((chain_pem, key_pem)) => {
                let chain = parse_certs(chain_pem, "client certificate")?;
                let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::BadPem {
                    what: "client key",
                    detail: format!("no usable PEM private key ({})", pem_error_kind(&e)),
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| TlsError::BadPem {
                        what: "client certificate",
                        detail: format!("does not match its key or is unsupported ({e})"),
                    })?
            }
        };
        config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        Ok(config)
    }
}

/// Every certificate of a PEM text; none, or a malformed block, is an error.
fn parse_certs(pem: &[u8], what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            what,
            detail: format!("malformed PEM ({})", pem_error_kind(&e)),
        })?;
    if certs.is_empty() {
        return Err(TlsError::BadPem {
            what,
            detail: "no `BEGIN CERTIFICATE` block found".to_string(),
        });
    }
    Ok(certs)
}

/// A PEM parse error without any of the input (which may be key material).
fn pem_error_kind(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { .. } => "missing section end",
        E::IllegalSectionStart { .. } => "illegal section start",
        E::Base64Decode(_) => "invalid base64",
        E::Io(_) => "read error",
        E::NoItemsFound => "no item found",
        _ => "unreadable",
    }
}

/// SHA-256 over the length-prefixed inputs: the cache key, which holds no key material.
fn cache_key(extra_ca_pem: Option<&str>, client_cert: Option<(&[u8], &[u8])>) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut part = |tag: u8, bytes: Option<&[u8]>| {
        h.update([tag]);
        match bytes {
            Some(b) => {
                h.update([1]);
                h.update((b.len() as u64).to_be_bytes());
                h.update(b);
            }
            None => h.update([0]),
        }
    };
    part(b'a', extra_ca_pem.map(str::as_bytes));
    part(b'c', client_cert.map(|(c, _)| c));
    part(b'k', client_cert.map(|(_, k)| k));
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateDir;
    use crate::tls::handshake_in_memory as handshake;
    use crate::tls::LeafCache;
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    use rustls::server::WebPkiClientVerifier;
    use rustls::ServerConfig;

    fn new_ca() -> (tempfile::TempDir, Arc<CertAuthority>) {
        let tmp = tempfile::tempdir().unwrap();
        let s = StateDir::open(tmp.path()).unwrap();
        (tmp, Arc::new(CertAuthority::load_or_create(&s).unwrap()))
    }

    #[test]
    fn accepts_a_server_signed_by_the_extra_ca() {
        let (_t, ca) = new_ca();
        let up = UpstreamTls::new().unwrap();
        let server = LeafCache::new(ca.clone())
            .server_config("db.internal")
            .unwrap();
        let client = up.client_config(Some(ca.cert_pem()), None).unwrap();
        let alpn = handshake(client, server, "db.internal").unwrap();
        assert_eq!(alpn.as_deref(), Some(ALPN_HTTP11));
    }

    #[test]
    fn rejects_a_server_signed_by_an_unknown_ca() {
        let (_t1, ca) = new_ca();
        let (_t2, other) = new_ca();
        let up = UpstreamTls::new().unwrap();
        let server = LeafCache::new(other).server_config("db.internal").unwrap();
        for extra in [None, Some(ca.cert_pem())] {
            let client = up.client_config(extra, None).unwrap();
            let e = handshake(client, server.clone(), "db.internal").unwrap_err();
            // Both CAs share the subject "clawpatrol gateway CA": trusting the other one, the
            // verifier finds it by name and the signature check fails instead.
            assert!(
                matches!(
                    e,
                    rustls::Error::InvalidCertificate(
                        rustls::CertificateError::UnknownIssuer
                            | rustls::CertificateError::BadSignature
                    )
                ),
                "{e:?}"
            );
        }
    }

    #[test]
    fn configs_are_cached_by_input() {
        let (_t, ca) = new_ca();
        let up = UpstreamTls::from_roots(Vec::new());
        let a = up.client_config(Some(ca.cert_pem()), None).unwrap();
        let b = up.client_config(Some(ca.cert_pem()), None).unwrap();
        let c = up.client_config(None, None).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(a.alpn_protocols, vec![ALPN_HTTP11.to_vec()]);
    }

    #[test]
    fn bad_extra_ca_is_an_error() {
        let up = UpstreamTls::from_roots(Vec::new());
        let e = up.client_config(Some("not pem"), None).unwrap_err();
        assert_eq!(e.to_string(), "ca_cert: no `BEGIN CERTIFICATE` block found");
        let e = up
            .client_config(
                Some("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"),
                None,
            )
            .unwrap_err();
        assert!(e.to_string().starts_with("ca_cert: "), "{e}");
        let e = up
            .client_config(
                Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
                None,
            )
            .unwrap_err();
        assert!(e.to_string().contains("trust anchor"), "{e}");
    }

    #[test]
    fn bad_client_key_is_an_error_without_the_key() {
        let (_t, ca) = new_ca();
        let up = UpstreamTls::from_roots(Vec::new());
        let key =
            b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n";
        let e = up
            .client_config(None, Some((ca.cert_pem().as_bytes(), key)))
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("client certificate: "), "{msg}");
        assert!(!msg.contains("c2VjcmV0"), "{msg}");
        let e = up
            .client_config(None, Some((ca.cert_pem().as_bytes(), b"nope")))
            .unwrap_err();
        assert!(e.to_string().starts_with("client key: "), "{e}");
    }

    #[test]
    fn presents_the_client_certificate() {
        // A client CA and client certificate minted here; the server requires them.
        let client_ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let client_ca = ca_params.self_signed(&client_ca_key).unwrap();
        let issuer = Issuer::new(ca_params, client_ca_key);
        let client_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["agent".to_string()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = params.signed_by(&client_key, &issuer).unwrap();

        let (_t, ca) = new_ca();
        let mut client_roots = RootCertStore::empty();
        client_roots.add(client_ca.der().clone()).unwrap();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(client_roots), provider())
                .build()
                .unwrap();
        let name = rustls::pki_types::ServerName::try_from("mtls.internal").unwrap();
        let (chain, key) = crate::tls::leaf::mint(&ca, &name).unwrap();
        let mut server = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap();
        server.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
        let server = Arc::new(server);

        let up = UpstreamTls::from_roots(Vec::new());
        let without = up.client_config(Some(ca.cert_pem()), None).unwrap();
        assert!(handshake(without, server.clone(), "mtls.internal").is_err());
        let with = up
            .client_config(
                Some(ca.cert_pem()),
                Some((
                    client_cert.pem().as_bytes(),
                    client_key.serialize_pem().as_bytes(),
                )),
            )
            .unwrap();
        handshake(with, server, "mtls.internal").unwrap();
    }

    #[test]
    fn bundle_holds_roots_then_the_ca_once() {
        let (_t, ca) = new_ca();
        let (_t2, other) = new_ca();
        let up = UpstreamTls::from_roots(vec![
            other.cert_der().clone(),
            ca.cert_der().clone(),
            other.cert_der().clone(),
        ]);
        assert_eq!(up.root_count(), 2);
        let bundle = up.combined_bundle_pem(&ca);
        let certs: Vec<_> = CertificateDer::pem_slice_iter(bundle.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(certs, vec![other.cert_der().clone(), ca.cert_der().clone()]);
    }
}
