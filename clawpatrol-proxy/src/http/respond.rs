//! Responses the gateway writes itself: the deny of reference §2.11 and protocol errors.

/// The exact deny response of reference §2.11: 403, `text/plain`, the reason, then close.
pub fn deny(reason: &str) -> Vec<u8> {
    plain(403, "Forbidden", reason, &[])
}

/// A `text/plain` response with `Connection: close` and extra header lines.
pub fn plain(status: u16, phrase: &str, body: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain\r\n");
    for (name, value) in extra {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(value);
        out.push_str("\r\n");
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    out.push_str(body);
    out.into_bytes()
}

/// `400 Bad Request` for a malformed request.
pub fn bad_request(why: &str) -> Vec<u8> {
    plain(400, "Bad Request", &format!("bad request: {why}\n"), &[])
}

/// `431 Request Header Fields Too Large` for an oversized head.
pub fn head_too_large(why: &str) -> Vec<u8> {
    plain(
        431,
        "Request Header Fields Too Large",
        &format!("request head too large: {why}\n"),
        &[],
    )
}

/// `502 Bad Gateway` naming why the upstream could not be reached.
pub fn bad_gateway(why: &str) -> Vec<u8> {
    plain(
        502,
        "Bad Gateway",
        &format!("clawpatrol: upstream error: {why}\n"),
        &[],
    )
}

/// `407 Proxy Authentication Required` with a Basic challenge.
pub fn proxy_auth_required(why: &str) -> Vec<u8> {
    plain(
        407,
        "Proxy Authentication Required",
        &format!("clawpatrol: {why}\n"),
        &[("Proxy-Authenticate", "Basic realm=\"clawpatrol\"")],
    )
}

/// The interim `100 Continue` the gateway sends before reading a body it must inspect.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The answer to an accepted `CONNECT`.
pub const CONNECT_OK: &[u8] = b"HTTP/1.1 200 Connection Established\r\n\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_is_byte_exact() {
        assert_eq!(
            deny("no deletes"),
            b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 10\r\nConnection: close\r\n\r\nno deletes"
        );
    }

    #[test]
    fn proxy_auth_has_challenge() {
        let r = String::from_utf8(proxy_auth_required("who are you")).unwrap();
        assert!(r.starts_with("HTTP/1.1 407 "));
        assert!(r.contains("Proxy-Authenticate: Basic realm=\"clawpatrol\"\r\n"));
    }
}
