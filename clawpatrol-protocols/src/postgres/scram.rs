//! SCRAM-SHA-256 client (RFC 5802 / RFC 7677) for authenticating to an upstream server.
//!
//! Pure: the caller supplies the client nonce. Only `n,,` (no channel binding) is spoken.
//!
//! SASLprep restriction: passwords of printable ASCII are used as is (SASLprep is the identity
//! on them). For other passwords only the RFC 4013 mappings are applied (non-ASCII spaces to
//! U+0020, "commonly mapped to nothing" characters removed); NFKC normalisation and the
//! prohibited-character checks are not, so a non-ASCII password that NFKC changes fails to
//! authenticate (clear error from the server, never a wrong grant).
//!
//! Flow: [`ScramClient::new`] → send [`ScramClient::client_first`] in a SASLInitialResponse
//! with mechanism [`SCRAM_SHA_256`] → [`ScramClient::handle_server_first`] with the
//! SASLContinue data → send [`ScramClientFinal::client_final`] in a SASLResponse →
//! [`ScramClientFinal::verify_server_final`] with the SASLFinal data.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use thiserror::Error;

type HmacSha256 = Hmac<Sha256>;

/// SASL mechanism name of SCRAM-SHA-256.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
/// Largest iteration count accepted from a server (bounds CPU spent per login).
pub const MAX_ITERATIONS: u32 = 1_000_000;
/// Smallest client nonce length (characters) accepted; 24 base64 characters encode 18 bytes.
pub const MIN_CLIENT_NONCE_LEN: usize = 24;

/// The GS2 header for "client does not support channel binding", base64 `biws`.
const GS2_HEADER: &str = "n,,";

/// Errors of the SCRAM exchange.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScramError {
    /// The client nonce is too short or has characters outside printable ASCII minus `,`.
    #[error("client nonce must be at least {MIN_CLIENT_NONCE_LEN} printable ASCII characters without `,`")]
    BadClientNonce,
    /// A server message is not valid UTF-8 or lacks a required attribute.
    #[error("malformed server-{step} message: {detail}")]
    Malformed {
        /// `first` or `final`.
        step: &'static str,
        /// What is wrong.
        detail: &'static str,
    },
    /// The server asked for an extension (`m=`) this client does not support.
    #[error("server requires an unsupported SCRAM extension")]
    MandatoryExtension,
    /// The server nonce does not extend the client nonce.
    #[error("server nonce does not start with the client nonce")]
    NonceMismatch,
    /// The salt is not base64 or is empty.
    #[error("invalid salt in server-first message")]
    BadSalt,
    /// The iteration count is not a number in `1..=MAX_ITERATIONS`.
    #[error("iteration count `{0}` is outside 1..=1000000")]
    BadIterations(String),
    /// The server reported an error in server-final (`e=`).
    #[error("server rejected authentication: `{0}`")]
    Server(String),
    /// The server signature does not match: the server does not know the password.
    #[error("server signature mismatch; the server could not prove it knows the password")]
    BadServerSignature,
}

/// SCRAM client after client-first, waiting for server-first.
#[derive(Debug, Clone)]
pub struct ScramClient {
    password: Vec<u8>,
    nonce: String,
    client_first_bare: String,
}

/// SCRAM client after client-final, waiting for server-final.
#[derive(Debug, Clone)]
pub struct ScramClientFinal {
    client_final: String,
    server_signature: [u8; 32],
}

impl ScramClient {
    /// Starts an exchange; `client_nonce` must be ≥ 18 random bytes, base64-encoded, by the caller.
    ///
    /// Postgres ignores the SCRAM user name (it uses the StartupMessage's); pass it or `""`.
    pub fn new(user: &str, password: &str, client_nonce: &str) -> Result<Self, ScramError> {
        let nonce_ok = client_nonce.len() >= MIN_CLIENT_NONCE_LEN
            && client_nonce
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b',');
        if !nonce_ok {
            return Err(ScramError::BadClientNonce);
        }
        let user = user.replace('=', "=3D").replace(',', "=2C");
        Ok(ScramClient {
            password: saslprep(password).into_bytes(),
            nonce: client_nonce.to_owned(),
            client_first_bare: format!("n={user},r={client_nonce}"),
        })
    }

    /// The client-first message (SASLInitialResponse data).
    pub fn client_first(&self) -> String {
        format!("{GS2_HEADER}{}", self.client_first_bare)
    }

    /// Consumes server-first (SASLContinue data) and computes client-final with the proof.
    pub fn handle_server_first(self, server_first: &[u8]) -> Result<ScramClientFinal, ScramError> {
        let bad = |detail| ScramError::Malformed {
            step: "first",
            detail,
        };
        let text = std::str::from_utf8(server_first).map_err(|_| bad("not UTF-8"))?;
        if text.starts_with("m=") {
            return Err(ScramError::MandatoryExtension);
        }
        let mut parts = text.split(',');
        let nonce = parts
            .next()
            .and_then(|p| p.strip_prefix("r="))
            .ok_or(bad("missing nonce"))?;
        let salt = parts
            .next()
            .and_then(|p| p.strip_prefix("s="))
            .ok_or(bad("missing salt"))?;
        let iters = parts
            .next()
            .and_then(|p| p.strip_prefix("i="))
            .ok_or(bad("missing iteration count"))?;
        if nonce.len() <= self.nonce.len()
            || !nonce.starts_with(&self.nonce)
            || !nonce.bytes().all(|b| (0x21..=0x7e).contains(&b))
        {
            return Err(ScramError::NonceMismatch);
        }
        let salt_bytes = B64.decode(salt).map_err(|_| ScramError::BadSalt)?;
        if salt_bytes.is_empty() {
            return Err(ScramError::BadSalt);
        }
        let iterations = iters
            .parse::<u32>()
            .ok()
            .filter(|i| (1..=MAX_ITERATIONS).contains(i))
            .ok_or_else(|| ScramError::BadIterations(iters.chars().take(32).collect()))?;

        let salted = hi(&self.password, &salt_bytes, iterations);
        let client_key = hmac(&salted, b"Client Key");
        let stored_key: [u8; 32] = Sha256::digest(client_key).into();
        let without_proof = format!("c={},r={nonce}", B64.encode(GS2_HEADER));
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let client_signature = hmac(&stored_key, auth_message.as_bytes());
        let mut proof = client_key;
        for (p, s) in proof.iter_mut().zip(client_signature) {
            *p ^= s;
        }
        let server_key = hmac(&salted, b"Server Key");
        let server_signature = hmac(&server_key, auth_message.as_bytes());
        Ok(ScramClientFinal {
            client_final: format!("{without_proof},p={}", B64.encode(proof)),
            server_signature,
        })
    }
}

