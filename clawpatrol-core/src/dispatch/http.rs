//! The HTTPS placeholder haystack (reference §4.3): where dispatch looks for placeholders.

use base64::Engine;
use clawpatrol_protocols::http::RequestHead;

/// The strings of an HTTPS request searched for credential placeholders (reference §4.3):
/// every `Authorization` value, the decoded payload of a `Basic` one, and every `Cookie`
/// value, in that order. Invalid base64 in a `Basic` header is ignored.
pub fn http_haystack(head: &RequestHead) -> Vec<String> {
    let mut out = Vec::new();
    for value in head.header_values("authorization") {
        out.push(String::from_utf8_lossy(value.trim_ascii()).into_owned());
        if let Some(payload) = basic_payload(value) {
            out.push(String::from_utf8_lossy(&payload).into_owned());
        }
    }
    for value in head.header_values("cookie") {
        out.push(String::from_utf8_lossy(value.trim_ascii()).into_owned());
    }
    out
}

/// The decoded `user:password` payload of a `Basic` Authorization value; `None` when the
/// scheme is not Basic or the base64 is invalid.
pub(crate) fn basic_payload(value: &[u8]) -> Option<Vec<u8>> {
    let value = value.trim_ascii();
    let scheme = value.get(..6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let encoded = value.get(6..)?.trim_ascii();
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clawpatrol_protocols::http::Version;

    fn head(headers: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: "GET".into(),
            target: "/".into(),
            version: Version::Http11,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
            head_len: 0,
        }
    }

    #[test]
    fn bearer_and_cookie_are_searched() {
        let h = head(&[
            ("Host", "api.example.com"),
            ("Authorization", "Bearer ph-1"),
            ("Cookie", "a=1; s=ph-2"),
            ("X-Other", "ph-3"),
        ]);
        assert_eq!(http_haystack(&h), vec!["Bearer ph-1", "a=1; s=ph-2"]);
    }

    #[test]
    fn basic_payload_is_decoded() {
        // base64("x-access-token:ghp_placeholder")
        let h = head(&[(
            "authorization",
            "basic eC1hY2Nlc3MtdG9rZW46Z2hwX3BsYWNlaG9sZGVy",
        )]);
        assert_eq!(
            http_haystack(&h),
            vec![
                "basic eC1hY2Nlc3MtdG9rZW46Z2hwX3BsYWNlaG9sZGVy",
                "x-access-token:ghp_placeholder"
            ]
        );
    }

    #[test]
    fn invalid_basic_base64_is_ignored() {
        let h = head(&[("Authorization", "Basic !!!not-base64")]);
        assert_eq!(http_haystack(&h), vec!["Basic !!!not-base64"]);
    }

    #[test]
    fn every_value_is_searched_and_nothing_when_absent() {
        let h = head(&[
            ("Authorization", "Bearer a"),
            ("Cookie", "x=1"),
            ("AUTHORIZATION", "Bearer b"),
            ("cookie", "y=2"),
        ]);
        assert_eq!(
            http_haystack(&h),
            vec!["Bearer a", "Bearer b", "x=1", "y=2"]
        );
        assert!(http_haystack(&head(&[("Host", "h")])).is_empty());
    }

    #[test]
    fn basic_payload_requires_the_scheme() {
        assert_eq!(basic_payload(b"Basic dTpw"), Some(b"u:p".to_vec()));
        assert_eq!(basic_payload(b"Bearer dTpw"), None);
        assert_eq!(basic_payload(b"Basic"), None);
        assert_eq!(basic_payload(b"Basicdtpw"), None);
    }
}
