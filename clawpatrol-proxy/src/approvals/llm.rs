//! The `llm_approver` runtime (reference §5.2): ask a model whether the approver's policy
//! allows an action.
//!
//! One decision: read the approver (`model`, `credential`, `policy`, and our `base_url`,
//! `timeout`, `ca_cert`), build the judge prompt (core), answer from the verdict cache when
//! the same question was answered within `defaults.llm_cache_ttl`, else deny at once while
//! the approver's circuit is open, else resolve the credential and its secret, build the
//! provider request (core), inject the credential exactly as proxied traffic is injected
//! (`inject_http`), call the provider directly (not through the interception path) within
//! the timeout and under the approver's concurrency limit, and parse the reply (core).
//!
//! Transport: the public APIs are `https://api.anthropic.com` and `https://api.openai.com`,
//! verified against the system roots; a `base_url` may be `https://` (system roots plus the
//! approver's `ca_cert` PEM, for private servers) or `http://` on a loopback host. Dials go
//! through the gateway's [`Dialer`], so `--connect-to` overrides apply. The response is read
//! by `Content-Length`, chunked coding or until close, capped at 1 MiB.
//!
//! Every failure denies with the reasons of §5.2 (`llm call: …`, `llm http <status>: <≤1024
//! bytes>`, `llm response decode: …`, `secret fetch: …`, `credential inject: …`). Every reason
//! is redacted against the credential's secret before it leaves this module. Transport,
//! status and decode failures count towards the circuit breaker; configuration problems do
//! not. Only definite verdicts (not ambiguous or empty replies, never failures) are cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use clawpatrol_core::approval::{
    cache_key, classifier_user_prompt, judge_user_prompt, parse_classification, parse_judge_reply,
    policy_text, CachedVerdict, CircuitBreaker, Classification, LlmApproverConfig, Provider,
    ProviderError, Target, VerdictCache, CLASSIFIER_SYSTEM_PROMPT, JUDGE_SYSTEM_PROMPT,
};
use clawpatrol_core::audit::redact_text;
use clawpatrol_core::config::model::{Approver, AttrValue, Config, Credential};
use clawpatrol_core::inject::{inject_http, InjectError, SecretMaterial};
use clawpatrol_core::Policy;
use clawpatrol_protocols::http::{response_framing, BodyDecoder, Limits, RequestHead};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::Semaphore;

use super::{ApprovalRequest, ApprovalVerdict};
use crate::http::conn::head_bytes;
use crate::http::io::{Io, ReadError, Wire};
use crate::http::upstream::Dialer;
use crate::runtime::Shared;
use crate::secrets::SecretStore;
use crate::tls::UpstreamTls;

/// The `approver_type` of LLM verdicts.
pub const APPROVER_TYPE: &str = "llm_approver";
/// The `User-Agent` of judge requests.
const USER_AGENT: &str = concat!("clawpatrol/", env!("CARGO_PKG_VERSION"));
/// Most bytes of an error response quoted in `llm http <status>: …`.
const MAX_ERROR_BODY: usize = 1024;

/// Bounds of the LLM approver runtime.
#[derive(Debug, Clone)]
pub struct LlmLimits {
    /// Calls in flight per approver; more wait (within their timeout) for a slot.
    pub max_concurrent: usize,
    /// Consecutive provider failures that open an approver's circuit.
    pub breaker_threshold: u32,
    /// How long an open circuit denies without calling the provider.
    pub breaker_cooldown: Duration,
    /// Most verdicts kept in the cache.
    pub cache_capacity: usize,
    /// Largest provider response body read.
    pub max_response_bytes: usize,
}

impl Default for LlmLimits {
    fn default() -> LlmLimits {
        LlmLimits {
            max_concurrent: 8,
            breaker_threshold: clawpatrol_core::approval::breaker::DEFAULT_THRESHOLD,
            breaker_cooldown: clawpatrol_core::approval::breaker::DEFAULT_COOLDOWN,
            cache_capacity: 10_000,
            max_response_bytes: 1024 * 1024,
        }
    }
}

