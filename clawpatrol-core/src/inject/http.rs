//! Per-type HTTP injection (reference §4.2): rewrite an allowed request head with the real
//! secret of the credential dispatch chose.
//!
//! Every header set here replaces all earlier values of that header, so the agent's
//! placeholder never travels next to the real secret.

use std::fmt;

use base64::Engine;
use clawpatrol_protocols::http::{percent_decode_path, query_map, split_target, RequestHead};

use super::SecretMaterial;
use crate::config::model::{AttrValue, Credential};
use crate::dispatch::http::basic_payload;

/// What injection did besides rewriting the head.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Injected {
    /// Every secret string placed into the request, including derived ones (the base64 of
    /// `user:secret`, a percent-encoded query value), for redaction. The caller redacts
    /// [`SecretMaterial::redaction_strings`] as well.
    pub secrets_used: Vec<String>,
    /// The replacement body, when injection rewrote it (the caller fixes `Content-Length`).
    pub new_body: Option<Vec<u8>>,
    /// The new request-target, when injection changed it (already set on the head).
    pub new_target: Option<String>,
    /// The upstream TLS client certificate and private key (PEM), for `mtls_credential`.
    pub client_cert: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for Injected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Injected")
            .field(
                "secrets_used",
                &format_args!("<{}>", self.secrets_used.len()),
            )
            .field(
                "new_body",
                &self
                    .new_body
                    .as_ref()
                    .map(|b| format!("<{} bytes>", b.len())),
            )
            .field(
                "new_target",
                &self.new_target.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "client_cert",
                &self.client_cert.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Why a credential could not be injected. Messages never contain a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InjectError {
    /// The credential type has no plain HTTP injection here (the gateway fails closed).
    #[error("credential `{credential}` of type `{kind}` cannot be injected into an HTTP request")]
    Unsupported {
        /// The credential's name.
        credential: String,
        /// The credential's type.
        kind: String,
    },
    /// The secret contains CR, LF or NUL, which cannot go into a header.
    #[error(
        "the secret of credential `{credential}` contains a byte not allowed in an HTTP header \
         (CR, LF or NUL); store it without line breaks"
    )]
    InvalidSecret {
        /// The credential's name.
        credential: String,
    },
    /// A secret slot the type needs is empty.
    #[error("credential `{credential}` has no {} secret configured", slot_label(.slot))]
    MissingSecret {
        /// The credential's name.
        credential: String,
        /// The slot: `""` for the primary secret, else the extra's name (`cert`, `bot`, …).
        slot: String,
    },
    /// A type-specific attribute is missing or cannot go into a header.
    #[error(
        "attribute `{attr}` of credential `{credential}` is missing or not valid in an HTTP header"
    )]
    InvalidAttribute {
        /// The credential's name.
        credential: String,
        /// The attribute's name.
        attr: String,
    },
}

fn slot_label(slot: &str) -> String {
    if slot.is_empty() {
        "primary".to_string()
    } else {
        format!("`{slot}`")
    }
}

/// Rewrites `head` (and possibly the target and body) for `cred` with `secret`, per
/// reference §4.2. `body` is the complete request body when the caller buffered it.
pub fn inject_http(
    cred: &Credential,
    secret: &SecretMaterial,
    head: &mut RequestHead,
    body: Option<&[u8]>,
) -> Result<Injected, InjectError> {
    let mut cx = Cx {
        cred,
        out: Injected::default(),
    };
    match cred.kind.as_str() {
        "bearer_token" => {
            let token = cx.primary(secret)?;
            cx.bearer(head, token)?;
            if matches!(
                cred.attrs.get("idempotency_key"),
                Some(AttrValue::Bool(true))
            ) {
                idempotency_key(head);
            }
        }
        "header_token" => {
            let name = match cred.attrs.get("header") {
                Some(AttrValue::Str(h)) if is_token(h) => h.clone(),
                _ => return Err(cx.bad_attr("header")),
            };
            let prefix = cx.str_attr("prefix")?.unwrap_or_default();
            let token = cx.primary(secret)?;
            let mut value = prefix.into_bytes();
            value.extend_from_slice(token);
            cx.set_secret_header(head, &name, value, token)?;
        }
        "basic_auth" => {
            let Some(user) = cx.str_attr("username")? else {
                return Err(cx.bad_attr("username"));
            };
            let password = cx.primary(secret)?;
            cx.basic(head, user.as_bytes(), password)?;
        }
        "cookie_token" => {
            let name = cx.str_attr("cookie_name")?.unwrap_or_default();
            if !name.is_empty() {
                let token = cx.primary(secret)?;
                cx.check(token)?;
                append_cookie(head, &name, token);
                cx.used(token);
            }
        }
        "anthropic_manual_key" => {
            let key = cx.primary(secret)?;
            cx.set_secret_header(head, "x-api-key", key.to_vec(), key)?;
        }
        "gemini_api_key" => {
            let key = cx.primary(secret)?;
            cx.set_secret_header(head, "x-goog-api-key", key.to_vec(), key)?;
            let encoded = query_escape(key);
            if let Some(target) = replace_query_value(&head.target, "key", &encoded) {
                head.target = target.clone();
                cx.out.new_target = Some(target);
                cx.out.secrets_used.push(encoded);
            }
        }
        "github_oauth" => {
            let token = cx.primary(secret)?;
            if is_git_smart_http(head) {
                let user = agent_basic_user(head).unwrap_or_else(|| b"x-access-token".to_vec());
                cx.basic(head, &user, token)?;
            } else {
                cx.bearer(head, token)?;
            }
        }
        "slack_tokens" => {
            let path = request_path(head);
            let app = nonempty(secret.extras.get("app"));
            let token = match app {
                Some(app) if uses_app_token(&path) => app,
                _ => match nonempty(secret.extras.get("bot")).or(nonempty(Some(&secret.primary))) {
                    Some(bot) => bot,
                    None => return Err(cx.missing("bot")),
                },
            };
            cx.bearer(head, token)?;
            if let Some(body) = body.filter(|_| is_form_body(head)) {
                cx.out.new_body = remove_form_field(body, "token");
            }
        }
        "mtls_credential" => {
            let cert = nonempty(secret.extras.get("cert")).ok_or_else(|| cx.missing("cert"))?;
            let key = nonempty(secret.extras.get("key")).ok_or_else(|| cx.missing("key"))?;
            cx.out.client_cert = Some((cert.to_vec(), key.to_vec()));
        }
        "passthrough" => {}
        other => {
            return Err(InjectError::Unsupported {
                credential: cred.name.clone(),
                kind: other.to_string(),
            })
        }
    }
    Ok(cx.out)
}

