//! The LLM approver against local servers speaking the Anthropic Messages, OpenAI Responses
//! and chat completions wire formats, over TLS (test CA) and plain loopback HTTP.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clawpatrol_core::approval::{Provider, JUDGE_SYSTEM_PROMPT};
use clawpatrol_core::config::model::{Approver, AttrValue, SourceSpan};
use clawpatrol_core::facts::{Action, Facts, HttpFacts};
use clawpatrol_core::Policy;
use clawpatrol_protocols::http::{request_framing, BodyDecoder, Limits, RequestHead};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::http::upstream::ConnectTo;
use crate::state::StateDir;
use crate::tls::{CertAuthority, LeafCache};

const ANTHROPIC_KEY: &str = "sk-ant-api03-SECRET-anthropic-0001";
const OPENAI_KEY: &str = "sk-proj-SECRET-openai-0002";
const LOCAL_KEY: &str = "local-SECRET-token-0003";
const SECRETS: [&str; 3] = [ANTHROPIC_KEY, OPENAI_KEY, LOCAL_KEY];

/// One request the mock provider received.
#[derive(Debug, Clone)]
struct Seen {
    head: RequestHead,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<String> {
        self.head
            .header_values(name)
            .next()
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// What the mock provider answers.
#[derive(Debug, Clone)]
enum Reply {
    /// A `Content-Length` response.
    Body(u16, String),
    /// A chunked response.
    Chunked(u16, String),
    /// Sleep, then answer.
    Slow(Duration, Box<Reply>),
}

type Script = dyn Fn(usize, &Seen) -> Reply + Send + Sync;

/// A local provider: records requests, answers from a script (call index → reply).
struct Mock {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    max_in_flight: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Mock {
    async fn start(
        tls: Option<Arc<rustls::ServerConfig>>,
        script: impl Fn(usize, &Seen) -> Reply + Send + Sync + 'static,
    ) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let max_in_flight = Arc::new(AtomicUsize::new(0));
        let script: Arc<Script> = Arc::new(script);
        let (s, f, m) = (seen.clone(), in_flight.clone(), max_in_flight.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (s, f, m, script, tls) =
                    (s.clone(), f.clone(), m.clone(), script.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        Some(cfg) => {
                            let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
                            if let Ok(io) = acceptor.accept(tcp).await {
                                serve(io, s, f, m, script).await;
                            }
                        }
                        None => serve(tcp, s, f, m, script).await,
                    }
                });
            }
        });
        Mock {
            addr,
            seen,
            max_in_flight,
            task,
        }
    }

    fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn last(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().unwrap()
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    seen: Arc<Mutex<Vec<Seen>>>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: Arc<AtomicUsize>,
    script: Arc<Script>,
) {
    let mut wire = Wire::new(io, Vec::new());
    let limits = Limits::default();
    let t = Duration::from_secs(5);
    let Ok(Some(head)) = wire.read_request_head(&limits, t, t).await else {
        return;
    };
    let mut decoder = BodyDecoder::new(request_framing(&head).unwrap(), &limits);
    while !decoder.is_done() {
        if wire.buffered().is_empty() && wire.read_more(t).await.unwrap() == 0 {
            break;
        }
        let p = decoder.feed(wire.buffered()).unwrap();
        wire.consume(p.consumed);
    }
    let req = Seen {
        head,
        body: decoder.inspected().bytes().to_vec(),
    };
    let n = {
        let mut s = seen.lock().unwrap();
        s.push(req.clone());
        s.len() - 1
    };
    let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    max_in_flight.fetch_max(now, Ordering::SeqCst);
    let mut reply = script(n, &req);
    while let Reply::Slow(d, inner) = reply {
        tokio::time::sleep(d).await;
        reply = *inner;
    }
    let bytes = match reply {
        Reply::Body(status, body) => format!(
            "HTTP/1.1 {status} Scripted\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        Reply::Chunked(status, body) => {
            let (a, b) = body.split_at(body.len() / 2);
            format!(
                "HTTP/1.1 {status} Scripted\r\nTransfer-Encoding: chunked\r\n\r\n\
                 {:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                a.len(),
                b.len()
            )
        }
        Reply::Slow(..) => unreachable!(),
    };
    let _ = wire.write_all(bytes.as_bytes()).await;
    let _ = wire.io.shutdown().await;
    in_flight.fetch_sub(1, Ordering::SeqCst);
}