/// Why a judge call denied. Messages are the deny reasons (before redaction).
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The approver, its credential or its secret is unusable (reason text given whole).
    #[error("{0}")]
    Config(String),
    /// The provider could not be reached, or did not answer in time.
    #[error("llm call: {0}")]
    Call(String),
    /// The provider answered with a status other than 200.
    #[error("llm http {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// At most 1024 bytes of the response body.
        body: String,
    },
    /// The provider's 200 response could not be read as its API's format.
    #[error("llm response decode: {0}")]
    Decode(String),
    /// The approver's circuit is open after repeated provider failures.
    #[error("llm approver \"{0}\" circuit open after repeated failures")]
    CircuitOpen(String),
}

impl LlmError {
    /// Whether this failure is the provider's (counts towards the circuit breaker).
    fn is_provider_failure(&self) -> bool {
        matches!(
            self,
            LlmError::Call(_) | LlmError::Status { .. } | LlmError::Decode(_)
        )
    }
}

impl From<ProviderError> for LlmError {
    fn from(e: ProviderError) -> LlmError {
        match e {
            ProviderError::Decode(why) => LlmError::Decode(why),
            other => LlmError::Config(other.to_string()),
        }
    }
}

/// What a judge call needs from the gateway: the policy's config (credentials, defaults),
/// secrets, upstream TLS and the dialer.
#[derive(Clone, Copy)]
pub struct LlmEnv<'a> {
    /// The config of the policy the action was decided under.
    pub config: &'a Config,
    /// Secret lookup.
    pub secrets: &'a SecretStore,
    /// Upstream TLS client configurations (system roots).
    pub upstream_tls: &'a UpstreamTls,
    /// Resolution and connects (with `--connect-to` overrides).
    pub dialer: &'a Dialer,
}

impl<'a> LlmEnv<'a> {
    /// The environment of a running gateway, for an action decided under `policy`.
    pub fn new(shared: &'a Shared, policy: &'a Policy) -> LlmEnv<'a> {
        LlmEnv {
            config: policy.config(),
            secrets: &shared.secrets,
            upstream_tls: &shared.upstream_tls,
            dialer: &shared.dialer,
        }
    }
}

/// Per-approver call state: the concurrency slots and the circuit breaker.
struct Slot {
    permits: Semaphore,
    breaker: Mutex<CircuitBreaker>,
}

/// The LLM approvers' shared state: the verdict cache and, per approver, the concurrency
/// limit and circuit breaker. One per gateway; it lives in `Shared` and survives reloads
/// (cache keys include the policy text and model, so an edited approver asks afresh).
pub struct LlmRuntime {
    limits: LlmLimits,
    cache: Mutex<VerdictCache>,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

impl Default for LlmRuntime {
    fn default() -> LlmRuntime {
        LlmRuntime::new()
    }
}

impl std::fmt::Debug for LlmRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmRuntime")
            .field("limits", &self.limits)
            .field("cached", &lock(&self.cache).len())
            .finish_non_exhaustive()
    }
}

/// The outcome of a successful judge question.
struct Judged {
    allow: bool,
    reason: String,
    cached: bool,
}

impl LlmRuntime {
    /// A runtime with the default limits (8 calls per approver, breaker after 5 failures for
    /// 30 s, 10,000 cached verdicts, 1 MiB responses).
    pub fn new() -> LlmRuntime {
        LlmRuntime::with_limits(LlmLimits::default())
    }

    /// A runtime with the given limits.
    pub fn with_limits(limits: LlmLimits) -> LlmRuntime {
        LlmRuntime {
            cache: Mutex::new(VerdictCache::new(limits.cache_capacity)),
            slots: Mutex::new(HashMap::new()),
            limits,
        }
    }

    /// How many verdicts the cache holds.
    pub fn cached_verdicts(&self) -> usize {
        lock(&self.cache).len()
    }

    /// Asks the `llm_approver` `approver` (of `policy`) about `req`; never fails: every
    /// problem is a deny with its reason.
    pub async fn decide(
        &self,
        shared: &Shared,
        policy: &Policy,
        approver: &Approver,
        req: &ApprovalRequest,
    ) -> ApprovalVerdict {
        self.decide_with(&LlmEnv::new(shared, policy), approver, req)
            .await
    }

