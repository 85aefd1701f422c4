//! Per-host leaf certificates for TLS interception (reference §9.3 item 7), minted on demand,
//! signed by the gateway CA and cached in memory.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::ServerConfig;

use super::ca::{CertAuthority, BACKDATE_SECS};
use super::{now_offset, provider, TlsError, ALPN_HTTP11};

/// Leaf validity after minting: 30 days, in seconds.
const LEAF_VALIDITY_SECS: i64 = 30 * 24 * 3600;
/// A cached leaf is re-minted once it is this old, well before it expires.
const LEAF_REFRESH_AFTER: Duration = Duration::from_secs(20 * 24 * 3600);
/// Default bound on cached leaves.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Mints leaves per host and caches their server configurations (bounded, FIFO eviction).
pub struct LeafCache {
    /// The signing CA.
    ca: Arc<CertAuthority>,
    /// Most entries kept.
    capacity: usize,
    /// Host → configuration, plus insertion order for eviction.
    inner: RwLock<Inner>,
}

/// The cache's map and its eviction queue.
#[derive(Default)]
struct Inner {
    /// Normalised host → entry.
    map: HashMap<String, Entry>,
    /// Hosts in insertion order; the front is evicted first.
    order: VecDeque<String>,
}

/// One cached leaf.
struct Entry {
    /// The configuration serving the leaf.
    config: Arc<ServerConfig>,
    /// When the leaf was minted.
    minted: Instant,
}

impl Entry {
    /// Whether the entry may still be served.
    fn fresh(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.minted) < LEAF_REFRESH_AFTER
    }
}

impl std::fmt::Debug for LeafCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the leaf keys.
        f.debug_struct("LeafCache")
            .field("ca", &self.ca)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl LeafCache {
    /// A cache of up to [`DEFAULT_CAPACITY`] leaves signed by `ca`.
    pub fn new(ca: Arc<CertAuthority>) -> LeafCache {
        LeafCache::with_capacity(ca, DEFAULT_CAPACITY)
    }

    /// A cache of up to `capacity` (at least one) leaves signed by `ca`.
    pub fn with_capacity(ca: Arc<CertAuthority>, capacity: usize) -> LeafCache {
        LeafCache {
            ca,
            capacity: capacity.max(1),
            inner: RwLock::new(Inner::default()),
        }
    }

    /// The server configuration presenting a leaf for `host` (DNS name or IP address).
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, TlsError> {
        let key = normalize_host(host);
        let now = Instant::now();
        {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            if let Some(e) = inner.map.get(key.as_ref()) {
                if e.fresh(now) {
                    return Ok(e.config.clone());
                }
            }
        }
        let name = ServerName::try_from(key.as_ref())
            .map_err(|_| TlsError::InvalidHost(host.to_string()))?
            .to_owned();
        let config = Arc::new(server_config_for(&self.ca, &name)?);
        tracing::debug!(host = %key, "minted a leaf certificate");
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let inner = &mut *inner;
        if let Some(e) = inner.map.get_mut(key.as_ref()) {
            if e.fresh(now) {
                // Another caller minted it meanwhile; serve one leaf per host.
                return Ok(e.config.clone());
            }
            e.config = config.clone();
            e.minted = now;
            return Ok(config);
        }
        while inner.map.len() >= self.capacity {
            match inner.order.pop_front() {
                Some(old) => {
                    inner.map.remove(&old);
                }
                None => break,
            }
        }
        let key = key.into_owned();
        inner.order.push_back(key.clone());
        inner.map.insert(
            key,
            Entry {
                config: config.clone(),
                minted: now,
            },
        );
        Ok(config)
    }

    /// How many leaves are cached.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .map
            .len()
    }

    /// Whether no leaf is cached.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Lower-cases `host` and drops a trailing dot and IPv6 brackets; borrows when already clean.
fn normalize_host(host: &str) -> Cow<'_, str> {
    let h = host.trim();
    let h = h.strip_suffix('.').unwrap_or(h);
    let h = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h);
    if h.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(h.to_ascii_lowercase())
    } else {
        Cow::Borrowed(h)
    }
}

/// A server configuration presenting a fresh leaf for `name`, ALPN `http/1.1` only.
fn server_config_for(ca: &CertAuthority, name: &ServerName<'_>) -> Result<ServerConfig, TlsError> {
    let (chain, key) = mint(ca, name)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN_HTTP11.to_vec()];
    Ok(config)
}

