//! LLM provider wire formats for the judge (reference §5.2).
//!
//! The model name picks the API: `claude-…` → the Anthropic Messages API
//! (`POST https://api.anthropic.com/v1/messages`); `gpt-…` or any model starting with `o` →
//! the OpenAI Responses API (`POST https://api.openai.com/v1/responses`); anything else is
//! `unknown model family: <model>`.
//!
//! Our extension: with `base_url` set, every model is called through the OpenAI-compatible
//! chat completions API at `<base_url>/chat/completions` (`base_url` includes the version
//! prefix, e.g. `http://127.0.0.1:11434/v1`). That is the one API local servers (Ollama,
//! vLLM, llama.cpp, LM Studio) and gateways (LiteLLM, OpenRouter) share, so the model name is
//! passed through unchanged and does not select a family. `http://` is accepted only for
//! loopback hosts; anything else must be `https://`.

use std::net::IpAddr;

use clawpatrol_protocols::http::{RequestHead, Version};
use serde_json::{json, Value};

use crate::config::model::{Approver, AttrValue};

/// `max_tokens` of every judge request.
pub const MAX_TOKENS: u32 = 512;
/// The `anthropic-version` header value.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Default time allowed for one judge call, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// Why a judge call could not be built or its answer not read. Messages are the deny
/// reasons of reference §5.2 and never contain a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The approver has no `model`.
    #[error("llm approver has no model")]
    MissingModel,
    /// The approver has no `credential`.
    #[error("llm approver has no credential")]
    MissingCredential,
    /// The model name matches no provider family.
    #[error("unknown model family: {0}")]
    UnknownModelFamily(String),
    /// `base_url` is not a usable URL.
    #[error("invalid base_url `{url}`: {why}")]
    BaseUrl {
        /// The configured value.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The provider's 200 response could not be read.
    #[error("llm response decode: {0}")]
    Decode(String),
}

/// A parsed `base_url`: scheme, host, port and path prefix (no trailing `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// `https` (else plain `http`, loopback only).
    pub tls: bool,
    /// The host, lower-case, without brackets for IPv6.
    pub host: String,
    /// The port (default 443 / 80).
    pub port: u16,
    /// The path prefix (`/v1`), or empty.
    pub path: String,
}

impl BaseUrl {
    /// Parses and checks a `base_url` value.
    pub fn parse(url: &str) -> Result<BaseUrl, ProviderError> {
        let bad = |why: &str| ProviderError::BaseUrl {
            url: url.to_string(),
            why: why.to_string(),
        };
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("it contains whitespace or control characters"));
        }
        let lower = url.to_ascii_lowercase();
        let (tls, rest) = if lower.starts_with("https://") {
            (true, &url["https://".len()..])
        } else if lower.starts_with("http://") {
            (false, &url["http://".len()..])
        } else {
            return Err(bad("use an http:// or https:// URL"));
        };
        if rest.contains(['?', '#']) {
            return Err(bad("a query or fragment is not allowed"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(bad(
                "user information is not allowed; authenticate with the approver's credential",
            ));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| bad("invalid host or port"))?;
        let host = host.to_ascii_lowercase();
        let valid_name = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        if !valid_name && host.parse::<IpAddr>().is_err() {
            return Err(bad("invalid host"));
        }
        if !tls && !is_loopback(&host) {
            return Err(bad(
                "plain http is allowed only for loopback hosts; use https://",
            ));
        }
        Ok(BaseUrl {
            tls,
            port: port.unwrap_or(if tls { 443 } else { 80 }),
            host,
            path: path.trim_end_matches('/').to_string(),
        })
    }
}

/// `host[:port]` or `[v6][:port]`; `None` when malformed or the port is not 1..=65535.
fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        match after {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return None,
        },
    };
    Some((host, port))
}

/// `localhost`, `127.0.0.0/8` or `::1`.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The `llm_approver` attributes the judge needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmApproverConfig {
    /// `model`.
    pub model: String,
    /// `credential`: the credential's bare name.
    pub credential: String,
    /// `policy`, when given.
    pub policy: Option<String>,
    /// `base_url` (our extension), parsed.
    pub base_url: Option<BaseUrl>,
    /// `timeout` in seconds (our extension; default 30).
    pub timeout_secs: u64,
    /// `ca_cert` (our extension): PEM trusted for an https `base_url`, besides the system roots.
    pub ca_cert: Option<String>,
}