    /// [`LlmRuntime::decide`] with an explicit environment (embedding and tests).
    pub async fn decide_with(
        &self,
        env: &LlmEnv<'_>,
        approver: &Approver,
        req: &ApprovalRequest,
    ) -> ApprovalVerdict {
        let model = match approver.attrs.get("model") {
            Some(AttrValue::Str(m)) => m.as_str(),
            _ => "",
        };
        let mut secrets = Vec::new();
        let (allow, reason, cached) = match self.judge(env, approver, req, &mut secrets).await {
            Ok(j) => (j.allow, j.reason, j.cached),
            Err(e) => (false, e.to_string(), false),
        };
        let reason = redact_text(&reason, &secrets);
        if allow {
            tracing::info!(approver = %req.approver, model, cached, reason = %reason, "llm approver allowed");
        } else {
            tracing::info!(approver = %req.approver, model, cached, reason = %reason, "llm approver denied");
        }
        ApprovalVerdict {
            allow,
            reason,
            by: format!("llm:{model}"),
            approver: req.approver.clone(),
            approver_type: APPROVER_TYPE.to_string(),
            cached,
        }
    }

    async fn judge(
        &self,
        env: &LlmEnv<'_>,
        approver: &Approver,
        req: &ApprovalRequest,
        secrets: &mut Vec<String>,
    ) -> Result<Judged, LlmError> {
        let cfg = LlmApproverConfig::from_approver(approver)?;
        let provider = cfg.provider()?;
        let input = req.input();
        let policy = policy_text(cfg.policy.as_deref(), &req.rule_reason);
        let target = provider.target(cfg.base_url.as_ref());
        let url = format!(
            "{}://{}{}",
            if target.tls { "https" } else { "http" },
            target.host_header(),
            target.path
        );
        let typed = format!("{APPROVER_TYPE}.{}", approver.name);
        let key = cache_key(&typed, &cfg.model, &url, policy, &input);
        if let Some(hit) = lock(&self.cache).get(&key, Instant::now()) {
            return Ok(Judged {
                allow: hit.allow,
                reason: hit.reason,
                cached: true,
            });
        }
        let slot = self.slot(&typed);
        if !lock(&slot.breaker).allows(Instant::now()) {
            return Err(LlmError::CircuitOpen(approver.name.clone()));
        }

        let user = judge_user_prompt(policy, &input);
        let text = self
            .call_model(
                env,
                &slot,
                &typed,
                &cfg,
                provider,
                JUDGE_SYSTEM_PROMPT,
                &user,
                secrets,
            )
            .await?;
        let reply = parse_judge_reply(&text);
        let reason = redact_text(&reply.reason, secrets);
        if reply.is_definite() {
            let ttl = Duration::from_secs(env.config.defaults.llm_cache_ttl_secs);
            lock(&self.cache).insert(
                key,
                CachedVerdict {
                    allow: reply.allow,
                    reason: reason.clone(),
                },
                Instant::now(),
                ttl,
            );
        }
        Ok(Judged {
            allow: reply.allow,
            reason,
            cached: false,
        })
    }

    /// Asks the `llm_approver` `approver` for a classification of `req` (classifier mode of
    /// a human approver's card). Never cached; provider failures count towards the circuit
    /// breaker like judge calls. Errors are redacted like verdict reasons.
    pub async fn classify(
        &self,
        env: &LlmEnv<'_>,
        approver: &Approver,
        req: &ApprovalRequest,
    ) -> Result<Classification, String> {
        let mut secrets = Vec::new();
        let result = async {
            let cfg = LlmApproverConfig::from_approver(approver)?;
            let provider = cfg.provider()?;
            let typed = format!("{APPROVER_TYPE}.{}", approver.name);
            let slot = self.slot(&typed);
            if !lock(&slot.breaker).allows(Instant::now()) {
                return Err(LlmError::CircuitOpen(approver.name.clone()));
            }
            let user = classifier_user_prompt(cfg.policy.as_deref(), &req.input());
            let text = self
                .call_model(
                    env,
                    &slot,
                    &typed,
                    &cfg,
                    provider,
                    CLASSIFIER_SYSTEM_PROMPT,
                    &user,
                    &mut secrets,
                )
                .await?;
            parse_classification(&text).map_err(LlmError::Config)
        }
        .await;
        result.map_err(|e| {
            let why = redact_text(&e.to_string(), &secrets);
            tracing::info!(approver = %approver.name, error = %why, "llm classifier failed");
            why
        })
    }

