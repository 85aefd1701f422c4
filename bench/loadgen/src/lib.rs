//! Shared pieces of the benchmark tools: a minimal HTTP/1.1 head parser, PEM loading and
//! a small command-line reader. Both tools speak only what the benchmark needs: small
//! requests and responses framed by `Content-Length` over keep-alive connections.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// Largest head either tool accepts.
pub const MAX_HEAD: usize = 64 * 1024;

/// The offset just past the `\r\n\r\n` that ends a head, if `buf` holds a whole head.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// What the tools need from a request or response head.
#[derive(Debug)]
pub struct Head<'a> {
    /// The request line or the status line.
    pub first_line: &'a str,
    /// `Content-Length`, if present.
    pub content_length: Option<usize>,
    /// `Connection: close` was sent.
    pub close: bool,
    /// `Transfer-Encoding` was sent (neither tool decodes it).
    pub transfer_encoding: bool,
    /// The `Authorization` value, if present.
    pub authorization: Option<&'a [u8]>,
}

/// Parses a head (`bytes` ends with the blank line, or not: trailing bytes are ignored).
pub fn parse_head(bytes: &[u8]) -> Result<Head<'_>, String> {
    let mut lines = bytes
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next().ok_or("empty head")?;
    let first_line = std::str::from_utf8(first).map_err(|_| "head line is not UTF-8")?;
    let mut head = Head {
        first_line,
        content_length: None,
        close: false,
        transfer_encoding: false,
        authorization: None,
    };
    for line in lines {
        if line.is_empty() {
            break;
        }
        let colon = line.iter().position(|&b| b == b':').ok_or_else(|| {
            format!(
                "header without a colon: {:?}",
                String::from_utf8_lossy(line)
            )
        })?;
        let name = &line[..colon];
        let value = line[colon + 1..].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or("invalid Content-Length")?;
            head.content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"connection") {
            head.close |= value
                .split(|&b| b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            head.transfer_encoding = true;
        } else if name.eq_ignore_ascii_case(b"authorization") {
            head.authorization = Some(value);
        }
    }
    Ok(head)
}

/// The status code of a response status line.
pub fn status_code(status_line: &str) -> Option<u16> {
    let mut parts = status_line.split(' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// The ring crypto provider, used by both tools.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Adds every certificate of the PEM file at `path` to `roots`; returns how many.
pub fn add_pem_roots(roots: &mut rustls::RootCertStore, path: &Path) -> Result<usize, String> {
    let mut n = 0;
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("bad PEM in `{}`: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("bad certificate in `{}`: {e}", path.display()))?;
        n += 1;
    }
    if n == 0 {
        return Err(format!("no certificate in `{}`", path.display()));
    }
    Ok(n)
}

/// A minimal reader for `--flag value` command lines.
pub struct Args {
    args: std::vec::IntoIter<String>,
}

impl Args {
    /// The process arguments after the program name.
    pub fn from_env() -> Args {
        Args {
            args: std::env::args().skip(1).collect::<Vec<_>>().into_iter(),
        }
    }

    /// The next flag, or `None` at the end.
    pub fn next_flag(&mut self) -> Option<String> {
        self.args.next()
    }

    /// The value that follows `flag`.
    pub fn value(&mut self, flag: &str) -> Result<String, String> {
        self.args
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))
    }

    /// The value that follows `flag`, parsed.
    pub fn parsed<T: std::str::FromStr>(&mut self, flag: &str) -> Result<T, String>
    where
        T::Err: std::fmt::Display,
    {
        let v = self.value(flag)?;
        v.parse()
            .map_err(|e| format!("{flag}: invalid value `{v}`: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_response_head() {
        let raw =
            b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nConnection: keep-alive, Close\r\n\r\nbody";
        let end = head_end(raw).unwrap();
        assert_eq!(&raw[end..], b"body");
        let h = parse_head(&raw[..end]).unwrap();
        assert_eq!(status_code(h.first_line), Some(200));
        assert_eq!(h.content_length, Some(12));
        assert!(h.close);
        assert!(!h.transfer_encoding);
    }

    #[test]
    fn rejects_bad_heads() {
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nnocolon\r\n\r\n").is_err());
        assert_eq!(status_code("SSH-2.0 x"), None);
    }
}