impl LlmApproverConfig {
    /// Reads the attributes of an `llm_approver` block.
    pub fn from_approver(a: &Approver) -> Result<LlmApproverConfig, ProviderError> {
        let s = |k: &str| match a.attrs.get(k) {
            Some(AttrValue::Str(v)) if !v.is_empty() => Some(v.clone()),
            _ => None,
        };
        let model = s("model").ok_or(ProviderError::MissingModel)?;
        let credential = s("credential").ok_or(ProviderError::MissingCredential)?;
        let base_url = s("base_url").map(|u| BaseUrl::parse(&u)).transpose()?;
        let timeout_secs = match a.attrs.get("timeout") {
            Some(AttrValue::Int(n)) if *n > 0 => u64::try_from(*n).unwrap_or(DEFAULT_TIMEOUT_SECS),
            _ => DEFAULT_TIMEOUT_SECS,
        };
        Ok(LlmApproverConfig {
            model,
            credential,
            policy: s("policy"),
            base_url,
            timeout_secs,
            ca_cert: s("ca_cert"),
        })
    }

    /// The provider API this approver calls.
    pub fn provider(&self) -> Result<Provider, ProviderError> {
        Provider::select(&self.model, self.base_url.is_some())
    }
}

/// Where a judge request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Whether to use TLS.
    pub tls: bool,
    /// The host to dial and verify.
    pub host: String,
    /// The port.
    pub port: u16,
    /// The request path.
    pub path: String,
}

impl Target {
    /// The `Host` header value: the host, bracketed for IPv6, with a non-default port.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default = if self.tls { 443 } else { 80 };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// A judge API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// The Anthropic Messages API.
    Anthropic,
    /// The OpenAI Responses API.
    OpenAiResponses,
    /// An OpenAI-compatible chat completions API at `base_url`.
    ChatCompletions,
}

impl Provider {
    /// The API for `model`: chat completions when a `base_url` is set, else by prefix.
    pub fn select(model: &str, has_base_url: bool) -> Result<Provider, ProviderError> {
        if has_base_url {
            Ok(Provider::ChatCompletions)
        } else if model.starts_with("claude-") {
            Ok(Provider::Anthropic)
        } else if model.starts_with("gpt-") || model.starts_with('o') {
            Ok(Provider::OpenAiResponses)
        } else {
            Err(ProviderError::UnknownModelFamily(model.to_string()))
        }
    }

    /// Where the request goes; chat completions needs `base_url`, the others ignore it.
    pub fn target(self, base_url: Option<&BaseUrl>) -> Target {
        let public = |host: &str, path: &str| Target {
            tls: true,
            host: host.to_string(),
            port: 443,
            path: path.to_string(),
        };
        match (self, base_url) {
            (Provider::Anthropic, _) => public("api.anthropic.com", "/v1/messages"),
            (Provider::OpenAiResponses, _) => public("api.openai.com", "/v1/responses"),
            (Provider::ChatCompletions, Some(b)) => Target {
                tls: b.tls,
                host: b.host.clone(),
                port: b.port,
                path: format!("{}/chat/completions", b.path),
            },
            // Not reachable through `select`; the public OpenAI API speaks it too.
            (Provider::ChatCompletions, None) => public("api.openai.com", "/v1/chat/completions"),
        }
    }

    /// The JSON request body.
    pub fn request_body(self, model: &str, system: &str, user: &str) -> Vec<u8> {
        let v = match self {
            Provider::Anthropic => json!({
                "model": model,
                "max_tokens": MAX_TOKENS,
                "system": system,
                "messages": [{"role": "user", "content": user}],
            }),
            Provider::OpenAiResponses => json!({
                "model": model,
                "input": [
                    {"role": "system", "content": [{"type": "input_text", "text": system}]},
                    {"role": "user", "content": [{"type": "input_text", "text": user}]},
                ],
            }),
            Provider::ChatCompletions => json!({
                "model": model,
                "max_tokens": MAX_TOKENS,
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
            }),
        };
        // A `Value` of strings and numbers always serialises.
        serde_json::to_vec(&v).unwrap_or_default()
    }