fn anthropic(text: &str) -> Reply {
    Reply::Body(
        200,
        json!({"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
               "content": [{"type": "text", "text": text}], "stop_reason": "end_turn"})
        .to_string(),
    )
}

fn responses(text: &str) -> Reply {
    Reply::Body(
        200,
        json!({"id": "resp_1", "object": "response", "status": "completed", "output": [
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": text, "annotations": []}]}]})
        .to_string(),
    )
}

fn chat(text: &str) -> String {
    json!({"id": "chatcmpl-1", "object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})
    .to_string()
}

/// A test CA (the gateway's CA type, in a temp state dir) and server configs it signs.
struct Ca {
    _dir: tempfile::TempDir,
    ca: Arc<CertAuthority>,
}

impl Ca {
    fn new() -> Ca {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let ca = Arc::new(CertAuthority::load_or_create(&state).unwrap());
        Ca { _dir: dir, ca }
    }

    fn server(&self, host: &str) -> Arc<rustls::ServerConfig> {
        LeafCache::new(self.ca.clone()).server_config(host).unwrap()
    }
}

/// The gateway side: a policy with the approvers, secrets, TLS roots and dial overrides.
struct Gw {
    policy: Policy,
    secrets: SecretStore,
    tls: UpstreamTls,
    dialer: Dialer,
}

impl Gw {
    /// `roots`: the "system" trust roots; `connect`: `host:port` → local address overrides;
    /// `local`: the port of the plain-http `base_url`; `private`: the https one (+ its CA).
    fn new(
        roots: Vec<rustls_pki_types::CertificateDer<'static>>,
        connect: &[(&str, SocketAddr)],
        local: u16,
        private: u16,
        private_ca: &str,
    ) -> Gw {
        let text = format!(
            r#"schema_version = 1
endpoint "https" "api" {{ hosts = ["api.github.com"] }}
endpoint "postgres" "db" {{ host = "db.internal:5432" }}
credential "anthropic_manual_key" "anthropic" {{ endpoint = https.api }}
credential "bearer_token" "openai" {{ endpoint = https.api }}
credential "bearer_token" "local" {{ endpoint = https.api }}
credential "bearer_token" "unset" {{ endpoint = https.api }}
credential "postgres_credential" "pg" {{ endpoint = postgres.db }}
approver "llm_approver" "claude" {{
  model      = "claude-haiku-4-5"
  credential = anthropic_manual_key.anthropic
  policy     = "Only read-only GitHub calls and issue creation are allowed."
}}
approver "llm_approver" "gpt" {{
  model      = "gpt-5-mini"
  credential = bearer_token.openai
}}
approver "llm_approver" "local" {{
  model      = "llama3.1:8b"
  credential = bearer_token.local
  base_url   = "http://127.0.0.1:{local}/v1"
  timeout    = 2
}}
approver "llm_approver" "private" {{
  model      = "qwen2.5"
  credential = bearer_token.local
  base_url   = "https://localhost:{private}/openai/v1/"
  ca_cert    = <<EOT
{private_ca}EOT
}}
approver "llm_approver" "mistral" {{
  model      = "mistral-large"
  credential = bearer_token.local
}}
approver "llm_approver" "unset" {{
  model      = "claude-haiku-4-5"
  credential = bearer_token.unset
}}
approver "llm_approver" "pg" {{
  model      = "claude-haiku-4-5"
  credential = postgres_credential.pg
}}
"#
        );
        let policy = match Policy::from_source("llm.hcl", &text) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        let secrets = SecretStore::from_vars([
            ("CLAWPATROL_SECRET_ANTHROPIC", ANTHROPIC_KEY),
            ("CLAWPATROL_SECRET_OPENAI", OPENAI_KEY),
            ("CLAWPATROL_SECRET_LOCAL", LOCAL_KEY),
        ]);
        let overrides: Vec<ConnectTo> = connect
            .iter()
            .map(|(from, to)| ConnectTo {
                from: from.to_string(),
                to: *to,
            })
            .collect();
        Gw {
            policy,
            secrets,
            tls: UpstreamTls::from_roots(roots),
            dialer: Dialer::new(&overrides, Duration::from_secs(2)),
        }
    }

    /// Only a plain-http local server.
    fn local(port: u16) -> Gw {
        Gw::new(Vec::new(), &[], port, 1, "")
    }

    fn env(&self) -> LlmEnv<'_> {
        LlmEnv {
            config: self.policy.config(),
            secrets: &self.secrets,
            upstream_tls: &self.tls,
            dialer: &self.dialer,
        }
    }

    fn approver(&self, name: &str) -> &Approver {
        self.policy
            .config()
            .approvers
            .iter()
            .find(|a| a.name == name)
            .unwrap()
    }

    async fn ask(&self, rt: &LlmRuntime, name: &str, req: &ApprovalRequest) -> ApprovalVerdict {
        let v = rt.decide_with(&self.env(), self.approver(name), req).await;
        no_secret(&v);
        v
    }
}

fn no_secret(v: &ApprovalVerdict) {
    for s in SECRETS {
        assert!(!v.reason.contains(s), "secret in reason: {}", v.reason);
        assert!(!v.by.contains(s));
    }
}

fn request(approver: &str, body: &str) -> ApprovalRequest {
    let action = Action::new(Facts::Http(HttpFacts::new(
        "POST",
        "/repos/acme/app/issues",
        Default::default(),
        Default::default(),
        body.as_bytes().to_vec(),
    )))
    .with_host("api.github.com")
    .with_endpoint("https.api");
    ApprovalRequest {
        approver: format!("llm_approver.{approver}"),
        endpoint: "https.api".into(),
        rule: Some("issue-writes".into()),
        rule_reason: "Issue writes need a judge.".into(),
        action,
        profile: Some("dev".into()),
        agent_ip: "127.0.0.1".into(),
        method: "POST".into(),
        host: "api.github.com".into(),
        path: "/repos/acme/app/issues".into(),
        user_agent: Some("curl/8.5.0".into()),
        body_sample: body.into(),
    }
}

fn user_prompt_of(seen: &Seen, provider: Provider) -> String {
    let v = seen.json();
    let s = match provider {
        Provider::Anthropic => &v["messages"][0]["content"],
        Provider::OpenAiResponses => &v["input"][1]["content"][0]["text"],
        Provider::ChatCompletions => &v["messages"][1]["content"],
    };
    s.as_str().unwrap().to_string()
}

#[tokio::test]
async fn anthropic_over_tls_allows_and_caches() {
    let ca = Ca::new();
    let mock = Mock::start(Some(ca.server("api.anthropic.com")), |_, _| {
        anthropic("allow\nCreating an issue is permitted by the policy.")
    })
    .await;
    let gw = Gw::new(
        vec![ca.ca.cert_der().clone()],
        &[("api.anthropic.com:443", mock.addr)],
        1,
        1,
        "",
    );
    let rt = LlmRuntime::new();
    let req = request("claude", r#"{"title":"bug: crash on start"}"#);
    let v = gw.ask(&rt, "claude", &req).await;
    assert_eq!(
        v,
        ApprovalVerdict {
            allow: true,
            reason: "Creating an issue is permitted by the policy.".into(),
            by: "llm:claude-haiku-4-5".into(),
            approver: "llm_approver.claude".into(),
            approver_type: "llm_approver".into(),
            cached: false,
        }
    );
    let seen = mock.last();
    assert_eq!(seen.head.method, "POST");
    assert_eq!(seen.head.target, "/v1/messages");
    assert_eq!(seen.header("host").as_deref(), Some("api.anthropic.com"));
    assert_eq!(seen.header("x-api-key").as_deref(), Some(ANTHROPIC_KEY));
    assert_eq!(
        seen.header("anthropic-version").as_deref(),
        Some("2023-06-01")
    );
    assert_eq!(
        seen.header("content-type").as_deref(),
        Some("application/json")
    );
    let body = seen.json();
    assert_eq!(body["model"], "claude-haiku-4-5");
    assert_eq!(body["max_tokens"], 512);
    assert_eq!(body["system"], JUDGE_SYSTEM_PROMPT);
    assert_eq!(body["messages"].as_array().unwrap().len(), 1);
    assert_eq!(body["messages"][0]["role"], "user");
    assert_eq!(
        user_prompt_of(&seen, Provider::Anthropic),
        "Policy:\nOnly read-only GitHub calls and issue creation are allowed.\n\nRequest:\n  \
         method: POST\n  host: api.github.com\n  path: /repos/acme/app/issues\n  \
         user-agent: curl/8.5.0\n  body:\n    {\"title\":\"bug: crash on start\"}\n"
    );

    // The same question again: answered from the cache, the provider is not called.
    let again = gw.ask(&rt, "claude", &req).await;
    assert!(again.allow && again.cached);
    assert_eq!(again.reason, v.reason);
    assert_eq!(again.by, "llm:claude-haiku-4-5");
    assert_eq!(mock.hits(), 1);
    assert_eq!(rt.cached_verdicts(), 1);

    // A different body is a different question.
    let other = request("claude", r#"{"title":"other"}"#);
    assert!(!gw.ask(&rt, "claude", &other).await.cached);
    assert_eq!(mock.hits(), 2);
}

#[tokio::test]
async fn openai_responses_over_tls_denies() {
    let ca = Ca::new();
    let mock = Mock::start(Some(ca.server("api.openai.com")), |_, _| {
        responses("deny\nThe policy does not mention issue creation.")
    })
    .await;
    let gw = Gw::new(
        vec![ca.ca.cert_der().clone()],
        &[("api.openai.com:443", mock.addr)],
        1,
        1,
        "",
    );
    let rt = LlmRuntime::new();
    let v = gw.ask(&rt, "gpt", &request("gpt", "")).await;
    assert!(!v.allow);
    assert_eq!(v.reason, "The policy does not mention issue creation.");
    assert_eq!(v.by, "llm:gpt-5-mini");
    let seen = mock.last();
    assert_eq!(seen.head.target, "/v1/responses");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {OPENAI_KEY}"))
    );
    assert!(seen.header("anthropic-version").is_none());
    let body = seen.json();
    assert_eq!(body["model"], "gpt-5-mini");
    assert_eq!(body["input"][0]["role"], "system");
    assert_eq!(body["input"][0]["content"][0]["type"], "input_text");
    assert_eq!(body["input"][0]["content"][0]["text"], JUDGE_SYSTEM_PROMPT);
    assert_eq!(body["input"][1]["role"], "user");
    // No approver policy: the rule's reason is the policy; no body line without a body.
    assert_eq!(
        user_prompt_of(&seen, Provider::OpenAiResponses),
        "Policy:\nIssue writes need a judge.\n\nRequest:\n  method: POST\n  host: api.github.com\n  \
         path: /repos/acme/app/issues\n  user-agent: curl/8.5.0\n"
    );
    // Denies are cached too.
    assert!(gw.ask(&rt, "gpt", &request("gpt", "")).await.cached);
    assert_eq!(mock.hits(), 1);
}

#[tokio::test]
async fn chat_completions_over_loopback_http() {
    let mock = Mock::start(None, |n, _| match n {
        0 => Reply::Body(200, chat("allow\nfine")),
        _ => Reply::Chunked(200, chat("DENY.\nnot fine")),
    })
    .await;
    let gw = Gw::local(mock.addr.port());
    let rt = LlmRuntime::new();
    let v = gw.ask(&rt, "local", &request("local", "a")).await;
    assert!(v.allow, "{v:?}");
    assert_eq!(v.reason, "fine");
    assert_eq!(v.by, "llm:llama3.1:8b");
    let seen = mock.last();
    assert_eq!(seen.head.target, "/v1/chat/completions");
    assert_eq!(
        seen.header("host"),
        Some(format!("127.0.0.1:{}", mock.addr.port()))
    );
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {LOCAL_KEY}"))
    );
    let body = seen.json();
    assert_eq!(body["model"], "llama3.1:8b");
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(body["messages"][0]["content"], JUDGE_SYSTEM_PROMPT);
    assert_eq!(body["messages"][1]["role"], "user");
    assert!(user_prompt_of(&seen, Provider::ChatCompletions).contains("    a\n"));

    let v = gw.ask(&rt, "local", &request("local", "b")).await;
    assert!(!v.allow);
    assert_eq!(v.reason, "not fine");
}

#[tokio::test]
async fn private_https_base_url_trusts_ca_cert() {
    let ca = Ca::new();
    let mock = Mock::start(Some(ca.server("localhost")), |_, _| {
        Reply::Body(200, chat("allow\nok"))
    })
    .await;
    // No system roots at all: only the approver's `ca_cert` can verify the server.
    let gw = Gw::new(Vec::new(), &[], 1, mock.addr.port(), ca.ca.cert_pem());
    let rt = LlmRuntime::new();
    let v = gw.ask(&rt, "private", &request("private", "")).await;
    assert!(v.allow, "{v:?}");
    assert_eq!(mock.last().head.target, "/openai/v1/chat/completions");

    // The same server is refused without the CA (the `gpt` approver uses system roots).
    let gw = Gw::new(Vec::new(), &[("api.openai.com:443", mock.addr)], 1, 1, "");
    let v = gw.ask(&rt, "gpt", &request("gpt", "")).await;
    assert!(!v.allow);
    assert!(
        v.reason
            .starts_with("llm call: tls handshake with `api.openai.com` failed"),
        "{}",
        v.reason
    );
}

#[tokio::test]
async fn ambiguous_and_empty_replies_deny_uncached() {
    let mock = Mock::start(None, |n, _| match n {
        0 => Reply::Body(200, chat("Well, it could go either way: allow or deny.")),
        1 => Reply::Body(200, chat("This request is not allowed.")),
        _ => Reply::Body(200, chat("   ")),
    })
    .await;
    let gw = Gw::local(mock.addr.port());
    let rt = LlmRuntime::new();
    let req = request("local", "x");
    let v = gw.ask(&rt, "local", &req).await;
    assert!(!v.allow);
    assert_eq!(
        v.reason,
        "ambiguous llm response: Well, it could go either way: allow or deny."
    );
    let v = gw.ask(&rt, "local", &req).await;
    assert!(!v.allow && !v.cached);
    assert_eq!(
        v.reason,
        "ambiguous llm response: This request is not allowed."
    );
    let v = gw.ask(&rt, "local", &req).await;
    assert_eq!(v.reason, "llm returned empty response");
    assert_eq!(mock.hits(), 3);
    assert_eq!(rt.cached_verdicts(), 0);
}

#[tokio::test]
async fn garbage_and_wrong_shape_deny_with_decode_reason() {
    let mock = Mock::start(None, |n, _| match n {
        0 => Reply::Body(200, "<html>oops</html>".into()),
        _ => Reply::Body(200, r#"{"choices":[]}"#.into()),
    })
    .await;
    let gw = Gw::local(mock.addr.port());
    let rt = LlmRuntime::new();
    let v = gw.ask(&rt, "local", &request("local", "")).await;
    assert!(!v.allow);
    assert!(
        v.reason
            .starts_with("llm response decode: expected value at line 1"),
        "{}",
        v.reason
    );
    let v = gw.ask(&rt, "local", &request("local", "")).await;
    assert_eq!(
        v.reason,
        "llm response decode: chat completion had no message content"
    );
}

#[tokio::test]
async fn oversized_response_is_refused() {
    let mock = Mock::start(None, |_, _| Reply::Body(200, chat(&"a".repeat(4096)))).await;
    let gw = Gw::local(mock.addr.port());
    let rt = LlmRuntime::with_limits(LlmLimits {
        max_response_bytes: 1024,
        ..LlmLimits::default()
    });
    let v = gw.ask(&rt, "local", &request("local", "")).await;
    assert_eq!(
        v.reason,
        "llm response decode: response body exceeds 1024 bytes"
    );
}

#[tokio::test]
async fn error_status_denies_with_redacted_body() {
    let mock = Mock::start(None, |_, _| {
        Reply::Body(
            503,
            format!(
                "{{\"error\":\"overloaded; key {LOCAL_KEY} throttled\"}}{}",
                "x".repeat(2000)
            ),
        )
    })
    .await;
    let gw = Gw::local(mock.addr.port());
    let rt = LlmRuntime::new();
    let v = gw.ask(&rt, "local", &request("local", "")).await;
    assert!(!v.allow);
    assert!(
        v.reason.starts_with(
            "llm http 503: {\"error\":\"overloaded; key [REDACTED credential] throttled\"}xxx"
        ),
        "{}",
        v.reason
    );
    // At most 1024 bytes of the body are quoted (before redaction shortened nothing here:
    // the marker is shorter than the secret).
    let quoted = v.reason.trim_start_matches("llm http 503: ");
    assert!(quoted.len() <= 1024, "{}", quoted.len());
}

#[tokio::test]
async fn slow_provider_times_out() {
    let mock = Mock::start(None, |_, _| {
        Reply::Slow(
            Duration::from_secs(5),
            Box::new(Reply::Body(200, chat("allow"))),
        )
    })
    .await;
    let gw = Gw::local(mock.addr.port());
    let rt = LlmRuntime::new();
    let started = Instant::now();
    let v = gw.ask(&rt, "local", &request("local", "")).await;
    assert!(!v.allow);
    assert_eq!(v.reason, "llm call: timed out after 2s");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn breaker_opens_after_repeated_failures() {
    let mock = Mock::start(None, |_, _| Reply::Body(500, "boom".into())).await;
    let gw = Gw::local(mock.addr.port());
    let rt = LlmRuntime::new();
    for i in 0..5 {
        let v = gw
            .ask(&rt, "local", &request("local", &format!("{i}")))
            .await;
        assert_eq!(v.reason, "llm http 500: boom");
    }
    let v = gw.ask(&rt, "local", &request("local", "6")).await;
    assert!(!v.allow);
    assert_eq!(
        v.reason,
        "llm approver \"local\" circuit open after repeated failures"
    );
    assert_eq!(mock.hits(), 5);
}

#[tokio::test]
async fn breaker_closes_after_cooldown_and_success() {
    let mock = Mock::start(None, |n, _| {
        if n < 2 {
            Reply::Body(502, "bad gateway".into())
        } else {
            Reply::Body(200, chat("allow\nok"))
        }
    })
    .await;
    let gw = Gw::local(mock.addr.port());
    let rt = LlmRuntime::with_limits(LlmLimits {
        breaker_threshold: 2,
        breaker_cooldown: Duration::from_millis(300),
        ..LlmLimits::default()
    });
    for i in 0..2 {
        gw.ask(&rt, "local", &request("local", &format!("{i}")))
            .await;
    }
    let v = gw.ask(&rt, "local", &request("local", "x")).await;
    assert!(v.reason.contains("circuit open"), "{}", v.reason);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let v = gw.ask(&rt, "local", &request("local", "y")).await;
    assert!(v.allow, "{v:?}");
    assert_eq!(mock.hits(), 3);
}

#[tokio::test]
async fn concurrency_is_limited_per_approver() {
    let mock = Mock::start(None, |_, _| {
        Reply::Slow(
            Duration::from_millis(150),
            Box::new(Reply::Body(200, chat("allow"))),
        )
    })
    .await;
    let gw = Gw::local(mock.addr.port());
    let rt = LlmRuntime::with_limits(LlmLimits {
        max_concurrent: 1,
        ..LlmLimits::default()
    });
    let reqs: Vec<ApprovalRequest> = (0..3).map(|i| request("local", &format!("{i}"))).collect();
    let asks = reqs.iter().map(|r| gw.ask(&rt, "local", r));
    let verdicts = futures_join_all(asks).await;
    assert!(verdicts.iter().all(|v| v.allow), "{verdicts:?}");
    assert_eq!(mock.hits(), 3);
    assert_eq!(mock.max_in_flight.load(Ordering::SeqCst), 1);
}

/// Polls futures concurrently on the current task (no `futures` crate in the tree).
async fn futures_join_all<F: Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in fs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

#[tokio::test]
async fn configuration_problems_deny_without_a_call() {
    let mock = Mock::start(None, |_, _| Reply::Body(200, chat("allow"))).await;
    let gw = Gw::local(mock.addr.port());
    let rt = LlmRuntime::new();
    let v = gw.ask(&rt, "mistral", &request("mistral", "")).await;
    assert_eq!(v.reason, "unknown model family: mistral-large");
    assert_eq!(v.by, "llm:mistral-large");
    let v = gw.ask(&rt, "unset", &request("unset", "")).await;
    assert_eq!(
        v.reason,
        "secret fetch: credential `unset` has no secret configured (set CLAWPATROL_SECRET_UNSET)"
    );
    let v = gw.ask(&rt, "pg", &request("pg", "")).await;
    assert_eq!(
        v.reason,
        "credential inject: credential `pg` of type `postgres_credential` cannot be injected \
         into an HTTP request"
    );
    let ghost = Approver {
        kind: "llm_approver".into(),
        name: "ghost".into(),
        attrs: [
            ("model".to_string(), AttrValue::Str("gpt-5".into())),
            ("credential".to_string(), AttrValue::Str("nope".into())),
        ]
        .into(),
        span: SourceSpan::default(),
    };
    let v = rt
        .decide_with(&gw.env(), &ghost, &request("ghost", ""))
        .await;
    assert_eq!(v.reason, "credential `nope` not declared");
    let no_model = Approver {
        attrs: Default::default(),
        ..ghost
    };
    let v = rt
        .decide_with(&gw.env(), &no_model, &request("ghost", ""))
        .await;
    assert_eq!(v.reason, "llm approver has no model");
    assert_eq!(mock.hits(), 0);
    // Configuration problems do not open the circuit.
    for _ in 0..6 {
        gw.ask(&rt, "unset", &request("unset", "")).await;
    }
    assert!(gw
        .ask(&rt, "unset", &request("unset", ""))
        .await
        .reason
        .starts_with("secret fetch"));
}

#[tokio::test]
async fn unreachable_provider_denies_with_call_reason() {
    // Bind and drop: nothing listens on the port.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gw = Gw::local(port);
    let rt = LlmRuntime::new();
    let v = gw.ask(&rt, "local", &request("local", "")).await;
    assert!(
        v.reason
            .starts_with(&format!("llm call: cannot connect to `127.0.0.1:{port}`")),
        "{}",
        v.reason
    );
}

#[tokio::test]
async fn classifier_mode_returns_the_classification() {
    let mock = Mock::start(None, |n, _| match n {
        0 => Reply::Body(
            200,
            chat(
                r#"{"subject":"acme/app","label":"issue","confidence":90,"summary":"Opens an issue."}"#,
            ),
        ),
        _ => Reply::Body(200, chat("I think this is an issue.")),
    })
    .await;
    let gw = Gw::local(mock.addr.port());
    let rt = LlmRuntime::new();
    let c = rt
        .classify(&gw.env(), gw.approver("local"), &request("local", "{}"))
        .await
        .unwrap();
    assert_eq!(c.subject, "acme/app");
    assert_eq!(c.confidence, 90);
    let body = mock.last().json();
    assert_eq!(
        body["messages"][0]["content"],
        clawpatrol_core::approval::CLASSIFIER_SYSTEM_PROMPT
    );
    assert!(body["messages"][1]["content"]
        .as_str()
        .unwrap()
        .starts_with("Policy:\nIssue writes need a judge.\n\nRequest:\n"));
    let e = rt
        .classify(&gw.env(), gw.approver("local"), &request("local", "{}"))
        .await
        .unwrap_err();
    assert!(e.starts_with("classifier json parse: "), "{e}");
    // Classifications are never cached.
    assert_eq!(mock.hits(), 2);
}

#[test]
fn decide_future_is_send() {
    fn is_send<T: Send>(_: &T) {}
    let gw = Gw::local(1);
    let rt = LlmRuntime::new();
    let req = request("local", "");
    let env = gw.env();
    let fut = rt.decide_with(&env, gw.approver("local"), &req);
    is_send(&fut);
}
