//! Response-header sanitising before responses reach the agent (reference §4.5).

use super::head::ResponseHead;

/// Whether a response header (or trailer) field must be removed before the agent sees it:
/// `Set-Cookie`, `Set-Cookie2`, `WWW-Authenticate` (except a `Basic` challenge with a
/// `realm`), `Proxy-Authenticate`, `Authentication-Info`, `Proxy-Authentication-Info`,
/// and `Alt-Svc`.
pub fn is_credential_response_header(name: &str, value: &[u8]) -> bool {
    const ALWAYS: [&str; 6] = [
        "set-cookie",
        "set-cookie2",
        "proxy-authenticate",
        "authentication-info",
        "proxy-authentication-info",
        "alt-svc",
    ];
    if ALWAYS.iter().any(|h| name.eq_ignore_ascii_case(h)) {
        return true;
    }
    name.eq_ignore_ascii_case("www-authenticate") && !is_basic_realm_challenge(value)
}

/// Whether a `WWW-Authenticate` value is a `Basic` challenge carrying a `realm`.
fn is_basic_realm_challenge(value: &[u8]) -> bool {
    let value = value.trim_ascii();
    let Some(scheme_end) = value.iter().position(|&b| b == b' ' || b == b'\t') else {
        return false;
    };
    let (scheme, params) = value.split_at(scheme_end);
    scheme.eq_ignore_ascii_case(b"basic")
        && params
            .to_ascii_lowercase()
            .split(|&b| b == b',')
            .any(|p| p.trim_ascii().starts_with(b"realm="))
}

/// Removes the credential-bearing headers from `head` and returns the re-serialised head.
pub fn strip_credential_headers(head: &mut ResponseHead) -> Vec<u8> {
    head.headers
        .retain(|(name, value)| !is_credential_response_header(name, value));
    let bytes = head.to_bytes();
    head.head_len = bytes.len();
    bytes
}

/// Removes credential-bearing fields from a raw chunked trailer section (CRLF-terminated
/// field lines, as [`BodyDecoder::raw_trailers`](super::BodyDecoder::raw_trailers) returns).
pub fn strip_credential_trailers(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    for line in raw.split_inclusive(|&b| b == b'\n') {
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &[][..]),
        };
        let name = String::from_utf8_lossy(name.trim_ascii());
        if !is_credential_response_header(&name, value.trim_ascii()) {
            out.extend_from_slice(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{parse_response_head, Limits};

    #[test]
    fn strips_credential_headers_and_keeps_basic_realm() {
        let raw = "HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\nSet-Cookie: a=b\r\n\
                   set-cookie2: c\r\nWWW-Authenticate: Bearer realm=\"x\"\r\n\
                   WWW-Authenticate: Basic realm=\"api\"\r\nProxy-Authenticate: Basic\r\n\
                   Authentication-Info: x\r\nProxy-Authentication-Info: y\r\nAlt-Svc: h3=\":443\"\r\n\
                   Content-Length: 0\r\n\r\n";
        let mut head = parse_response_head(raw.as_bytes(), &Limits::default())
            .unwrap()
            .unwrap();
        let out = strip_credential_headers(&mut head);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "HTTP/1.1 401 Unauthorized\r\nContent-Type: text/plain\r\n\
             WWW-Authenticate: Basic realm=\"api\"\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(head.head_len, out.len());
    }

    #[test]
    fn trailers_are_stripped_line_by_line() {
        let raw = b"X-Sum: 1\r\nSet-Cookie: a=b\r\nwww-authenticate: Bearer\r\nX-B: 2\r\n";
        assert_eq!(strip_credential_trailers(raw), b"X-Sum: 1\r\nX-B: 2\r\n");
        assert_eq!(strip_credential_trailers(b""), b"");
    }

    #[test]
    fn basic_without_realm_is_stripped() {
        assert!(is_credential_response_header("WWW-Authenticate", b"Basic"));
        assert!(is_credential_response_header(
            "WWW-Authenticate",
            b"Basic charset=\"UTF-8\""
        ));
        assert!(!is_credential_response_header(
            "www-authenticate",
            b"basic Realm=x"
        ));
        assert!(!is_credential_response_header("Content-Type", b"x"));
    }
}