    /// The request head (before credential injection): `POST`, `Host`, JSON content type,
    /// `Content-Length`, identity encoding, `Connection: close`, plus `anthropic-version`.
    pub fn request_head(self, target: &Target, body_len: usize, user_agent: &str) -> RequestHead {
        let mut headers: Vec<(String, Vec<u8>)> = vec![
            ("Host".into(), target.host_header().into_bytes()),
            ("User-Agent".into(), user_agent.as_bytes().to_vec()),
            ("Content-Type".into(), b"application/json".to_vec()),
            ("Accept".into(), b"application/json".to_vec()),
            ("Accept-Encoding".into(), b"identity".to_vec()),
            ("Content-Length".into(), body_len.to_string().into_bytes()),
            ("Connection".into(), b"close".to_vec()),
        ];
        if self == Provider::Anthropic {
            headers.push((
                "anthropic-version".into(),
                ANTHROPIC_VERSION.as_bytes().to_vec(),
            ));
        }
        RequestHead {
            method: "POST".into(),
            target: target.path.clone(),
            version: Version::Http11,
            headers,
            head_len: 0,
        }
    }

    /// The model's text from a 200 response body.
    pub fn extract_text(self, body: &[u8]) -> Result<String, ProviderError> {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| ProviderError::Decode(e.to_string()))?;
        let text = match self {
            Provider::Anthropic => anthropic_text(&v),
            Provider::OpenAiResponses => responses_text(&v),
            Provider::ChatCompletions => chat_text(&v),
        };
        text.ok_or_else(|| {
            ProviderError::Decode(
                match self {
                    Provider::Anthropic => "anthropic response had no text content",
                    Provider::OpenAiResponses => "openai response had no output text",
                    Provider::ChatCompletions => "chat completion had no message content",
                }
                .to_string(),
            )
        })
    }

    /// The API's name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Anthropic => "anthropic messages",
            Provider::OpenAiResponses => "openai responses",
            Provider::ChatCompletions => "chat completions",
        }
    }
}

/// The first non-empty `content[].text` of type `text`.
fn anthropic_text(v: &Value) -> Option<String> {
    v.get("content")?
        .as_array()?
        .iter()
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|c| c.get("text").and_then(Value::as_str))
        .find(|t| !t.is_empty())
        .map(str::to_string)
}

/// Top-level `output_text` (SDK convenience field), else the first non-empty
/// `output[].content[].text` of type `output_text`.
fn responses_text(v: &Value) -> Option<String> {
    if let Some(t) = v
        .get("output_text")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        return Some(t.to_string());
    }
    v.get("output")?
        .as_array()?
        .iter()
        .filter_map(|o| o.get("content").and_then(Value::as_array))
        .flatten()
        .filter(|c| c.get("type").and_then(Value::as_str) == Some("output_text"))
        .filter_map(|c| c.get("text").and_then(Value::as_str))
        .find(|t| !t.is_empty())
        .map(str::to_string)
}

