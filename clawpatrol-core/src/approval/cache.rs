//! The LLM verdict cache (our addition; the original documented one and never built it).
//!
//! The key is the hex SHA-256 of the approver's name, the model, where the judge is called,
//! the policy text the judge reads, and a canonical JSON (sorted keys) of what the judge is
//! shown: endpoint, host, method, path, user-agent, body sample, and the action's facts
//! without its header map, credential name and agent address (the judge never sees those;
//! request ids in headers would otherwise defeat the cache). Nothing is truncated before
//! hashing. The map is bounded, expires entries after a TTL and evicts the least recently
//! used entry when full. The caller passes the time: core reads no clock.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::ApprovalInput;

/// Version tag of the key derivation; bump it when the prompt changes meaning.
const KEY_VERSION: &[u8] = b"clawpatrol/llm-verdict/v1";

/// The cache key of one judge question (hex SHA-256).
pub fn cache_key(
    approver: &str,
    model: &str,
    judge_url: &str,
    policy: &str,
    input: &ApprovalInput<'_>,
) -> String {
    let mut h = Sha256::new();
    let mut part = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    part(KEY_VERSION);
    part(approver.as_bytes());
    part(model.as_bytes());
    part(judge_url.as_bytes());
    part(policy.as_bytes());
    part(canonical_facts(input).as_bytes());
    hex::encode(h.finalize())
}

/// The canonical JSON of what the judge is shown (see the module docs).
pub fn canonical_facts(input: &ApprovalInput<'_>) -> String {
    let mut action = Value::from(input.action);
    if let Value::Object(m) = &mut action {
        m.remove("peer_ip");
        m.remove("credential");
        if let Some(Value::Object(http)) = m.get_mut("http") {
            http.remove("headers");
        }
    }
    let mut shown = serde_json::Map::new();
    shown.insert("action".into(), action);
    shown.insert("endpoint".into(), input.endpoint.into());
    shown.insert("host".into(), input.host.into());
    shown.insert("method".into(), input.method.into());
    shown.insert("path".into(), input.path.into());
    shown.insert(
        "user_agent".into(),
        input.user_agent.map_or(Value::Null, Value::from),
    );
    shown.insert("body".into(), input.body_sample.into());
    let mut out = String::new();
    write_canonical(&Value::Object(shown), &mut out);
    out
}

/// JSON with object keys sorted at every level, no whitespace.
fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, &Value> = m.iter().collect();
            out.push('{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(k.as_str()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// A cached judge verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedVerdict {
    /// Whether the judge allowed.
    pub allow: bool,
    /// The judge's reason.
    pub reason: String,
}

#[derive(Debug)]
struct Entry {
    verdict: CachedVerdict,
    expires: Instant,
    /// Recency stamp: the key of this entry in `VerdictCache::recency`.
    used: u64,
}

/// A bounded TTL map of judge verdicts with least-recently-used eviction.
#[derive(Debug)]
pub struct VerdictCache {
    capacity: usize,
    entries: HashMap<String, Entry>,
    /// Recency stamp → key, oldest first.
    recency: BTreeMap<u64, String>,
    clock: u64,
}

impl VerdictCache {
    /// An empty cache holding at most `capacity` verdicts (0 disables caching).
    pub fn new(capacity: usize) -> VerdictCache {
        VerdictCache {
            capacity,
            entries: HashMap::new(),
            recency: BTreeMap::new(),
            clock: 0,
        }
    }

    /// How many verdicts are held (expired ones included until touched or evicted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The verdict under `key` if it has not expired at `now`; marks it recently used.
    pub fn get(&mut self, key: &str, now: Instant) -> Option<CachedVerdict> {
        let expired = now >= self.entries.get(key)?.expires;
        if expired {
            self.remove(key);
            return None;
        }
        let stamp = self.tick();
        let e = self.entries.get_mut(key)?;
        self.recency.remove(&e.used);
        e.used = stamp;
        self.recency.insert(stamp, key.to_string());
        Some(e.verdict.clone())
    }

    /// Stores `verdict` under `key` until `now + ttl`; a zero TTL or capacity stores nothing.
    pub fn insert(&mut self, key: String, verdict: CachedVerdict, now: Instant, ttl: Duration) {
        if self.capacity == 0 || ttl.is_zero() {
            return;
        }
        let Some(expires) = now.checked_add(ttl) else {
            return;
        };
        self.remove(&key);
        while self.entries.len() >= self.capacity {
            if !self.evict_oldest() {
                break;
            }
        }
        let used = self.tick();
        self.recency.insert(used, key.clone());
        self.entries.insert(
            key,
            Entry {
                verdict,
                expires,
                used,
            },
        );
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.recency.clear();
    }

    /// Evicts the least recently used entry; `false` when empty.
    fn evict_oldest(&mut self) -> bool {
        match self.recency.pop_first() {
            Some((_, key)) => {
                self.entries.remove(&key);
                true
            }
            None => false,
        }
    }

