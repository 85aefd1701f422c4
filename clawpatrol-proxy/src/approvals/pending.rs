//! The queue of actions waiting for a human decision (reference §5.3).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;
use tokio::sync::oneshot;

use super::request::ApprovalRequest;

/// A human decision on a pending action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HumanDecision {
    /// Approve or deny.
    pub allow: bool,
    /// Who decided (operator name).
    pub by: String,
    /// Optional reason (a deny reason reaches the agent).
    pub reason: String,
}

/// What operators see of a pending action.
#[derive(Debug, Clone, Serialize)]
pub struct PendingView {
    /// The pending id.
    pub id: u64,
    /// The approver waiting (typed name).
    pub approver: String,
    /// Endpoint typed name.
    pub endpoint: String,
    /// The rule that asked for approval.
    pub rule: Option<String>,
    /// The rule's reason.
    pub reason: String,
    /// The agent's profile.
    pub profile: Option<String>,
    /// The agent's address.
    pub agent_ip: String,
    /// Method / verb.
    pub method: String,
    /// Host.
    pub host: String,
    /// Path / summary.
    pub path: String,
    /// The action's facts in fixture form (redacted).
    pub action: serde_json::Value,
    /// The `message` template of the approver, expanded (empty when none).
    pub message: String,
    /// Unix seconds when it was parked.
    pub created_at: u64,
    /// Unix seconds when it times out.
    pub expires_at: u64,
}

/// Why a decision could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    /// No pending action has that id (decided already, timed out, or never existed).
    #[error("no pending approval `{0}` (already decided, timed out or cancelled)")]
    NotFound(u64),
}

struct Entry {
    view: PendingView,
    tx: oneshot::Sender<HumanDecision>,
}

/// Pending approvals, keyed by id. The first decision wins: it removes the entry.
#[derive(Default)]
pub struct PendingPool {
    next: AtomicU64,
    entries: Mutex<BTreeMap<u64, Entry>>,
}

/// Removes its entry when dropped (timeout, client disconnect, cancellation).
pub struct Parked<'a> {
    pool: &'a PendingPool,
    /// The pending id.
    pub id: u64,
    /// Resolves with the decision.
    pub rx: oneshot::Receiver<HumanDecision>,
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.pool.remove(self.id);
    }
}

impl PendingPool {
    /// An empty pool.
    pub fn new() -> PendingPool {
        PendingPool {
            next: AtomicU64::new(1),
            entries: Mutex::new(BTreeMap::new()),
        }
    }

    /// Parks an action; the returned guard removes it when dropped.
    pub fn park(
        &self,
        req: &ApprovalRequest,
        message: String,
        created_at: u64,
        expires_at: u64,
    ) -> Parked<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let view = PendingView {
            id,
            approver: req.approver.clone(),
            endpoint: req.endpoint.clone(),
            rule: req.rule.clone(),
            reason: req.rule_reason.clone(),
            profile: req.profile.clone(),
            agent_ip: req.agent_ip.clone(),
            method: req.method.clone(),
            host: req.host.clone(),
            path: req.path.clone(),
            action: serde_json::to_value(&req.action).unwrap_or_default(),
            message,
            created_at,
            expires_at,
        };
        if let Ok(mut e) = self.entries.lock() {
            e.insert(id, Entry { view, tx });
        }
        Parked { pool: self, id, rx }
    }

    /// Applies a decision; the first one wins.
    pub fn decide(&self, id: u64, decision: HumanDecision) -> Result<PendingView, DecideError> {
        let entry = self
            .entries
            .lock()
            .ok()
            .and_then(|mut e| e.remove(&id))
            .ok_or(DecideError::NotFound(id))?;
        // The waiter may have gone in the same instant; the decision is then moot.
        let _ = entry.tx.send(decision);
        Ok(entry.view)
    }

    /// Every pending action, oldest first.
    pub fn list(&self) -> Vec<PendingView> {
        self.entries
            .lock()
            .map(|e| e.values().map(|x| x.view.clone()).collect())
            .unwrap_or_default()
    }

    /// One pending action.
    pub fn get(&self, id: u64) -> Option<PendingView> {
        self.entries
            .lock()
            .ok()
            .and_then(|e| e.get(&id).map(|x| x.view.clone()))
    }

    fn remove(&self, id: u64) {
        if let Ok(mut e) = self.entries.lock() {
            e.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clawpatrol_core::{Action, Facts};

    fn req() -> ApprovalRequest {
        ApprovalRequest {
            approver: "human_approver.ops".into(),
            endpoint: "https.api".into(),
            rule: Some("merge".into()),
            rule_reason: "merges need a human".into(),
            action: Action::new(Facts::Http(Default::default())),
            profile: Some("dev".into()),
            agent_ip: "127.0.0.1".into(),
            method: "PUT".into(),
            host: "api.test".into(),
            path: "/merge".into(),
            user_agent: None,
            body_sample: String::new(),
        }
    }

    #[tokio::test]
    async fn first_decision_wins_and_drop_removes() {
        let pool = PendingPool::new();
        let mut parked = pool.park(&req(), String::new(), 0, 10);
        assert_eq!(pool.list().len(), 1);
        let yes = HumanDecision {
            allow: true,
            by: "alice".into(),
            reason: String::new(),
        };
        pool.decide(parked.id, yes.clone()).unwrap();
        assert!(matches!(
            pool.decide(parked.id, yes.clone()),
            Err(DecideError::NotFound(_))
        ));
        assert_eq!((&mut parked.rx).await.unwrap(), yes);
        let parked = pool.park(&req(), String::new(), 0, 10);
        let id = parked.id;
        drop(parked);
        assert!(pool.get(id).is_none());
    }
}
