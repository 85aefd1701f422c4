//! TLS ClientHello peeking: SNI and ALPN from the first bytes of a connection, without
//! consuming them (the caller re-attaches the prefix when it forwards or terminates TLS).

/// Largest TLS plaintext record payload (RFC 8446 §5.1).
const MAX_RECORD: usize = 1 << 14;
/// Largest ClientHello handshake message accepted.
pub const MAX_CLIENT_HELLO: usize = 64 * 1024;

const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;

/// What a ClientHello tells before the handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// The `host_name` of the server_name extension, as sent (not lower-cased).
    pub server_name: Option<String>,
    /// The ALPN protocol names offered, in order (raw bytes, e.g. `b"http/1.1"`).
    pub alpn: Vec<Vec<u8>>,
}

/// The answer of [`peek_client_hello`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peek {
    /// The ClientHello is not complete yet; read more and peek again from the start.
    NeedMore,
    /// The ClientHello is complete.
    Complete(ClientHello),
}

/// Why bytes are not a usable ClientHello.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// The bytes do not start with a TLS handshake record.
    #[error("not a tls handshake")]
    NotTls,
    /// The first handshake message is not a ClientHello.
    #[error("first tls handshake message is not a client hello")]
    NotClientHello,
    /// A record or the ClientHello exceeds its size limit.
    #[error("tls client hello exceeds {limit} bytes")]
    TooLarge {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The ClientHello is malformed.
    #[error("malformed tls client hello: {0}")]
    Malformed(&'static str),
}

/// Peeks a ClientHello at the start of `bytes` (possibly spread over several records);
/// `bytes` is not consumed. Partial input answers [`Peek::NeedMore`].
pub fn peek_client_hello(bytes: &[u8]) -> Result<Peek, TlsError> {
    let mut handshake: Vec<u8> = Vec::new();
    let mut pos = 0;
    loop {
        // Record header: type, version (2), length (2).
        let Some(header) = bytes.get(pos..pos + 5) else {
            check_record_prefix(&bytes[pos.min(bytes.len())..])?;
            return Ok(Peek::NeedMore);
        };
        if header[0] != CONTENT_HANDSHAKE || header[1] != 3 {
            return Err(if pos == 0 {
                TlsError::NotTls
            } else {
                TlsError::Malformed("non-handshake record inside client hello")
            });
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 {
            return Err(TlsError::Malformed("empty handshake record"));
        }
        if len > MAX_RECORD {
            return Err(TlsError::TooLarge { limit: MAX_RECORD });
        }
        let Some(payload) = bytes.get(pos + 5..pos + 5 + len) else {
            // Check what we already have so a wrong message type fails early.
            let have = &bytes[pos + 5..];
            if handshake.is_empty() && have.first().is_some_and(|&t| t != HANDSHAKE_CLIENT_HELLO) {
                return Err(TlsError::NotClientHello);
            }
            return Ok(Peek::NeedMore);
        };
        handshake.extend_from_slice(payload);
        pos += 5 + len;
        if handshake[0] != HANDSHAKE_CLIENT_HELLO {
            return Err(TlsError::NotClientHello);
        }
        if handshake.len() < 4 {
            continue;
        }
        let body_len = usize::from(handshake[1]) << 16
            | usize::from(handshake[2]) << 8
            | usize::from(handshake[3]);
        if body_len > MAX_CLIENT_HELLO {
            return Err(TlsError::TooLarge {
                limit: MAX_CLIENT_HELLO,
            });
        }
        if handshake.len() >= 4 + body_len {
            return parse_client_hello(&handshake[4..4 + body_len]).map(Peek::Complete);
        }
    }
}

/// Rejects a partial record header that already cannot be TLS.
fn check_record_prefix(prefix: &[u8]) -> Result<(), TlsError> {
    if prefix.first().is_some_and(|&t| t != CONTENT_HANDSHAKE)
        || prefix.get(1).is_some_and(|&v| v != 3)
    {
        return Err(TlsError::NotTls);
    }
    Ok(())
}

/// A bounds-checked reader over a byte slice.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], TlsError> {
        if n > self.buf.len() {
            return Err(TlsError::Malformed(what));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, TlsError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, TlsError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn vec8(&mut self, what: &'static str) -> Result<&'a [u8], TlsError> {
        let n = usize::from(self.u8(what)?);
        self.take(n, what)
    }

    fn vec16(&mut self, what: &'static str) -> Result<&'a [u8], TlsError> {
        let n = usize::from(self.u16(what)?);
        self.take(n, what)
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Parses the body of a ClientHello handshake message.
fn parse_client_hello(body: &[u8]) -> Result<ClientHello, TlsError> {
    let mut r = Reader { buf: body };
    r.take(2, "legacy version")?;
    r.take(32, "random")?;
    let session_id = r.vec8("session id")?;
    if session_id.len() > 32 {
        return Err(TlsError::Malformed("session id longer than 32 bytes"));
    }
    let suites = r.vec16("cipher suites")?;
    if suites.is_empty() || suites.len() % 2 != 0 {
        return Err(TlsError::Malformed("cipher suites"));
    }
    if r.vec8("compression methods")?.is_empty() {
        return Err(TlsError::Malformed("compression methods"));
    }
    let mut hello = ClientHello::default();
    if r.is_empty() {
        return Ok(hello);
    }
    let mut exts = Reader {
        buf: r.vec16("extensions")?,
    };
    if !r.is_empty() {
        return Err(TlsError::Malformed("trailing bytes after extensions"));
    }
    let mut seen: Vec<u16> = Vec::new();
    while !exts.is_empty() {
        let ty = exts.u16("extension type")?;
        let data = exts.vec16("extension data")?;
        if seen.contains(&ty) {
            return Err(TlsError::Malformed("duplicate extension"));
        }
        seen.push(ty);
        match ty {
            EXT_SERVER_NAME => hello.server_name = parse_sni(data)?,
            EXT_ALPN => hello.alpn = parse_alpn(data)?,
            _ => {}
        }
    }
    Ok(hello)
}

/// Parses the server_name extension; the first `host_name` entry wins.
fn parse_sni(data: &[u8]) -> Result<Option<String>, TlsError> {
    let mut r = Reader { buf: data };
    let mut list = Reader {
        buf: r.vec16("server name list")?,
    };
    if !r.is_empty() || list.is_empty() {
        return Err(TlsError::Malformed("server name list"));
    }
    let mut host = None;
    while !list.is_empty() {
        let kind = list.u8("server name type")?;
        let name = list.vec16("server name")?;
        if kind == 0 && host.is_none() {
            if name.is_empty() || !name.iter().all(|b| b.is_ascii_graphic()) {
                return Err(TlsError::Malformed("server name is not an ascii host name"));
            }
            host = Some(String::from_utf8_lossy(name).into_owned());
        }
    }
    Ok(host)
}

/// Parses the ALPN extension's protocol name list.
fn parse_alpn(data: &[u8]) -> Result<Vec<Vec<u8>>, TlsError> {
    let mut r = Reader { buf: data };
    let mut list = Reader {
        buf: r.vec16("alpn list")?,
    };
    if !r.is_empty() || list.is_empty() {
        return Err(TlsError::Malformed("alpn list"));
    }
    let mut out = Vec::new();
    while !list.is_empty() {
        let name = list.vec8("alpn protocol")?;
        if name.is_empty() {
            return Err(TlsError::Malformed("empty alpn protocol name"));
        }
        out.push(name.to_vec());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal hand-built ClientHello body with the given extensions block.
    fn hello_body(exts: &[u8]) -> Vec<u8> {
        let mut b = vec![3, 3];
        b.extend_from_slice(&[7; 32]);
        b.push(0); // session id
        b.extend_from_slice(&[0, 2, 0x13, 0x01]); // one suite
        b.extend_from_slice(&[1, 0]); // null compression
        b.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        b.extend_from_slice(exts);
        b
    }

    fn ext(ty: u16, data: &[u8]) -> Vec<u8> {
        let mut e = ty.to_be_bytes().to_vec();
        e.extend_from_slice(&(data.len() as u16).to_be_bytes());
        e.extend_from_slice(data);
        e
    }

    fn sni_ext(host: &[u8]) -> Vec<u8> {
        let mut entry = vec![0];
        entry.extend_from_slice(&(host.len() as u16).to_be_bytes());
        entry.extend_from_slice(host);
        let mut d = (entry.len() as u16).to_be_bytes().to_vec();
        d.extend_from_slice(&entry);
        ext(EXT_SERVER_NAME, &d)
    }

    fn records(body: &[u8], split: usize) -> Vec<u8> {
        let mut msg = vec![HANDSHAKE_CLIENT_HELLO];
        msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        msg.extend_from_slice(body);
        let mut out = Vec::new();
        for part in msg.chunks(split) {
            out.extend_from_slice(&[22, 3, 1]);
            out.extend_from_slice(&(part.len() as u16).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    }

    #[test]
    fn hand_built_hello_in_one_or_many_records() {
        let mut exts = sni_ext(b"example.com");
        exts.extend(ext(EXT_ALPN, &[0, 5, 2, b'h', b'2', 1, b'x']));
        let body = hello_body(&exts);
        for split in [1, 3, 4, 10, 1000] {
            let bytes = records(&body, split);
            let want = ClientHello {
                server_name: Some("example.com".into()),
                alpn: vec![b"h2".to_vec(), b"x".to_vec()],
            };
            assert_eq!(
                peek_client_hello(&bytes),
                Ok(Peek::Complete(want)),
                "{split}"
            );
            for cut in 0..bytes.len() {
                assert_eq!(
                    peek_client_hello(&bytes[..cut]),
                    Ok(Peek::NeedMore),
                    "{split} {cut}"
                );
            }
        }
    }

    #[test]
    fn hello_without_extensions() {
        let mut body = hello_body(&[]);
        body.truncate(body.len() - 2);
        assert_eq!(
            peek_client_hello(&records(&body, 1000)),
            Ok(Peek::Complete(ClientHello::default()))
        );
    }

    #[test]
    fn not_tls_and_malformed() {
        assert_eq!(
            peek_client_hello(b"GET / HTTP/1.1\r\n"),
            Err(TlsError::NotTls)
        );
        assert_eq!(peek_client_hello(b"G"), Err(TlsError::NotTls));
        assert_eq!(peek_client_hello(b"\x16\x02"), Err(TlsError::NotTls));
        assert_eq!(peek_client_hello(b""), Ok(Peek::NeedMore));
        assert_eq!(
            peek_client_hello(b"\x16\x03\x01\x00\x04\x02\x00\x00\x00"),
            Err(TlsError::NotClientHello)
        );
        assert_eq!(
            peek_client_hello(b"\x16\x03\x01\x40\x01"),
            Err(TlsError::TooLarge { limit: MAX_RECORD })
        );
        let mut dup = sni_ext(b"a.com");
        dup.extend(sni_ext(b"b.com"));
        assert_eq!(
            peek_client_hello(&records(&hello_body(&dup), 1000)),
            Err(TlsError::Malformed("duplicate extension"))
        );
        assert!(matches!(
            peek_client_hello(&records(&hello_body(&sni_ext(b"bad host")), 1000)),
            Err(TlsError::Malformed(_))
        ));
        let mut body = hello_body(&sni_ext(b"a.com"));
        body.push(0);
        assert!(matches!(
            peek_client_hello(&records(&body, 1000)),
            Err(TlsError::Malformed(_))
        ));
        // An alert record in the middle of a fragmented hello.
        let mut bytes = records(&hello_body(&sni_ext(b"a.com")), 10);
        bytes.truncate(15);
        bytes.extend_from_slice(&[21, 3, 3, 0, 2, 2, 40]);
        assert!(matches!(
            peek_client_hello(&bytes),
            Err(TlsError::Malformed(_))
        ));
    }
}