    fn remove(&mut self, key: &str) {
        if let Some(e) = self.entries.remove(key) {
            self.recency.remove(&e.used);
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{Action, Facts, HttpFacts, SqlFacts};

    fn v(allow: bool) -> CachedVerdict {
        CachedVerdict {
            allow,
            reason: if allow { "ok" } else { "no" }.into(),
        }
    }

    fn input<'a>(action: &'a Action, host: &'a str) -> ApprovalInput<'a> {
        ApprovalInput {
            approver: "llm_approver.judge",
            endpoint: "https.api",
            rule: Some("r"),
            rule_reason: "",
            action,
            profile: Some("dev"),
            agent_ip: "10.0.0.1",
            method: "POST",
            host,
            path: "/x",
            user_agent: Some("curl"),
            body_sample: "{}",
        }
    }

    fn http(headers: &[(&str, &str)], peer: &str) -> Action {
        let h = headers
            .iter()
            .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
            .collect();
        let mut a = Action::new(Facts::Http(HttpFacts::new(
            "POST",
            "/x",
            Default::default(),
            h,
            b"{}".to_vec(),
        )));
        a.peer_ip = peer.into();
        a
    }

    #[test]
    fn key_ignores_headers_and_peer_but_not_host_or_policy() {
        let a = http(&[("X-Request-Id", "1")], "10.0.0.1");
        let b = http(&[("X-Request-Id", "2")], "10.0.0.2");
        let k = |a: &Action, host: &str, policy: &str| {
            cache_key("llm_approver.judge", "m", "", policy, &input(a, host))
        };
        assert_eq!(k(&a, "h", "p"), k(&b, "h", "p"));
        assert_ne!(k(&a, "h", "p"), k(&a, "h2", "p"));
        assert_ne!(k(&a, "h", "p"), k(&a, "h", "p2"));
        assert_ne!(
            k(&a, "h", "p"),
            cache_key("llm_approver.judge", "m2", "", "p", &input(&a, "h"))
        );
        assert_eq!(k(&a, "h", "p").len(), 64);
        let mut ep = input(&a, "h");
        ep.endpoint = "https.other";
        assert_ne!(
            k(&a, "h", "p"),
            cache_key("llm_approver.judge", "m", "", "p", &ep)
        );
    }

    #[test]
    fn key_covers_sql_facts_and_flags() {
        let s = |stmt: &str, truncated: bool| {
            let mut a = Action::new(Facts::Sql(SqlFacts {
                statement: stmt.into(),
                verb: "select".into(),
                ..Default::default()
            }));
            a.truncated = truncated;
            a
        };
        let (a, b, c) = (
            s("select 1", false),
            s("select 2", false),
            s("select 1", true),
        );
        let k = |a: &Action| cache_key("j", "m", "", "p", &input(a, "db"));
        assert_ne!(k(&a), k(&b));
        assert_ne!(k(&a), k(&c));
        assert_eq!(k(&a), k(&s("select 1", false)));
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let a = http(&[], "");
        let c = canonical_facts(&input(&a, "h"));
        assert_eq!(
            c,
            "{\"action\":{\"http\":{\"body\":\"{}\",\"method\":\"post\",\"path\":\"/x\"}},\
             \"body\":\"{}\",\"endpoint\":\"https.api\",\"host\":\"h\",\"method\":\"POST\",\
             \"path\":\"/x\",\"user_agent\":\"curl\"}"
        );
    }

    #[test]
    fn ttl_expiry() {
        let t0 = Instant::now();
        let mut c = VerdictCache::new(10);
        c.insert("a".into(), v(true), t0, Duration::from_secs(60));
        assert_eq!(c.get("a", t0 + Duration::from_secs(59)), Some(v(true)));
        assert_eq!(c.get("a", t0 + Duration::from_secs(60)), None);
        assert!(c.is_empty());
        c.insert("b".into(), v(true), t0, Duration::ZERO);
        assert!(c.is_empty());
    }

    #[test]
    fn lru_eviction_when_full() {
        let t0 = Instant::now();
        let ttl = Duration::from_secs(60);
        let mut c = VerdictCache::new(2);
        c.insert("a".into(), v(true), t0, ttl);
        c.insert("b".into(), v(false), t0, ttl);
        assert!(c.get("a", t0).is_some());
        c.insert("c".into(), v(true), t0, ttl);
        assert_eq!(c.len(), 2);
        assert!(c.get("b", t0).is_none());
        assert!(c.get("a", t0).is_some());
        assert!(c.get("c", t0).is_some());
        // Re-inserting a key replaces it without evicting another.
        c.insert("c".into(), v(false), t0, ttl);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("c", t0), Some(v(false)));
        c.clear();
        assert!(c.is_empty());
        let mut off = VerdictCache::new(0);
        off.insert("a".into(), v(true), t0, ttl);
        assert!(off.is_empty());
    }
}