/// Injection state of one call: the credential (for errors) and the result so far.
struct Cx<'c> {
    cred: &'c Credential,
    out: Injected,
}

impl Cx<'_> {
    fn missing(&self, slot: &str) -> InjectError {
        InjectError::MissingSecret {
            credential: self.cred.name.clone(),
            slot: slot.to_string(),
        }
    }

    fn bad_attr(&self, attr: &str) -> InjectError {
        InjectError::InvalidAttribute {
            credential: self.cred.name.clone(),
            attr: attr.to_string(),
        }
    }

    /// The primary secret, which must be non-empty.
    fn primary<'s>(&self, secret: &'s SecretMaterial) -> Result<&'s [u8], InjectError> {
        nonempty(Some(&secret.primary)).ok_or_else(|| self.missing(""))
    }

    /// A string attribute, checked for header-safety; `None` when absent.
    fn str_attr(&self, attr: &str) -> Result<Option<String>, InjectError> {
        match self.cred.attrs.get(attr) {
            None => Ok(None),
            Some(AttrValue::Str(s)) if header_safe(s.as_bytes()) => Ok(Some(s.clone())),
            Some(_) => Err(self.bad_attr(attr)),
        }
    }

    /// Fails when the secret cannot go into a header.
    fn check(&self, secret: &[u8]) -> Result<(), InjectError> {
        if header_safe(secret) {
            Ok(())
        } else {
            Err(InjectError::InvalidSecret {
                credential: self.cred.name.clone(),
            })
        }
    }

    /// Records a secret string placed into the request.
    fn used(&mut self, secret: &[u8]) {
        let s = String::from_utf8_lossy(secret).into_owned();
        if !self.out.secrets_used.contains(&s) {
            self.out.secrets_used.push(s);
        }
    }

    /// Sets header `name` to `value`, which contains `secret`.
    fn set_secret_header(
        &mut self,
        head: &mut RequestHead,
        name: &str,
        value: Vec<u8>,
        secret: &[u8],
    ) -> Result<(), InjectError> {
        self.check(secret)?;
        set_header(head, name, value);
        self.used(secret);
        Ok(())
    }

    fn bearer(&mut self, head: &mut RequestHead, token: &[u8]) -> Result<(), InjectError> {
        let mut value = b"Bearer ".to_vec();
        value.extend_from_slice(token);
        self.set_secret_header(head, "Authorization", value, token)
    }

    fn basic(
        &mut self,
        head: &mut RequestHead,
        user: &[u8],
        password: &[u8],
    ) -> Result<(), InjectError> {
        // The password must be header-safe even though it is encoded: a CR/LF in it means
        // the stored secret is broken, and the upstream would reject it anyway.
        self.check(password)?;
        let mut pair = user.to_vec();
        pair.push(b':');
        pair.extend_from_slice(password);
        let encoded = base64::engine::general_purpose::STANDARD.encode(&pair);
        set_header(
            head,
            "Authorization",
            format!("Basic {encoded}").into_bytes(),
        );
        self.used(password);
        self.used(encoded.as_bytes());
        Ok(())
    }
}

fn nonempty(v: Option<&Vec<u8>>) -> Option<&[u8]> {
    v.map(Vec::as_slice).filter(|v| !v.is_empty())
}

/// Whether `b` may appear in a header value (no CR, LF or NUL).
fn header_safe(b: &[u8]) -> bool {
    !b.iter().any(|&c| matches!(c, b'\r' | b'\n' | 0))
}

/// Whether `s` is an RFC 9110 token (a valid header name).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Replaces every value of header `name` (case-insensitive) with one `value`, at the
/// position of the first, or appends it.
fn set_header(head: &mut RequestHead, name: &str, value: Vec<u8>) {
    let mut value = Some(value);
    head.headers.retain_mut(|(n, v)| {
        if !n.eq_ignore_ascii_case(name) {
            return true;
        }
        match value.take() {
            Some(new) => {
                *n = name.to_string();
                *v = new;
                true
            }
            None => false,
        }
    });
    if let Some(v) = value {
        head.headers.push((name.to_string(), v));
    }
}