    /// One model call: resolves the credential and its secret, injects it, sends the request
    /// under the approver's concurrency limit and timeout, and returns the model's text.
    /// Provider failures and successes update the approver's circuit breaker. Secrets used
    /// are appended to `secrets` for redaction.
    #[allow(clippy::too_many_arguments)]
    async fn call_model(
        &self,
        env: &LlmEnv<'_>,
        slot: &Slot,
        approver: &str,
        cfg: &LlmApproverConfig,
        provider: Provider,
        system: &str,
        user: &str,
        secrets: &mut Vec<String>,
    ) -> Result<String, LlmError> {
        let target = provider.target(cfg.base_url.as_ref());
        let cred = env
            .config
            .credentials
            .iter()
            .find(|c| c.name == cfg.credential)
            .ok_or_else(|| {
                LlmError::Config(format!("credential `{}` not declared", cfg.credential))
            })?;
        let mut body = provider.request_body(&cfg.model, system, user);
        let mut head = provider.request_head(&target, body.len(), USER_AGENT);
        // A type without HTTP injection is refused before its secret is looked up.
        if let Err(e @ InjectError::Unsupported { .. }) =
            inject_http(cred, &SecretMaterial::default(), &mut head.clone(), None)
        {
            return Err(LlmError::Config(format!("credential inject: {e}")));
        }
        let secret = secret_of(env.secrets, cred)?;
        secrets.extend(secret.redaction_strings());
        let injected = inject_http(cred, &secret, &mut head, Some(&body))
            .map_err(|e| LlmError::Config(format!("credential inject: {e}")))?;
        secrets.extend(injected.secrets_used.iter().cloned());
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        if let Some(new_body) = injected.new_body {
            set_content_length(&mut head, new_body.len());
            body = new_body;
        }

        let timeout = Duration::from_secs(cfg.timeout_secs);
        let call = async {
            let _permit = slot
                .permits
                .acquire()
                .await
                .map_err(|_| LlmError::Call("the approver is shutting down".to_string()))?;
            tracing::debug!(approver, api = provider.name(), host = %target.host, path = %target.path, "calling llm");
            self.exchange(
                env,
                &target,
                &head,
                &body,
                injected.client_cert.as_ref(),
                cfg.ca_cert.as_deref(),
                // The outer timeout below is the one that fires; this only bounds each step.
                timeout + Duration::from_secs(1),
            )
            .await
        };
        let response = match tokio::time::timeout(timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(LlmError::Call(format!(
                "timed out after {}s",
                cfg.timeout_secs
            ))),
        };
        match response.and_then(|b| provider.extract_text(&b).map_err(LlmError::from)) {
            Ok(text) => {
                lock(&slot.breaker).record_success();
                Ok(text)
            }
            Err(e) => {
                if e.is_provider_failure() && lock(&slot.breaker).record_failure(Instant::now()) {
                    tracing::warn!(
                        approver,
                        cooldown_secs = self.limits.breaker_cooldown.as_secs(),
                        error = %redact_text(&e.to_string(), secrets),
                        "llm approver circuit opened after repeated failures"
                    );
                }
                Err(e)
            }
        }
    }

    /// The call state of the approver named `name`.
    fn slot(&self, name: &str) -> Arc<Slot> {
        let mut slots = lock(&self.slots);
        slots
            .entry(name.to_string())
            .or_insert_with(|| {
                Arc::new(Slot {
                    permits: Semaphore::new(self.limits.max_concurrent.max(1)),
                    breaker: Mutex::new(CircuitBreaker::new(
                        self.limits.breaker_threshold,
                        self.limits.breaker_cooldown,
                    )),
                })
            })
            .clone()
    }