/// Mints a leaf for `name`: ECDSA P-256, CN = host, SAN = DNS name or IP, valid now−1h …
/// now+30d, serverAuth; returns the chain (leaf, CA) and the leaf key.
pub(crate) fn mint(
    ca: &CertAuthority,
    name: &ServerName<'_>,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let (cn, san) = match name {
        ServerName::DnsName(d) => {
            let s = d.as_ref().to_string();
            let ia5 = s
                .as_str()
                .try_into()
                .map_err(|_| TlsError::InvalidHost(s.clone()))?;
            (s, SanType::DnsName(ia5))
        }
        ServerName::IpAddress(ip) => {
            let ip = std::net::IpAddr::from(*ip);
            (ip.to_string(), SanType::IpAddress(ip))
        }
        other => return Err(TlsError::InvalidHost(format!("{other:?}"))),
    };
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.subject_alt_names = vec![san];
    params.not_before = now_offset(-BACKDATE_SECS);
    params.not_after = now_offset(LEAF_VALIDITY_SECS);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, ca.issuer())?;
    let chain = vec![cert.der().clone(), ca.cert_der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((chain, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::StateDir;
    use crate::tls::handshake_in_memory as handshake;
    use crate::tls::UpstreamTls;

    fn new_ca() -> (tempfile::TempDir, Arc<CertAuthority>) {
        let tmp = tempfile::tempdir().unwrap();
        let s = StateDir::open(tmp.path()).unwrap();
        let ca = CertAuthority::load_or_create(&s).unwrap();
        (tmp, Arc::new(ca))
    }

    fn client_trusting(ca: &CertAuthority) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert_der().clone()).unwrap();
        let mut c = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        c.alpn_protocols = vec![b"h2".to_vec(), ALPN_HTTP11.to_vec()];
        Arc::new(c)
    }

    #[test]
    fn dns_leaf_verifies_against_the_ca() {
        let (_tmp, ca) = new_ca();
        let leaves = LeafCache::new(ca.clone());
        let server = leaves.server_config("api.example.test").unwrap();
        let alpn = handshake(client_trusting(&ca), server, "api.example.test").unwrap();
        assert_eq!(alpn.as_deref(), Some(ALPN_HTTP11));
    }

    #[test]
    fn ip_leaves_verify_against_the_ca() {
        let (_tmp, ca) = new_ca();
        let leaves = LeafCache::new(ca.clone());
        for (host, name) in [("127.0.0.1", "127.0.0.1"), ("[::1]", "::1")] {
            let server = leaves.server_config(host).unwrap();
            handshake(client_trusting(&ca), server, name).unwrap();
        }
    }

    #[test]
    fn leaf_for_another_host_is_refused() {
        let (_tmp, ca) = new_ca();
        let leaves = LeafCache::new(ca.clone());
        let server = leaves.server_config("a.example.test").unwrap();
        let e = handshake(client_trusting(&ca), server, "b.example.test").unwrap_err();
        assert!(matches!(e, rustls::Error::InvalidCertificate(_)), "{e:?}");
    }

    #[test]
    fn upstream_client_with_ca_as_extra_root_accepts_leaf() {
        let (_tmp, ca) = new_ca();
        let leaves = LeafCache::new(ca.clone());
        let up = UpstreamTls::new().unwrap();
        let client = up.client_config(Some(ca.cert_pem()), None).unwrap();
        let server = leaves.server_config("Internal.Example.Test.").unwrap();
        handshake(client, server, "internal.example.test").unwrap();
    }

    #[test]
    fn cache_hits_reuse_and_evicts_when_full() {
        let (_tmp, ca) = new_ca();
        let leaves = LeafCache::with_capacity(ca, 2);
        let a = leaves.server_config("a.test").unwrap();
        assert!(Arc::ptr_eq(&a, &leaves.server_config("A.TEST").unwrap()));
        leaves.server_config("b.test").unwrap();
        leaves.server_config("c.test").unwrap();
        assert_eq!(leaves.len(), 2);
        // `a.test` was evicted first, so it is minted again.
        assert!(!Arc::ptr_eq(&a, &leaves.server_config("a.test").unwrap()));
        assert_eq!(leaves.len(), 2);
    }

    #[test]
    fn invalid_hosts_are_refused() {
        let (_tmp, ca) = new_ca();
        let leaves = LeafCache::new(ca);
        for bad in ["", "exa mple.test", "a..b", "host:443"] {
            let e = leaves.server_config(bad).unwrap_err();
            assert!(matches!(e, TlsError::InvalidHost(_)), "{bad}: {e:?}");
        }
        assert!(leaves.is_empty());
    }

    #[test]
    fn concurrent_callers_share_one_leaf() {
        let (_tmp, ca) = new_ca();
        let leaves = Arc::new(LeafCache::new(ca));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let l = leaves.clone();
                std::thread::spawn(move || l.server_config("same.test").unwrap())
            })
            .collect();
        let configs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let first = leaves.server_config("same.test").unwrap();
        assert!(configs.iter().all(|c| Arc::ptr_eq(c, &first)));
        assert_eq!(leaves.len(), 1);
    }
}