/// The first non-empty value of header `name`.
fn header<'h>(head: &'h RequestHead, name: &'h str) -> Option<&'h [u8]> {
    head.header_values(name)
        .map(<[u8]>::trim_ascii)
        .find(|v| !v.is_empty())
}

/// The percent-decoded path of the request-target (empty for `CONNECT`).
fn request_path(head: &RequestHead) -> String {
    if head.method == "CONNECT" {
        return String::new();
    }
    percent_decode_path(split_target(&head.target).0)
}

/// `idempotency_key = true`: give non-GET/HEAD requests without one an `Idempotency-Key`,
/// the agent's `X-Clawpatrol-Idempotency-Hint` or else `<path>@<METHOD>`.
fn idempotency_key(head: &mut RequestHead) {
    if matches!(head.method.as_str(), "GET" | "HEAD") || header(head, "idempotency-key").is_some() {
        return;
    }
    let value = match header(head, "x-clawpatrol-idempotency-hint") {
        Some(hint) => hint.to_vec(),
        None => {
            let mut path = request_path(head);
            if path.bytes().any(|b| b.is_ascii_control()) {
                // A decoded `%0d%0a` must not split the header: keep the raw path.
                path = split_target(&head.target).0.to_string();
            }
            format!("{path}@{}", head.method).into_bytes()
        }
    };
    set_header(head, "Idempotency-Key", value);
}

/// Appends `name=value` to the request's cookies: every `Cookie` header is merged into
/// one, earlier cookies of the same name (the agent's placeholder) are dropped.
fn append_cookie(head: &mut RequestHead, name: &str, value: &[u8]) {
    let mut pairs: Vec<Vec<u8>> = Vec::new();
    for v in head.header_values("cookie") {
        for pair in v.split(|&b| b == b';') {
            let pair = pair.trim_ascii();
            if pair.is_empty() {
                continue;
            }
            let pair_name = pair.split(|&b| b == b'=').next().unwrap_or(pair);
            if pair_name.trim_ascii() != name.as_bytes() {
                pairs.push(pair.to_vec());
            }
        }
    }
    let mut own = name.as_bytes().to_vec();
    own.push(b'=');
    own.extend_from_slice(value);
    pairs.push(own);
    set_header(head, "Cookie", pairs.join(&b"; "[..]));
}

/// Percent-encodes `b` for a query value (everything but RFC 3986 unreserved characters).
fn query_escape(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for &c in b {
        if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(c));
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// The form-decoded name of one raw `name[=value]` pair, when it decodes.
fn pair_name(pair: &[u8]) -> Option<String> {
    let raw = pair.split(|&b| b == b'=').next().unwrap_or(pair);
    let raw = std::str::from_utf8(raw).ok()?;
    query_map(raw).into_keys().next()
}

/// Replaces the value of every `name` query parameter of `target` with `encoded`, leaving
/// every other byte as sent; `None` when the target has no such parameter.
fn replace_query_value(target: &str, name: &str, encoded: &str) -> Option<String> {
    let (before, query) = target.split_once('?')?;
    let mut changed = false;
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            if pair_name(pair.as_bytes()).as_deref() == Some(name) {
                changed = true;
                let raw_name = pair.split_once('=').map_or(pair, |(k, _)| k);
                format!("{raw_name}={encoded}")
            } else {
                pair.to_string()
            }
        })
        .collect();
    changed.then(|| format!("{before}?{}", pairs.join("&")))
}

/// Whether the request is git smart-HTTP: `…/info/refs?service=git-upload-pack` (or
/// `git-receive-pack`), `…/git-upload-pack` or `…/git-receive-pack`, with or without the
/// `.git` suffix on the repository.
fn is_git_smart_http(head: &RequestHead) -> bool {
    if head.method == "CONNECT" {
        return false;
    }
    let (raw_path, query) = split_target(&head.target);
    let path = percent_decode_path(raw_path);
    const SERVICES: [&str; 2] = ["git-upload-pack", "git-receive-pack"];
    if SERVICES.iter().any(|s| {
        path.strip_suffix(s)
            .is_some_and(|p| p.ends_with('/') && p.len() > 1)
    }) {
        return true;
    }
    path.ends_with("/info/refs")
        && query
            .map(query_map)
            .and_then(|q| q.get("service").cloned())
            .is_some_and(|v| v.iter().any(|s| SERVICES.contains(&s.as_str())))
}

/// The user name of the agent's `Basic` Authorization, when present and non-empty.
fn agent_basic_user(head: &RequestHead) -> Option<Vec<u8>> {
    head.header_values("authorization")
        .find_map(basic_payload)
        .and_then(|p| {
            let user = p.split(|&b| b == b':').next().unwrap_or(&p).to_vec();
            (!user.is_empty()).then_some(user)
        })
}

/// Slack methods authenticated with the app-level token.
fn uses_app_token(path: &str) -> bool {
    ["/api/admin.", "/api/apps.", "/api/auth.test"]
        .iter()
        .any(|p| path.starts_with(p))
}