    /// Sends one request and returns the 200 response body.
    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &self,
        env: &LlmEnv<'_>,
        target: &Target,
        head: &RequestHead,
        body: &[u8],
        client_cert: Option<&(Vec<u8>, Vec<u8>)>,
        ca_cert: Option<&str>,
        limit: Duration,
    ) -> Result<Vec<u8>, LlmError> {
        let call = |e: &dyn std::fmt::Display| LlmError::Call(e.to_string());
        let io: Box<dyn Io> = if target.tls {
            let cc = client_cert.map(|(c, k)| (c.as_slice(), k.as_slice()));
            let config = env
                .upstream_tls
                .client_config(ca_cert, cc)
                .map_err(|e| call(&e))?;
            Box::new(
                env.dialer
                    .dial_tls(&target.host, target.port, config, limit)
                    .await
                    .map_err(|e| call(&e))?,
            )
        } else {
            Box::new(
                env.dialer
                    .dial(&target.host, target.port)
                    .await
                    .map_err(|e| call(&e))?,
            )
        };
        let mut wire = Wire::new(io, Vec::new());
        let mut out = head_bytes(head);
        out.extend_from_slice(body);
        wire.write_all(&out)
            .await
            .map_err(|e| LlmError::Call(format!("sending the request: {e}")))?;
        wire.io
            .flush()
            .await
            .map_err(|e| LlmError::Call(format!("sending the request: {e}")))?;

        let cap = self.limits.max_response_bytes;
        let limits = Limits {
            body_buffer: cap,
            ..Limits::default()
        };
        let read_err = |e: ReadError| LlmError::Call(format!("reading the response: {e}"));
        let mut resp = wire
            .read_response_head(&limits, limit)
            .await
            .map_err(read_err)?;
        while (100..200).contains(&resp.status) {
            resp = wire
                .read_response_head(&limits, limit)
                .await
                .map_err(read_err)?;
        }
        let framing = response_framing("POST", &resp)
            .map_err(|e| LlmError::Call(format!("reading the response: {e}")))?;
        let mut decoder = BodyDecoder::new(framing, &limits);
        if resp.status != 200 {
            // Best effort: quote what arrives of the body, whatever the framing says.
            let _ = read_body(&mut wire, &mut decoder, MAX_ERROR_BODY, limit).await;
            let bytes = decoder.inspected().bytes();
            let quoted = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_ERROR_BODY)]);
            return Err(LlmError::Status {
                status: resp.status,
                body: quoted.trim_end().to_string(),
            });
        }
        read_body(&mut wire, &mut decoder, cap, limit)
            .await
            .map_err(read_err)?;
        if decoder.inspected().truncated() {
            return Err(LlmError::Decode(format!(
                "response body exceeds {cap} bytes"
            )));
        }
        if let Some(enc) = resp
            .header_values("content-encoding")
            .map(|v| String::from_utf8_lossy(v).trim().to_ascii_lowercase())
            .find(|v| !v.is_empty() && v != "identity")
        {
            return Err(LlmError::Decode(format!(
                "unsupported content-encoding `{enc}`"
            )));
        }
        Ok(decoder.take_inspected().bytes().to_vec())
    }
}

/// Reads the body until it is complete, more than `want` bytes arrived, or the cap is hit.
async fn read_body<S: AsyncRead + AsyncWrite + Unpin>(
    wire: &mut Wire<S>,
    decoder: &mut BodyDecoder,
    want: usize,
    limit: Duration,
) -> Result<(), ReadError> {
    while !decoder.is_done() {
        if wire.buffered().is_empty() && wire.read_more(limit).await? == 0 {
            decoder.finish()?;
            break;
        }
        let progress = decoder.feed(wire.buffered())?;
        wire.consume(progress.consumed);
        let seen = decoder.inspected();
        if seen.truncated() || seen.bytes().len() > want {
            break;
        }
    }
    Ok(())
}

/// The secret of `cred`; `passthrough` needs none.
fn secret_of(secrets: &SecretStore, cred: &Credential) -> Result<SecretMaterial, LlmError> {
    if cred.kind == "passthrough" {
        return Ok(SecretMaterial::default());
    }
    match secrets.get(&cred.name) {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(LlmError::Config(format!(
            "secret fetch: credential `{}` has no secret configured (set {})",
            cred.name,
            SecretStore::variable_name(&cred.name)
        ))),
        Err(e) => Err(LlmError::Config(format!("secret fetch: {e}"))),
    }
}

/// Replaces the framing headers with `Content-Length: n`.
fn set_content_length(head: &mut RequestHead, n: usize) {
    head.headers.retain(|(name, _)| {
        !name.eq_ignore_ascii_case("content-length")
            && !name.eq_ignore_ascii_case("transfer-encoding")
    });
    head.headers
        .push(("Content-Length".to_string(), n.to_string().into_bytes()));
}

/// Locks `m`, recovering the data of a poisoned lock (the state stays consistent: every
/// critical section is a single map or counter update).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
#[path = "llm_tests.rs"]
mod tests;
