//! The upstream leg of a Postgres session: dial, TLS per `sslmode`, and authentication with
//! the real secret (SCRAM-SHA-256 with server-signature check, MD5, cleartext, trust).

use std::sync::Arc;

use base64::Engine as _;
use clawpatrol_core::config::model::{AttrValue, Endpoint};
use clawpatrol_protocols::postgres::scram::SCRAM_SHA_256;
use clawpatrol_protocols::postgres::{
    md5_password, Authentication, BackendDecoder, BackendMessage, Decoded, FrontendMessage,
    ScramClient, ScramClientFinal,
};
use ring::rand::SecureRandom;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;

use super::{BoxStream, SessionError};
use crate::runtime::Shared;

/// ALPN protocol id of Postgres over TLS.
const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// `sslmode` of a postgres endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plaintext, no probe.
    Disable,
    /// TLS when the server offers it (not verified), else plaintext.
    Prefer,
    /// TLS required, certificate not verified (libpq semantics).
    Require,
    /// TLS required, certificate verified against system roots plus the endpoint's `ca_cert`.
    VerifyFull,
}

/// Where and how to reach an endpoint's server.
#[derive(Debug, Clone)]
pub struct UpstreamTarget {
    /// Host name or address.
    pub host: String,
    /// Port (default 5432).
    pub port: u16,
    /// TLS mode.
    pub sslmode: SslMode,
    /// Extra trusted CA certificates (PEM) for `verify-full`.
    pub ca_pem: Option<String>,
}

impl UpstreamTarget {
    /// The target of a `postgres` endpoint: its first host entry, `sslmode` (default `prefer`).
    pub fn of(ep: &Endpoint) -> Result<UpstreamTarget, SessionError> {
        let first = ep.hosts.first().ok_or_else(|| {
            SessionError::Config(format!("endpoint `{}` has no host", ep.typed_name()))
        })?;
        let str_attr = |k: &str| match ep.attrs.get(k) {
            Some(AttrValue::Str(s)) => Some(s.clone()),
            _ => None,
        };
        let sslmode = match str_attr("sslmode").as_deref() {
            None | Some("prefer") => SslMode::Prefer,
            Some("disable") => SslMode::Disable,
            Some("require") => SslMode::Require,
            Some("verify-full") => SslMode::VerifyFull,
            Some(other) => {
                return Err(SessionError::Config(format!(
                    "unknown sslmode `{other}` on `{}`",
                    ep.typed_name()
                )))
            }
        };
        Ok(UpstreamTarget {
            host: first.host.clone(),
            port: first.port.unwrap_or(5432),
            sslmode,
            ca_pem: str_attr("ca_cert"),
        })
    }
}

/// Dials the server and negotiates TLS per `sslmode`; the stream is ready for a startup packet.
pub async fn connect(shared: &Shared, t: &UpstreamTarget) -> Result<BoxStream, SessionError> {
    let mut tcp = shared
        .dialer
        .dial(&t.host, t.port)
        .await
        .map_err(|e| SessionError::Upstream(e.to_string()))?;
    if t.sslmode == SslMode::Disable {
        return Ok(Box::new(tcp));
    }
    let probe = FrontendMessage::SslRequest
        .to_bytes()
        .map_err(SessionError::Protocol)?;
    tcp.write_all(&probe).await?;
    let mut answer = [0u8; 1];
    // Exactly one byte is read: nothing sent before the handshake can be smuggled in.
    tokio::time::timeout(shared.timeouts.handshake, tcp.read_exact(&mut answer))
        .await
        .map_err(|_| SessionError::Upstream("timed out waiting for the SSL answer".into()))??;
    match (answer[0], t.sslmode) {
        (b'S', mode) => {
            let config = tls_config(shared, t, mode)?;
            let name = ServerName::try_from(t.host.clone())
                .map_err(|_| SessionError::Upstream(format!("`{}` is not a tls name", t.host)))?;
            let tls = tokio::time::timeout(
                shared.timeouts.handshake,
                TlsConnector::from(config).connect(name, tcp),
            )
            .await
            .map_err(|_| SessionError::Upstream("tls handshake timed out".into()))?
            .map_err(|e| SessionError::Upstream(format!("tls handshake failed: {e}")))?;
            Ok(Box::new(tls))
        }
        (b'N', SslMode::Prefer) => Ok(Box::new(tcp)),
        (b'N', _) => Err(SessionError::Upstream(
            "the server does not accept TLS but the endpoint's sslmode requires it".into(),
        )),
        (other, _) => Err(SessionError::Upstream(format!(
            "unexpected answer {other:#04x} to SSLRequest"
        ))),
    }
}