/// `choices[0].message.content`: a string, or the joined `text` parts of a part list.
fn chat_text(v: &Value) -> Option<String> {
    let content = v.get("choices")?.get(0)?.get("message")?.get("content")?;
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            (!texts.is_empty()).then(|| texts.concat())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::SourceSpan;

    fn approver(attrs: &[(&str, AttrValue)]) -> Approver {
        Approver {
            kind: "llm_approver".into(),
            name: "judge".into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            span: SourceSpan::default(),
        }
    }

    fn s(v: &str) -> AttrValue {
        AttrValue::Str(v.into())
    }

    #[test]
    fn family_by_prefix() {
        assert_eq!(
            Provider::select("claude-sonnet-4-5", false),
            Ok(Provider::Anthropic)
        );
        assert_eq!(
            Provider::select("gpt-5", false),
            Ok(Provider::OpenAiResponses)
        );
        assert_eq!(
            Provider::select("o3-mini", false),
            Ok(Provider::OpenAiResponses)
        );
        assert_eq!(
            Provider::select("llama3", false).unwrap_err().to_string(),
            "unknown model family: llama3"
        );
        assert_eq!(
            Provider::select("llama3", true),
            Ok(Provider::ChatCompletions)
        );
        assert_eq!(
            Provider::select("claude-x", true),
            Ok(Provider::ChatCompletions)
        );
    }

    #[test]
    fn base_url_parsing() {
        let b = BaseUrl::parse("http://127.0.0.1:11434/v1/").unwrap();
        assert_eq!(
            b,
            BaseUrl {
                tls: false,
                host: "127.0.0.1".into(),
                port: 11434,
                path: "/v1".into()
            }
        );
        let b = BaseUrl::parse("HTTPS://LLM.internal").unwrap();
        assert_eq!(
            (b.tls, b.host.as_str(), b.port, b.path.as_str()),
            (true, "llm.internal", 443, "")
        );
        let b = BaseUrl::parse("http://[::1]:8080/api/v1").unwrap();
        assert_eq!((b.host.as_str(), b.port), ("::1", 8080));
        assert!(BaseUrl::parse("http://localhost/v1").is_ok());
        for (bad, why) in [
            ("http://llm.internal/v1", "plain http"),
            ("ftp://x", "http:// or https://"),
            ("https://x/v1?a=1", "query"),
            ("https://user:pw@x/v1", "user information"),
            ("https://x:0/", "host or port"),
            ("https://x:99999/", "host or port"),
            ("https:///v1", "invalid host"),
            ("https://x y/", "whitespace"),
            ("http://10.0.0.1/", "plain http"),
        ] {
            let e = BaseUrl::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
            assert!(e.starts_with(&format!("invalid base_url `{bad}`: ")), "{e}");
        }
    }

    #[test]
    fn config_from_attrs() {
        let a = approver(&[
            ("model", s("gpt-5")),
            ("credential", s("openai")),
            ("policy", s("be careful")),
            ("timeout", AttrValue::Int(5)),
        ]);
        let c = LlmApproverConfig::from_approver(&a).unwrap();
        assert_eq!(c.model, "gpt-5");
        assert_eq!(c.credential, "openai");
        assert_eq!(c.policy.as_deref(), Some("be careful"));
        assert_eq!(c.timeout_secs, 5);
        assert_eq!(c.provider(), Ok(Provider::OpenAiResponses));
        let a = approver(&[("credential", s("x"))]);
        assert_eq!(
            LlmApproverConfig::from_approver(&a),
            Err(ProviderError::MissingModel)
        );
        let a = approver(&[("model", s("m")), ("credential", s("x"))]);
        let c = LlmApproverConfig::from_approver(&a).unwrap();
        assert_eq!(c.timeout_secs, DEFAULT_TIMEOUT_SECS);
        assert!(c.provider().is_err());
    }

    fn load(approver_body: &str) -> Result<crate::Policy, crate::ConfigError> {
        let text = format!(
            "schema_version = 1\n\
             endpoint \"https\" \"api\" {{ hosts = [\"api.example.com\"] }}\n\
             credential \"anthropic_manual_key\" \"key\" {{ endpoint = https.api }}\n\
             approver \"llm_approver\" \"judge\" {{\n\
               model = \"claude-haiku-4-5\"\n\
               credential = anthropic_manual_key.key\n\
               {approver_body}\n\
             }}\n"
        );
        crate::Policy::from_source("test.hcl", &text)
    }

    #[test]
    fn config_accepts_our_attributes_and_checks_base_url() {
        let p = load(
            "base_url = \"http://127.0.0.1:8080/v1\"\ntimeout = 5\n\
             ca_cert = \"-----BEGIN CERTIFICATE-----\"",
        )
        .unwrap();
        let c = LlmApproverConfig::from_approver(&p.config().approvers[0]).unwrap();
        assert_eq!(c.timeout_secs, 5);
        assert_eq!(c.base_url.unwrap().port, 8080);
        assert!(c.ca_cert.is_some());
        let e = load("base_url = \"http://llm.example.com/v1\"")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("invalid base_url `http://llm.example.com/v1`: plain http"),
            "{e}"
        );
        let e = load("timeout = 0").unwrap_err().to_string();
        assert!(e.contains("invalid timeout `0`"), "{e}");
    }

    #[test]
    fn targets() {
        let t = Provider::Anthropic.target(None);
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str(), t.tls),
            ("api.anthropic.com", 443, "/v1/messages", true)
        );
        assert_eq!(t.host_header(), "api.anthropic.com");
        let t = Provider::OpenAiResponses.target(None);
        assert_eq!(
            (t.host.as_str(), t.path.as_str()),
            ("api.openai.com", "/v1/responses")
        );
        let b = BaseUrl::parse("http://[::1]:8080/v1").unwrap();
        let t = Provider::ChatCompletions.target(Some(&b));
        assert_eq!(t.path, "/v1/chat/completions");
        assert_eq!(t.host_header(), "[::1]:8080");
    }

    #[test]
    fn anthropic_wire_format() {
        let body = Provider::Anthropic.request_body("claude-x", "SYS", "USER");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            json!({"model": "claude-x", "max_tokens": 512, "system": "SYS",
                   "messages": [{"role": "user", "content": "USER"}]})
        );
        let head = Provider::Anthropic.request_head(
            &Provider::Anthropic.target(None),
            body.len(),
            "clawpatrol",
        );
        assert_eq!(head.method, "POST");
        assert_eq!(head.target, "/v1/messages");
        let h = |n: &str| head.header_values(n).next().map(|v| v.to_vec());
        assert_eq!(h("anthropic-version"), Some(b"2023-06-01".to_vec()));
        assert_eq!(
            h("content-length"),
            Some(body.len().to_string().into_bytes())
        );
        assert_eq!(h("host"), Some(b"api.anthropic.com".to_vec()));
        let text = Provider::Anthropic
            .extract_text(
                br#"{"content":[{"type":"thinking","text":"hmm"},{"type":"text","text":"allow\nok"}]}"#,
            )
            .unwrap();
        assert_eq!(text, "allow\nok");
        assert_eq!(
            Provider::Anthropic
                .extract_text(br#"{"content":[]}"#)
                .unwrap_err()
                .to_string(),
            "llm response decode: anthropic response had no text content"
        );
    }

    #[test]
    fn responses_wire_format() {
        let body = Provider::OpenAiResponses.request_body("gpt-5", "SYS", "USER");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            json!({"model": "gpt-5", "input": [
                {"role": "system", "content": [{"type": "input_text", "text": "SYS"}]},
                {"role": "user", "content": [{"type": "input_text", "text": "USER"}]}]})
        );
        let head = Provider::OpenAiResponses.request_head(
            &Provider::OpenAiResponses.target(None),
            body.len(),
            "ua",
        );
        assert!(head.header_values("anthropic-version").next().is_none());
        let r = br#"{"output":[{"type":"reasoning","content":[]},
            {"type":"message","content":[{"type":"refusal","text":"no"},
            {"type":"output_text","text":"deny\nbad"}]}]}"#;
        assert_eq!(
            Provider::OpenAiResponses.extract_text(r).unwrap(),
            "deny\nbad"
        );
        assert_eq!(
            Provider::OpenAiResponses
                .extract_text(br#"{"output_text":"allow","output":[]}"#)
                .unwrap(),
            "allow"
        );
        assert_eq!(
            Provider::OpenAiResponses
                .extract_text(br#"{"output":[]}"#)
                .unwrap_err()
                .to_string(),
            "llm response decode: openai response had no output text"
        );
    }

    #[test]
    fn chat_wire_format() {
        let body = Provider::ChatCompletions.request_body("llama3", "SYS", "USER");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            json!({"model": "llama3", "max_tokens": 512, "messages": [
                {"role": "system", "content": "SYS"}, {"role": "user", "content": "USER"}]})
        );
        assert_eq!(
            Provider::ChatCompletions
                .extract_text(
                    br#"{"choices":[{"message":{"role":"assistant","content":"allow"}}]}"#
                )
                .unwrap(),
            "allow"
        );
        assert_eq!(
            Provider::ChatCompletions
                .extract_text(
                    br#"{"choices":[{"message":{"content":[{"type":"text","text":"de"},{"type":"text","text":"ny"}]}}]}"#
                )
                .unwrap(),
            "deny"
        );
        assert!(Provider::ChatCompletions
            .extract_text(br#"{"choices":[]}"#)
            .is_err());
        let e = Provider::ChatCompletions
            .extract_text(b"<html>")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("llm response decode: expected value"), "{e}");
    }
}