impl ScramClientFinal {
    /// The client-final message (SASLResponse data).
    pub fn client_final(&self) -> &str {
        &self.client_final
    }

    /// Checks server-final (SASLFinal data): the server signature must match.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let bad = |detail| ScramError::Malformed {
            step: "final",
            detail,
        };
        let text = std::str::from_utf8(server_final).map_err(|_| bad("not UTF-8"))?;
        let first = text.split(',').next().unwrap_or_default();
        if let Some(e) = first.strip_prefix("e=") {
            return Err(ScramError::Server(e.chars().take(128).collect()));
        }
        let v = first.strip_prefix("v=").ok_or(bad("missing verifier"))?;
        let sig = B64.decode(v).map_err(|_| bad("verifier is not base64"))?;
        if sig.len() != 32 {
            return Err(ScramError::BadServerSignature);
        }
        let diff = sig
            .iter()
            .zip(self.server_signature.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(ScramError::BadServerSignature);
        }
        Ok(())
    }
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = keyed(key);
    m.update(data);
    m.finalize().into_bytes().into()
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length; the error branch is unreachable.
    match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => HmacSha256::new(&Default::default()),
    }
}

/// `Hi(password, salt, i)` of RFC 5802: PBKDF2-HMAC-SHA-256 with one output block.
fn hi(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let base = keyed(password);
    let mut m = base.clone();
    m.update(salt);
    m.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = m.finalize().into_bytes().into();
    let mut out = u;
    for _ in 1..iterations {
        let mut m = base.clone();
        m.update(&u);
        u = m.finalize().into_bytes().into();
        for (o, x) in out.iter_mut().zip(u) {
            *o ^= x;
        }
    }
    out
}

/// The RFC 4013 mapping step (without NFKC); identity on ASCII.
fn saslprep(password: &str) -> String {
    if password.is_ascii() {
        return password.to_owned();
    }
    password
        .chars()
        .filter_map(|c| match c {
            '\u{00AD}'
            | '\u{034F}'
            | '\u{1806}'
            | '\u{180B}'..='\u{180D}'
            | '\u{200C}'
            | '\u{200D}'
            | '\u{2060}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}' => None,
            '\u{00A0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200B}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}' => Some(' '),
            c => Some(c),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";

    fn client() -> ScramClient {
        // The RFC 7677 nonce is 20 characters; build the client directly to use it.
        ScramClient {
            password: b"pencil".to_vec(),
            nonce: "rOprNGfwEbeRWgbNEkqO".into(),
            client_first_bare: "n=user,r=rOprNGfwEbeRWgbNEkqO".into(),
        }
    }

    #[test]
    fn rfc7677_vector() {
        let c = client();
        assert_eq!(c.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let f = c.handle_server_first(SERVER_FIRST.as_bytes()).unwrap();
        // The proof printed in RFC 7677 section 3 (also recomputed with Python's hashlib/hmac).
        assert_eq!(
            f.client_final(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        f.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
    }

    #[test]
    fn wrong_server_signature_is_rejected() {
        let f = client()
            .handle_server_first(SERVER_FIRST.as_bytes())
            .unwrap();
        assert_eq!(
            f.verify_server_final(b"v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Err(ScramError::BadServerSignature)
        );
        assert_eq!(
            f.verify_server_final(b"v=AAAA"),
            Err(ScramError::BadServerSignature)
        );
        assert_eq!(
            f.verify_server_final(b"e=invalid-proof"),
            Err(ScramError::Server("invalid-proof".into()))
        );
        assert!(f.verify_server_final(b"x=1").is_err());
        assert!(f.verify_server_final(&[0xff]).is_err());
    }

    #[test]
    fn server_first_is_validated() {
        let bad = [
            "r=someoneelse123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOx,s=!!!,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOx,s=,i=4096",
            "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
            "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1000001",
            "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1",
            "r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==",
            "m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1",
            "",
        ];
        for b in bad {
            assert!(client().handle_server_first(b.as_bytes()).is_err(), "{b}");
        }
    }

    #[test]
    fn nonce_and_user_rules() {
        assert_eq!(
            ScramClient::new("u", "p", "short").unwrap_err(),
            ScramError::BadClientNonce
        );
        assert!(ScramClient::new("u", "p", "abcdefghijklmnopqrstuvw,").is_err());
        let c = ScramClient::new("a=b,c", "p", "abcdefghijklmnopqrstuvwx").unwrap();
        assert_eq!(
            c.client_first(),
            "n,,n=a=3Db=2Cc,r=abcdefghijklmnopqrstuvwx"
        );
    }

    #[test]
    fn saslprep_mappings() {
        assert_eq!(saslprep("pencil"), "pencil");
        assert_eq!(saslprep("a\u{00A0}b\u{00AD}c"), "a bc");
    }
}