/// The TLS client configuration for `mode`, with ALPN `postgresql`.
fn tls_config(
    shared: &Shared,
    t: &UpstreamTarget,
    mode: SslMode,
) -> Result<Arc<ClientConfig>, SessionError> {
    let mut config = if mode == SslMode::VerifyFull {
        let base = shared
            .upstream_tls
            .client_config(t.ca_pem.as_deref(), None)
            .map_err(|e| SessionError::Upstream(e.to_string()))?;
        (*base).clone()
    } else {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| SessionError::Upstream(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth()
    };
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    Ok(Arc::new(config))
}

/// `prefer`/`require`: encrypt without verifying the certificate (libpq semantics); the
/// handshake signature is still checked so the channel is bound to the presented key.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Reads the next upstream message (authentication and post-auth phase).
pub async fn next_message(
    up: &mut BoxStream,
    dec: &mut BackendDecoder,
    buf: &mut [u8],
) -> Result<BackendMessage, SessionError> {
    loop {
        match dec.next_frame().map_err(SessionError::Protocol)? {
            Some(Decoded::Message(m)) => return Ok(m),
            Some(_) => {
                return Err(SessionError::Upstream(
                    "oversize frame during authentication".into(),
                ))
            }
            None => {}
        }
        let n = up.read(buf).await?;
        if n == 0 {
            return Err(SessionError::Upstream(
                "the server closed the connection during authentication".into(),
            ));
        }
        dec.feed(&buf[..n]);
    }
}

async fn send(up: &mut BoxStream, msg: &FrontendMessage) -> Result<(), SessionError> {
    let bytes = msg.to_bytes().map_err(SessionError::Protocol)?;
    up.write_all(&bytes).await?;
    Ok(())
}

/// A fresh SCRAM client nonce: 18 random bytes, base64 (24 characters).
fn client_nonce() -> Result<String, SessionError> {
    let mut raw = [0u8; 18];
    ring::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| SessionError::Upstream("no randomness for the SCRAM nonce".into()))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(raw))
}

/// Sends `startup` and answers the server's authentication requests with `user`/`password`
/// until AuthenticationOk. Returns the decoder (it may hold post-auth bytes already).
pub async fn authenticate(
    up: &mut BoxStream,
    startup: &FrontendMessage,
    user: &str,
    password: &str,
) -> Result<BackendDecoder, SessionError> {
    send(up, startup).await?;
    let mut dec = BackendDecoder::new();
    let mut buf = vec![0u8; 8192];
    let mut scram: Option<ScramClient> = None;
    let mut scram_final: Option<ScramClientFinal> = None;
    let mut scram_verified = false;
    loop {
        let msg = next_message(up, &mut dec, &mut buf).await?;
        let auth = match msg {
            BackendMessage::Authentication(a) => a,
            BackendMessage::ErrorResponse(f) => {
                return Err(SessionError::Upstream(format!(
                    "the server refused the login: {} {}",
                    f.code().unwrap_or(""),
                    f.message().unwrap_or("")
                )))
            }
            BackendMessage::NoticeResponse(_) => continue,
            other => {
                return Err(SessionError::Upstream(format!(
                    "unexpected message {:?} during authentication",
                    char::from(other.tag())
                )))
            }
        };
        match auth {
            Authentication::Ok => {
                if scram.is_some() || (scram_final.is_some() && !scram_verified) {
                    return Err(SessionError::Upstream(
                        "the server ended SCRAM without proving it knows the password".into(),
                    ));
                }
                return Ok(dec);
            }
            Authentication::CleartextPassword => {
                send(up, &FrontendMessage::Password(password.as_bytes().to_vec())).await?;
            }
            Authentication::Md5Password { salt } => {
                let hash = md5_password(user.as_bytes(), password.as_bytes(), salt);
                send(up, &FrontendMessage::Password(hash.into_bytes())).await?;
            }
            Authentication::Sasl { mechanisms } => {
                if !mechanisms.iter().any(|m| m == SCRAM_SHA_256) {
                    return Err(SessionError::Upstream(format!(
                        "the server offers only unsupported SASL mechanisms: {}",
                        mechanisms.join(", ")
                    )));
                }
                let client = ScramClient::new("", password, &client_nonce()?)
                    .map_err(|e| SessionError::Upstream(e.to_string()))?;
                send(
                    up,
                    &FrontendMessage::SaslInitialResponse {
                        mechanism: SCRAM_SHA_256.to_string(),
                        data: Some(client.client_first().into_bytes()),
                    },
                )
                .await?;
                scram = Some(client);
            }
            Authentication::SaslContinue(data) => {
                let client = scram.take().ok_or_else(|| {
                    SessionError::Upstream("SASLContinue without a SCRAM exchange".into())
                })?;
                let fin = client
                    .handle_server_first(&data)
                    .map_err(|e| SessionError::Upstream(e.to_string()))?;
                send(
                    up,
                    &FrontendMessage::SaslResponse(fin.client_final().as_bytes().to_vec()),
                )
                .await?;
                scram_final = Some(fin);
            }
            Authentication::SaslFinal(data) => {
                let fin = scram_final.as_ref().ok_or_else(|| {
                    SessionError::Upstream("SASLFinal without a SCRAM exchange".into())
                })?;
                fin.verify_server_final(&data)
                    .map_err(|e| SessionError::Upstream(e.to_string()))?;
                scram_verified = true;
            }
            Authentication::Unsupported { code, .. } => {
                return Err(SessionError::Upstream(format!(
                    "the server asks for authentication method {code}, which is not supported"
                )))
            }
        }
    }
}
