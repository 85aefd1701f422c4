//! Dialling upstreams: name resolution (with operator overrides), TCP connect and verified TLS.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// Why an upstream could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// Name resolution failed or returned nothing.
    #[error("cannot resolve `{host}`: {why}")]
    Resolve {
        /// The host.
        host: String,
        /// The resolver's answer.
        why: String,
    },
    /// Every address refused or timed out.
    #[error("cannot connect to `{target}`: {why}")]
    Connect {
        /// `host:port`.
        target: String,
        /// The last error.
        why: String,
    },
    /// The TLS handshake failed (certificate verification included).
    #[error("tls handshake with `{host}` failed: {why}")]
    Tls {
        /// The host.
        host: String,
        /// The handshake error.
        why: String,
    },
    /// The host is not a valid TLS server name.
    #[error("`{0}` is not a valid tls server name")]
    ServerName(String),
}

/// One `--connect-to HOST:PORT:ADDR:PORT` override: dial `to` instead of `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTo {
    /// `host:port` as the agent addressed it (lower-case host).
    pub from: String,
    /// Where to connect instead.
    pub to: SocketAddr,
}

impl std::str::FromStr for ConnectTo {
    type Err = String;

    /// Parses `HOST:PORT:ADDR:PORT` (`ADDR` may be `[v6]`).
    fn from_str(s: &str) -> Result<ConnectTo, String> {
        let bad = || {
            format!("`{s}` is not HOST:PORT:ADDR:PORT (e.g. api.example.com:443:127.0.0.1:8443)")
        };
        let (host, rest) = s.split_once(':').ok_or_else(bad)?;
        let (port, to) = rest.split_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let to: SocketAddr = to.parse().map_err(|_| bad())?;
        if host.is_empty() {
            return Err(bad());
        }
        Ok(ConnectTo {
            from: format!("{}:{port}", host.to_ascii_lowercase()),
            to,
        })
    }
}

/// Resolves and connects to upstreams.
#[derive(Debug, Clone)]
pub struct Dialer {
    overrides: HashMap<String, SocketAddr>,
    connect_timeout: Duration,
}

impl Dialer {
    /// A dialer with operator overrides and a connect timeout per attempt.
    pub fn new(overrides: &[ConnectTo], connect_timeout: Duration) -> Dialer {
        Dialer {
            overrides: overrides.iter().map(|c| (c.from.clone(), c.to)).collect(),
            connect_timeout,
        }
    }

    /// Connects to `host:port`, trying each resolved address in turn.
    pub async fn dial(&self, host: &str, port: u16) -> Result<TcpStream, UpstreamError> {
        let target = format!("{}:{port}", host.to_ascii_lowercase());
        let addrs: Vec<SocketAddr> = match self.overrides.get(&target) {
            Some(a) => vec![*a],
            None => tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| UpstreamError::Resolve {
                    host: host.to_string(),
                    why: e.to_string(),
                })?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(UpstreamError::Resolve {
                host: host.to_string(),
                why: "no addresses".to_string(),
            });
        }
        let mut last = String::new();
        for addr in addrs {
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    if let Err(e) = s.set_nodelay(true) {
                        tracing::debug!(error = %e, "set_nodelay failed");
                    }
                    return Ok(s);
                }
                Ok(Err(e)) => last = format!("{addr}: {e}"),
                Err(_) => last = format!("{addr}: timed out after {:?}", self.connect_timeout),
            }
        }
        Err(UpstreamError::Connect { target, why: last })
    }

    /// Connects and completes a verified TLS handshake (SNI = `host`).
    pub async fn dial_tls(
        &self,
        host: &str,
        port: u16,
        config: Arc<ClientConfig>,
        handshake_timeout: Duration,
    ) -> Result<TlsStream<TcpStream>, UpstreamError> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| UpstreamError::ServerName(host.to_string()))?;
        let tcp = self.dial(host, port).await?;
        let tls = TlsConnector::from(config);
        match tokio::time::timeout(handshake_timeout, tls.connect(name, tcp)).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(UpstreamError::Tls {
                host: host.to_string(),
                why: tls_reason(&e),
            }),
            Err(_) => Err(UpstreamError::Tls {
                host: host.to_string(),
                why: format!("timed out after {handshake_timeout:?}"),
            }),
        }
    }
}

/// The readable cause of a TLS error (rustls wraps it in an `io::Error`).
fn tls_reason(e: &io::Error) -> String {
    e.get_ref()
        .map(|inner| inner.to_string())
        .unwrap_or_else(|| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_connect_to() {
        let c: ConnectTo = "API.test:443:127.0.0.1:9000".parse().unwrap();
        assert_eq!(c.from, "api.test:443");
        assert_eq!(c.to, "127.0.0.1:9000".parse().unwrap());
        let v6: ConnectTo = "h:1:[::1]:2".parse().unwrap();
        assert_eq!(v6.to, "[::1]:2".parse().unwrap());
        assert!("h:443:127.0.0.1".parse::<ConnectTo>().is_err());
        assert!(":443:127.0.0.1:1".parse::<ConnectTo>().is_err());
    }

    #[tokio::test]
    async fn override_wins_over_dns() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let d = Dialer::new(
            &[format!("nonexistent.invalid:443:{addr}").parse().unwrap()],
            Duration::from_secs(2),
        );
        d.dial("nonexistent.invalid", 443).await.unwrap();
        assert!(matches!(
            d.dial("nonexistent.invalid", 444).await,
            Err(UpstreamError::Resolve { .. })
        ));
    }
}