/// Whether the body is `application/x-www-form-urlencoded`.
fn is_form_body(head: &RequestHead) -> bool {
    header(head, "content-type").is_some_and(|v| {
        let media = v.split(|&b| b == b';').next().unwrap_or(v);
        media
            .trim_ascii()
            .eq_ignore_ascii_case(b"application/x-www-form-urlencoded")
    })
}

/// The form body without its `field` pairs; `None` when there were none.
fn remove_form_field(body: &[u8], field: &str) -> Option<Vec<u8>> {
    let mut removed = false;
    let kept: Vec<&[u8]> = body
        .split(|&b| b == b'&')
        .filter(|pair| {
            let hit = pair_name(pair).as_deref() == Some(field);
            removed |= hit;
            !hit
        })
        .collect();
    removed.then(|| kept.join(&b"&"[..]))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use clawpatrol_protocols::http::Version;

    use super::*;
    use crate::config::model::{Attrs, SourceSpan};

    const SECRET: &str = "s3cr3t-value";

    fn cred(kind: &str, attrs: &[(&str, AttrValue)]) -> Credential {
        Credential {
            kind: kind.to_string(),
            name: "c1".to_string(),
            endpoints: vec![],
            disambiguators: BTreeMap::new(),
            description: None,
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<Attrs>(),
            span: SourceSpan::default(),
        }
    }

    fn s(v: &str) -> AttrValue {
        AttrValue::Str(v.to_string())
    }

    fn secret(primary: &str) -> SecretMaterial {
        SecretMaterial {
            primary: primary.as_bytes().to_vec(),
            extras: BTreeMap::new(),
        }
    }

    fn with_extras(primary: &str, extras: &[(&str, &str)]) -> SecretMaterial {
        SecretMaterial {
            primary: primary.as_bytes().to_vec(),
            extras: extras
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    fn head(method: &str, target: &str, headers: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: method.to_string(),
            target: target.to_string(),
            version: Version::Http11,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
            head_len: 0,
        }
    }

    /// Every value of header `name`, as strings.
    fn get(h: &RequestHead, name: &str) -> Vec<String> {
        h.header_values(name)
            .map(|v| String::from_utf8(v.to_vec()).unwrap())
            .collect()
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn run(c: &Credential, sec: &SecretMaterial, h: &mut RequestHead) -> Injected {
        inject_http(c, sec, h, None).unwrap()
    }

    // ---- bearer_token ----

    #[test]
    fn bearer_replaces_every_authorization_value() {
        let c = cred("bearer_token", &[]);
        let mut h = head(
            "GET",
            "/v1/x",
            &[
                ("Host", "api.example.com"),
                ("authorization", "Bearer placeholder"),
                ("Accept", "*/*"),
                ("AUTHORIZATION", "Bearer second-placeholder"),
            ],
        );
        let out = run(&c, &secret(SECRET), &mut h);
        assert_eq!(get(&h, "authorization"), vec![format!("Bearer {SECRET}")]);
        assert_eq!(h.headers.len(), 3);
        // The position of the first Authorization header is kept.
        assert!(h.headers[1].0.eq_ignore_ascii_case("authorization"));
        assert_eq!(out.secrets_used, vec![SECRET.to_string()]);
        assert_eq!(out.new_body, None);
        assert_eq!(out.new_target, None);
        assert_eq!(out.client_cert, None);
    }

    #[test]
    fn bearer_added_when_absent() {
        let c = cred("bearer_token", &[]);
        let mut h = head("GET", "/", &[("Host", "h")]);
        run(&c, &secret(SECRET), &mut h);
        assert_eq!(
            h.headers.last().unwrap(),
            &(
                "Authorization".to_string(),
                format!("Bearer {SECRET}").into_bytes()
            )
        );
    }

    #[test]
    fn idempotency_key_off_by_default_and_when_false() {
        for attrs in [vec![], vec![("idempotency_key", AttrValue::Bool(false))]] {
            let c = cred("bearer_token", &attrs);
            let mut h = head("POST", "/v1/charges", &[]);
            run(&c, &secret(SECRET), &mut h);
            assert!(get(&h, "idempotency-key").is_empty());
        }
    }

    #[test]
    fn idempotency_key_defaults_to_path_at_method() {
        let c = cred(
            "bearer_token",
            &[("idempotency_key", AttrValue::Bool(true))],
        );
        let mut h = head("POST", "/v1/charges%20x?amount=5", &[]);
        let out = run(&c, &secret(SECRET), &mut h);
        assert_eq!(get(&h, "idempotency-key"), vec!["/v1/charges x@POST"]);
        assert_eq!(out.secrets_used, vec![SECRET.to_string()]);
    }

    #[test]
    fn idempotency_key_uses_the_hint() {
        let c = cred(
            "bearer_token",
            &[("idempotency_key", AttrValue::Bool(true))],
        );
        let mut h = head(
            "PUT",
            "/v1/x",
            &[("X-Clawpatrol-Idempotency-Hint", "retry-42")],
        );
        run(&c, &secret(SECRET), &mut h);
        assert_eq!(get(&h, "idempotency-key"), vec!["retry-42"]);
    }

    #[test]
    fn idempotency_key_kept_when_agent_sent_one() {
        let c = cred(
            "bearer_token",
            &[("idempotency_key", AttrValue::Bool(true))],
        );
        let mut h = head(
            "POST",
            "/v1/x",
            &[
                ("Idempotency-Key", "agent-key"),
                ("X-Clawpatrol-Idempotency-Hint", "hint"),
            ],
        );
        run(&c, &secret(SECRET), &mut h);
        assert_eq!(get(&h, "idempotency-key"), vec!["agent-key"]);
    }

    #[test]
    fn idempotency_key_skipped_for_get_and_head() {
        let c = cred(
            "bearer_token",
            &[("idempotency_key", AttrValue::Bool(true))],
        );
        for m in ["GET", "HEAD"] {
            let mut h = head(m, "/v1/x", &[]);
            run(&c, &secret(SECRET), &mut h);
            assert!(get(&h, "idempotency-key").is_empty(), "{m}");
        }
        let mut h = head("DELETE", "/v1/x", &[]);
        run(&c, &secret(SECRET), &mut h);
        assert_eq!(get(&h, "idempotency-key"), vec!["/v1/x@DELETE"]);
    }

    #[test]
    fn idempotency_key_never_splits_the_header() {
        let c = cred(
            "bearer_token",
            &[("idempotency_key", AttrValue::Bool(true))],
        );
        let mut h = head("POST", "/a%0d%0aX-Evil:%201", &[]);
        run(&c, &secret(SECRET), &mut h);
        assert_eq!(get(&h, "idempotency-key"), vec!["/a%0d%0aX-Evil:%201@POST"]);
    }

    #[test]
    fn idempotency_key_of_absolute_form_uses_the_path() {
        let c = cred(
            "bearer_token",
            &[("idempotency_key", AttrValue::Bool(true))],
        );
        let mut h = head("PATCH", "https://api.example.com/v1/y?q=1", &[]);
        run(&c, &secret(SECRET), &mut h);
        assert_eq!(get(&h, "idempotency-key"), vec!["/v1/y@PATCH"]);
    }

    // ---- header_token ----

    #[test]
    fn header_token_with_prefix_overwrites() {
        let c = cred(
            "header_token",
            &[("header", s("X-Api-Token")), ("prefix", s("Token "))],
        );
        let mut h = head("GET", "/", &[("x-api-token", "placeholder")]);
        let out = run(&c, &secret(SECRET), &mut h);
        assert_eq!(get(&h, "x-api-token"), vec![format!("Token {SECRET}")]);
        assert_eq!(h.headers.len(), 1);
        assert_eq!(out.secrets_used, vec![SECRET.to_string()]);
    }

    #[test]
    fn header_token_without_prefix() {
        let c = cred("header_token", &[("header", s("PRIVATE-TOKEN"))]);
        let mut h = head("GET", "/", &[]);
        run(&c, &secret(SECRET), &mut h);
        assert_eq!(get(&h, "private-token"), vec![SECRET]);
    }

    #[test]
    fn header_token_rejects_bad_header_names_and_prefixes() {
        for attrs in [
            vec![],
            vec![("header", s(""))],
            vec![("header", s("X Bad"))],
            vec![("header", s("X-A\r\nX-B"))],
            vec![("header", AttrValue::Int(3))],
        ] {
            let c = cred("header_token", &attrs);
            let err =
                inject_http(&c, &secret(SECRET), &mut head("GET", "/", &[]), None).unwrap_err();
            assert_eq!(
                err,
                InjectError::InvalidAttribute {
                    credential: "c1".into(),
                    attr: "header".into()
                }
            );
        }
        let c = cred(
            "header_token",
            &[("header", s("X-A")), ("prefix", s("a\nb"))],
        );
        let err = inject_http(&c, &secret(SECRET), &mut head("GET", "/", &[]), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "attribute `prefix` of credential `c1` is missing or not valid in an HTTP header"
        );
    }

    // ---- basic_auth ----

    #[test]
    fn basic_auth_sets_encoded_pair_and_reports_it() {
        let c = cred("basic_auth", &[("username", s("alice"))]);
        let mut h = head("GET", "/", &[("Authorization", "Basic cGxhY2Vob2xkZXI=")]);
        let out = run(&c, &secret(SECRET), &mut h);
        let enc = b64(&format!("alice:{SECRET}"));
        assert_eq!(get(&h, "authorization"), vec![format!("Basic {enc}")]);
        assert_eq!(out.secrets_used, vec![SECRET.to_string(), enc]);
    }

    #[test]
    fn basic_auth_requires_username() {
        let c = cred("basic_auth", &[]);
        let err = inject_http(&c, &secret(SECRET), &mut head("GET", "/", &[]), None).unwrap_err();
        assert!(
            matches!(err, InjectError::InvalidAttribute { ref attr, .. } if attr == "username")
        );
    }

    // ---- cookie_token ----

    #[test]
    fn cookie_added_without_existing_cookie() {
        let c = cred("cookie_token", &[("cookie_name", s("session"))]);
        let mut h = head("GET", "/", &[("Host", "h")]);
        let out = run(&c, &secret(SECRET), &mut h);
        assert_eq!(get(&h, "cookie"), vec![format!("session={SECRET}")]);
        assert_eq!(out.secrets_used, vec![SECRET.to_string()]);
    }

    #[test]
    fn cookie_appended_to_existing_cookies() {
        let c = cred("cookie_token", &[("cookie_name", s("session"))]);
        let mut h = head(
            "GET",
            "/",
            &[("Cookie", "theme=dark; lang=en"), ("cookie", "tz=UTC")],
        );
        run(&c, &secret(SECRET), &mut h);
        assert_eq!(
            get(&h, "cookie"),
            vec![format!("theme=dark; lang=en; tz=UTC; session={SECRET}")]
        );
    }

    #[test]
    fn cookie_placeholder_of_the_same_name_is_dropped() {
        let c = cred("cookie_token", &[("cookie_name", s("session"))]);
        let mut h = head(
            "GET",
            "/",
            &[("Cookie", "session=placeholder; sessionid=keep; a=1")],
        );
        run(&c, &secret(SECRET), &mut h);
        assert_eq!(
            get(&h, "cookie"),
            vec![format!("sessionid=keep; a=1; session={SECRET}")]
        );
    }

    #[test]
    fn cookie_noop_without_cookie_name() {
        for attrs in [vec![], vec![("cookie_name", s(""))]] {
            let c = cred("cookie_token", &attrs);
            let mut h = head("GET", "/", &[("Cookie", "a=1")]);
            let before = h.clone();
            let out = run(&c, &secret(SECRET), &mut h);
            assert_eq!(h, before);
            assert_eq!(out, Injected::default());
        }
    }

    // ---- anthropic_manual_key ----

    #[test]
    fn anthropic_key_sets_x_api_key() {
        let c = cred("anthropic_manual_key", &[]);
        let mut h = head(
            "POST",
            "/v1/messages",
            &[("X-Api-Key", "sk-ant-placeholder"), ("x-api-key", "dup")],
        );
        let out = run(&c, &secret(SECRET), &mut h);
        assert_eq!(get(&h, "x-api-key"), vec![SECRET]);
        assert_eq!(h.headers.len(), 1);
        assert_eq!(out.secrets_used, vec![SECRET.to_string()]);
    }

    // ---- gemini_api_key ----

    #[test]
    fn gemini_sets_header_without_touching_a_keyless_target() {
        let c = cred("gemini_api_key", &[]);
        let mut h = head("POST", "/v1beta/models/x:generate?alt=sse", &[]);
        let out = run(&c, &secret(SECRET), &mut h);
        assert_eq!(get(&h, "x-goog-api-key"), vec![SECRET]);
        assert_eq!(h.target, "/v1beta/models/x:generate?alt=sse");
        assert_eq!(out.new_target, None);
    }

    #[test]
    fn gemini_replaces_key_query_value_only() {
        let c = cred("gemini_api_key", &[]);
        let mut h = head(
            "GET",
            "/v1/models%2Fx?a=b%20c&key=AIzaPlaceholder&q=x+y%26z&key",
            &[("x-goog-api-key", "AIzaPlaceholder")],
        );
        let out = run(&c, &secret("AIza/real+key"), &mut h);
        let want = "/v1/models%2Fx?a=b%20c&key=AIza%2Freal%2Bkey&q=x+y%26z&key=AIza%2Freal%2Bkey";
        assert_eq!(h.target, want);
        assert_eq!(out.new_target.as_deref(), Some(want));
        assert_eq!(get(&h, "x-goog-api-key"), vec!["AIza/real+key"]);
        assert_eq!(
            out.secrets_used,
            vec!["AIza/real+key".to_string(), "AIza%2Freal%2Bkey".to_string()]
        );
    }

    #[test]
    fn gemini_matches_encoded_param_names_not_lookalikes() {
        let c = cred("gemini_api_key", &[]);
        let mut h = head("GET", "/x?apikey=1&k%65y=2&keys=3", &[]);
        run(&c, &secret("REAL"), &mut h);
        assert_eq!(h.target, "/x?apikey=1&k%65y=REAL&keys=3");
    }

    // ---- github_oauth ----

    #[test]
    fn github_api_uses_bearer() {
        let c = cred("github_oauth", &[]);
        for target in [
            "/repos/o/r",
            "/repos/o/r/info/refs",
            "/o/r.git/info/refs",
            "/o/r.git/info/refs?service=git-other",
            "/git-upload-pack",
        ] {
            let mut h = head(
                "GET",
                target,
                &[(
                    "Authorization",
                    "token ghp_clawpatrol_placeholder_do_not_use",
                )],
            );
            let out = run(&c, &secret("gho_real"), &mut h);
            assert_eq!(
                get(&h, "authorization"),
                vec!["Bearer gho_real"],
                "{target}"
            );
            assert_eq!(out.secrets_used, vec!["gho_real".to_string()]);
        }
    }

    #[test]
    fn github_git_smart_http_uses_basic() {
        let c = cred("github_oauth", &[]);
        for (method, target) in [
            ("GET", "/o/r.git/info/refs?service=git-upload-pack"),
            ("GET", "/o/r.git/info/refs?service=git-receive-pack"),
            ("GET", "/o/r/info/refs?service=git-upload-pack"),
            ("POST", "/o/r.git/git-upload-pack"),
            ("POST", "/o/r.git/git-receive-pack"),
            ("POST", "/o/r/git-upload-pack"),
            (
                "GET",
                "https://github.com/o/r.git/info/refs?service=git-upload-pack",
            ),
        ] {
            let mut h = head(method, target, &[]);
            let out = run(&c, &secret("gho_real"), &mut h);
            let enc = b64("x-access-token:gho_real");
            assert_eq!(
                get(&h, "authorization"),
                vec![format!("Basic {enc}")],
                "{target}"
            );
            assert_eq!(out.secrets_used, vec!["gho_real".to_string(), enc]);
        }
    }

    #[test]
    fn github_git_basic_keeps_the_agents_user() {
        let c = cred("github_oauth", &[]);
        let agent = format!(
            "Basic {}",
            b64("octocat:ghp_clawpatrol_placeholder_do_not_use")
        );
        let mut h = head(
            "POST",
            "/o/r.git/git-receive-pack",
            &[("Authorization", agent.as_str())],
        );
        run(&c, &secret("gho_real"), &mut h);
        assert_eq!(
            get(&h, "authorization"),
            vec![format!("Basic {}", b64("octocat:gho_real"))]
        );
        // An empty user name falls back to x-access-token.
        let agent = format!("Basic {}", b64(":placeholder"));
        let mut h = head(
            "POST",
            "/o/r.git/git-upload-pack",
            &[("Authorization", agent.as_str())],
        );
        run(&c, &secret("gho_real"), &mut h);
        assert_eq!(
            get(&h, "authorization"),
            vec![format!("Basic {}", b64("x-access-token:gho_real"))]
        );
    }

    // ---- slack_tokens ----

    #[test]
    fn slack_bot_token_from_extra_else_primary() {
        let c = cred("slack_tokens", &[]);
        let mut h = head("POST", "/api/chat.postMessage", &[]);
        let out = run(
            &c,
            &with_extras("xoxb-primary", &[("bot", "xoxb-bot")]),
            &mut h,
        );
        assert_eq!(get(&h, "authorization"), vec!["Bearer xoxb-bot"]);
        assert_eq!(out.secrets_used, vec!["xoxb-bot".to_string()]);

        let mut h = head("POST", "/api/chat.postMessage", &[]);
        run(&c, &secret("xoxb-primary"), &mut h);
        assert_eq!(get(&h, "authorization"), vec!["Bearer xoxb-primary"]);
    }

    #[test]
    fn slack_app_token_paths() {
        let c = cred("slack_tokens", &[]);
        let sec = with_extras("", &[("bot", "xoxb-bot"), ("app", "xapp-app")]);
        for (path, want) in [
            ("/api/admin.users.list", "xapp-app"),
            ("/api/apps.connections.open", "xapp-app"),
            ("/api/auth.test", "xapp-app"),
            ("/api/auth.revoke", "xoxb-bot"),
            ("/api/chat.postMessage", "xoxb-bot"),
            ("/api/appsx", "xoxb-bot"),
        ] {
            let mut h = head("POST", path, &[]);
            run(&c, &sec, &mut h);
            assert_eq!(
                get(&h, "authorization"),
                vec![format!("Bearer {want}")],
                "{path}"
            );
        }
        // Without an app token the bot token is used everywhere.
        let mut h = head("POST", "/api/auth.test", &[]);
        run(&c, &with_extras("", &[("bot", "xoxb-bot")]), &mut h);
        assert_eq!(get(&h, "authorization"), vec!["Bearer xoxb-bot"]);
    }

    #[test]
    fn slack_without_bot_token_is_missing() {
        let c = cred("slack_tokens", &[]);
        let err = inject_http(
            &c,
            &with_extras("", &[("app", "xapp")]),
            &mut head("POST", "/api/chat.postMessage", &[]),
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "credential `c1` has no `bot` secret configured"
        );
    }

    #[test]
    fn slack_form_body_token_removed() {
        let c = cred("slack_tokens", &[]);
        let mut h = head(
            "POST",
            "/api/chat.postMessage",
            &[(
                "Content-Type",
                "Application/X-WWW-Form-Urlencoded; charset=utf-8",
            )],
        );
        let body = b"channel=C1&token=xoxb-placeholder&text=a%26b&to%6Ben=x";
        let out = inject_http(&c, &secret("xoxb-real"), &mut h, Some(body)).unwrap();
        assert_eq!(out.new_body.as_deref(), Some(&b"channel=C1&text=a%26b"[..]));
        assert_eq!(get(&h, "authorization"), vec!["Bearer xoxb-real"]);
    }

    #[test]
    fn slack_body_untouched_when_not_form_or_no_token() {
        let c = cred("slack_tokens", &[]);
        let mut h = head(
            "POST",
            "/api/chat.postMessage",
            &[("Content-Type", "application/json")],
        );
        let out = inject_http(&c, &secret("xoxb"), &mut h, Some(b"token=x&a=1")).unwrap();
        assert_eq!(out.new_body, None);

        let mut h = head(
            "POST",
            "/api/chat.postMessage",
            &[("Content-Type", "application/x-www-form-urlencoded")],
        );
        let out = inject_http(&c, &secret("xoxb"), &mut h, Some(b"tokens=1&a=2")).unwrap();
        assert_eq!(out.new_body, None);
        // No buffered body: nothing to rewrite.
        let out = inject_http(&c, &secret("xoxb"), &mut h, None).unwrap();
        assert_eq!(out.new_body, None);
    }

    #[test]
    fn slack_form_body_of_only_a_token_becomes_empty() {
        let c = cred("slack_tokens", &[]);
        let mut h = head(
            "POST",
            "/api/auth.test",
            &[("content-type", "application/x-www-form-urlencoded")],
        );
        let out = inject_http(&c, &secret("xoxb"), &mut h, Some(b"token=ph")).unwrap();
        assert_eq!(out.new_body, Some(Vec::new()));
    }

    // ---- mtls_credential, passthrough ----

    #[test]
    fn mtls_returns_client_cert_and_leaves_head() {
        let c = cred("mtls_credential", &[]);
        let sec = with_extras(
            "",
            &[("cert", "CERT PEM"), ("key", "KEY PEM"), ("ca", "CA")],
        );
        let mut h = head("GET", "/", &[("Authorization", "Bearer x")]);
        let before = h.clone();
        let out = run(&c, &sec, &mut h);
        assert_eq!(h, before);
        assert_eq!(
            out.client_cert,
            Some((b"CERT PEM".to_vec(), b"KEY PEM".to_vec()))
        );
        assert!(out.secrets_used.is_empty());
    }

    #[test]
    fn mtls_without_cert_or_key_is_missing() {
        let c = cred("mtls_credential", &[]);
        for (extras, slot) in [
            (vec![("key", "K")], "cert"),
            (vec![("cert", "C")], "key"),
            (vec![("cert", "C"), ("key", "")], "key"),
        ] {
            let err = inject_http(
                &c,
                &with_extras("", &extras),
                &mut head("GET", "/", &[]),
                None,
            )
            .unwrap_err();
            assert_eq!(
                err,
                InjectError::MissingSecret {
                    credential: "c1".into(),
                    slot: slot.into()
                }
            );
        }
    }

    #[test]
    fn passthrough_does_nothing() {
        let c = cred("passthrough", &[]);
        let mut h = head("GET", "/", &[("Authorization", "Bearer ph")]);
        let before = h.clone();
        let out = run(&c, &SecretMaterial::default(), &mut h);
        assert_eq!(h, before);
        assert_eq!(out, Injected::default());
    }

    // ---- errors ----

    #[test]
    fn unsupported_types_fail_closed() {
        for kind in [
            "aws_credential",
            "discord_bot_token",
            "telegram_bot_token",
            "openai_codex_oauth",
            "postgres_credential",
            "made_up",
        ] {
            let c = cred(kind, &[]);
            let mut h = head("GET", "/", &[("Authorization", "Bearer ph")]);
            let before = h.clone();
            let err = inject_http(&c, &secret(SECRET), &mut h, None).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("credential `c1` of type `{kind}` cannot be injected into an HTTP request")
            );
            assert_eq!(h, before);
        }
    }

    #[test]
    fn secrets_with_line_breaks_or_nul_are_rejected() {
        let kinds: Vec<Credential> = vec![
            cred("bearer_token", &[]),
            cred("header_token", &[("header", s("X-T"))]),
            cred("basic_auth", &[("username", s("u"))]),
            cred("cookie_token", &[("cookie_name", s("c"))]),
            cred("anthropic_manual_key", &[]),
            cred("gemini_api_key", &[]),
            cred("github_oauth", &[]),
            cred("slack_tokens", &[]),
        ];
        for bad in ["tok\r\nX-Evil: 1", "tok\nen", "tok\0en", "\r"] {
            for c in &kinds {
                let mut h = head("GET", "/x?key=1", &[("Authorization", "Bearer ph")]);
                let before = h.clone();
                let err = inject_http(c, &secret(bad), &mut h, None).unwrap_err();
                assert_eq!(
                    err,
                    InjectError::InvalidSecret {
                        credential: "c1".into()
                    },
                    "{}",
                    c.kind
                );
                assert!(!err.to_string().contains("tok"));
                assert_eq!(h, before, "{}", c.kind);
            }
        }
    }

    #[test]
    fn empty_primary_secret_is_missing() {
        let c = cred("bearer_token", &[]);
        let err = inject_http(
            &c,
            &SecretMaterial::default(),
            &mut head("GET", "/", &[]),
            None,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "credential `c1` has no primary secret configured"
        );
    }

    #[test]
    fn debug_of_injected_hides_secrets() {
        let c = cred("gemini_api_key", &[]);
        let mut h = head("GET", "/x?key=1", &[]);
        let out = run(&c, &secret(SECRET), &mut h);
        let dbg = format!("{out:?}");
        assert!(!dbg.contains(SECRET), "{dbg}");
        let out = Injected {
            client_cert: Some((b"CERT".to_vec(), SECRET.as_bytes().to_vec())),
            new_body: Some(SECRET.as_bytes().to_vec()),
            ..Injected::default()
        };
        assert!(!format!("{out:?}").contains(SECRET));
    }

    #[test]
    fn query_escape_keeps_unreserved() {
        assert_eq!(query_escape(b"aZ09-._~"), "aZ09-._~");
        assert_eq!(query_escape(b"a b/+&="), "a%20b%2F%2B%26%3D");
    }
}
