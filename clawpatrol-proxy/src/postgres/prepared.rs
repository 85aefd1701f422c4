//! Which prepared statements of a session were prepared under the policy in force, so that
//! after a policy reload a Bind runs only statements prepared since (DESIGN §3: open SQL
//! sessions see the new policy at their next statement).
//!
//! A statement prepared before a reload is refused at Bind ("prepare it again") instead of
//! being decided again from its text: the text the server holds under a name can be replaced
//! in ways the gateway cannot see (SQL `DEALLOCATE` + `PREPARE`, or the same from inside a
//! function), so only a statement the server confirmed as prepared by a `Parse` the gateway
//! allowed under the current policy is known to be safe. Confirmation: the server answers the
//! Parse and Close messages of a batch in order (ParseComplete, CloseComplete) and skips the
//! rest of the batch after an error, so each success matches the oldest unanswered Parse or
//! Close.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use clawpatrol_core::Policy;

/// Most statements a session keeps track of; beyond it, new ones are refused after a reload.
pub const MAX_STATEMENTS: usize = 4096;
/// Most Parse/Close messages a session may have unanswered.
pub const MAX_OPS: usize = 16 * 1024;
/// Longest statement name tracked, in bytes. The server cuts names to NAMEDATALEN − 1 (63)
/// bytes, so longer names can collide there while differing here; they are never tracked.
pub const MAX_NAME: usize = 62;

/// A Parse or Close forwarded upstream and not answered yet.
#[derive(Debug)]
pub enum Op {
    /// A Parse: the statement name (`None` when too long to track) and the policy that
    /// allowed it.
    Parse {
        /// Statement name (empty: the unnamed statement).
        name: Option<String>,
        /// The policy that allowed it.
        policy: Arc<Policy>,
    },
    /// A Close of a tracked statement (`Some(name)`), or of a portal or an untracked name.
    Close(Option<String>),
}

/// The prepared statements of one session, as far as the gateway can tell.
#[derive(Debug)]
pub struct Prepared {
    /// The policy in force when the session started.
    start: Arc<Policy>,
    /// Statements the server confirmed, with the policy that allowed their Parse.
    known: HashMap<String, Arc<Policy>>,
    /// Parses and Closes of the batch being read (up to its Sync).
    batch: VecDeque<Op>,
    /// Unanswered operations, in this batch and in owed answers.
    pending: usize,
    /// The gateway once lost track of the server's answers: no answer confirms a statement
    /// for the rest of the session, since answers may be matched to the wrong operation.
    untrusted: bool,
}

/// A name the gateway can track (`None`: too long).
fn tracked(name: &str) -> Option<String> {
    (name.len() <= MAX_NAME).then(|| name.to_string())
}

impl Prepared {
    /// Tracking for a session that started under `start`.
    pub fn new(start: Arc<Policy>) -> Prepared {
        Prepared {
            start,
            known: HashMap::new(),
            batch: VecDeque::new(),
            pending: 0,
            untrusted: false,
        }
    }

    /// A Parse was forwarded, allowed by `policy`; false when too many are unanswered.
    pub fn parse_forwarded(&mut self, name: &str, policy: &Arc<Policy>) -> bool {
        self.push(Op::Parse {
            name: tracked(name),
            policy: Arc::clone(policy),
        })
    }

    /// A Close was forwarded (`statement`: the statement's name; `None` for a portal); false
    /// when too many are unanswered.
    pub fn close_forwarded(&mut self, statement: Option<&str>) -> bool {
        // `None` (closes nothing tracked) for a portal or an untracked name: the server cuts a
        // long name to 63 bytes, which no tracked name (at most 62) equals.
        self.push(Op::Close(statement.and_then(tracked)))
    }

    fn push(&mut self, op: Op) -> bool {
        if self.pending >= MAX_OPS {
            return false;
        }
        self.pending += 1;
        self.batch.push_back(op);
        true
    }

    /// The batch's Sync was forwarded: its unanswered operations, for the owed answer.
    pub fn take_batch(&mut self) -> VecDeque<Op> {
        std::mem::take(&mut self.batch)
    }

    /// Operations whose answers will never come (the server skipped or refused them).
    pub fn drop_ops(&mut self, ops: VecDeque<Op>) {
        self.pending = self.pending.saturating_sub(ops.len());
    }

    /// The operations answers go to when no upstream answer is owed: the current batch (its
    /// messages are answered before its Sync after a Flush).
    pub fn batch_ops(&mut self) -> &mut VecDeque<Op> {
        &mut self.batch
    }

    /// The server confirmed the oldest unanswered operation of `ops` (a ParseComplete when
    /// `parse`, else a CloseComplete).
    pub fn complete(&mut self, parse: bool, ops: &mut VecDeque<Op>) {
        let op = ops.pop_front();
        if op.is_some() {
            self.pending = self.pending.saturating_sub(1);
        }
        match op {
            Some(Op::Parse { name, .. }) if parse && self.untrusted => {
                if let Some(name) = name {
                    self.known.remove(&name);
                }
            }
            Some(Op::Parse { name, policy }) if parse => {
                if let Some(name) = name {
                    if self.known.len() < MAX_STATEMENTS || self.known.contains_key(&name) {
                        self.known.insert(name, policy);
                    } else {
                        self.known.remove(&name);
                    }
                }
            }
            Some(Op::Close(statement)) if !parse => {
                if let Some(name) = statement {
                    self.known.remove(&name);
                }
            }
            _ => self.lost("an upstream Parse/Close answer matched nothing the gateway sent"),
        }
    }

    /// The gateway lost track of the server's answers: every statement becomes unknown, and
    /// stays so for the rest of the session (after a reload a Bind is forwarded only in the
    /// batch whose Parse prepared its statement).
    pub fn lost(&mut self, why: &str) {
        if !self.untrusted {
            tracing::warn!(
                why,
                "postgres: prepared statements are no longer tracked; after a reload they must be prepared again in the batch that binds them"
            );
        }
        self.untrusted = true;
        self.known.clear();
    }

    /// True while the policy the session started with is in force (no reload since): every
    /// statement was decided under it.
    pub fn no_reload_since_start(&self, current: &Arc<Policy>) -> bool {
        Arc::ptr_eq(&self.start, current)
    }

    /// True when a Bind of `name` may be forwarded under `current`: no reload since the
    /// session started, or the statement was prepared (and, unless in this same batch,
    /// confirmed) under `current`, with no unanswered Parse of it under an older policy.
    /// `in_flight`: the unanswered operations of earlier batches.
    pub fn bind_allowed<'a>(
        &self,
        name: &str,
        current: &Arc<Policy>,
        mut in_flight: impl Iterator<Item = &'a Op>,
    ) -> bool {
        if self.no_reload_since_start(current) {
            return true;
        }
        if name.len() > MAX_NAME {
            return false;
        }
        let older = |op: &Op| matches!(op, Op::Parse { name: Some(n), policy } if n == name && !Arc::ptr_eq(policy, current));
        if in_flight.any(older) || self.batch.iter().any(older) {
            return false;
        }
        // In the same batch, the latest Parse or Close of the name decides: if it failed,
        // the server skips the Bind too.
        let latest = self.batch.iter().rev().find(|op| match op {
            Op::Parse { name: Some(n), .. } | Op::Close(Some(n)) => n == name,
            _ => false,
        });
        match latest {
            // Allowed under `current` (older ones were refused above).
            Some(Op::Parse { .. }) => true,
            // Closed, or the batch failed before: the server refuses the Bind.
            Some(Op::Close(_)) => true,
            None => self
                .known
                .get(name)
                .is_some_and(|p| Arc::ptr_eq(p, current)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Arc<Policy> {
        Arc::new(Policy::from_source("t.hcl", "schema_version = 1\n").unwrap())
    }

    /// Forwards a Parse, ends the batch and confirms it.
    fn confirmed(p: &mut Prepared, name: &str, policy: &Arc<Policy>) {
        assert!(p.parse_forwarded(name, policy));
        let mut ops = p.take_batch();
        p.complete(true, &mut ops);
        p.drop_ops(ops);
    }

    #[test]
    fn statements_prepared_before_a_reload_are_refused_after_it() {
        let (old, new) = (policy(), policy());
        let mut p = Prepared::new(old.clone());
        confirmed(&mut p, "s1", &old);
        assert!(p.bind_allowed("s1", &old, [].iter()));
        assert!(p.bind_allowed("unknown", &old, [].iter()));
        assert!(!p.bind_allowed("s1", &new, [].iter()));
        assert!(!p.bind_allowed("unknown", &new, [].iter()));
        // Prepared again (after a Close) under the new policy: allowed.
        assert!(p.close_forwarded(Some("s1")));
        let mut ops = p.take_batch();
        p.complete(false, &mut ops);
        confirmed(&mut p, "s1", &new);
        assert!(p.bind_allowed("s1", &new, [].iter()));
        assert_eq!(p.pending, 0);
    }

    #[test]
    fn a_parse_the_server_refused_confirms_nothing() {
        // s1 exists from before the reload; a new Parse of s1 fails upstream (duplicate
        // name), so the old statement is still what s1 runs.
        let (old, new) = (policy(), policy());
        let mut p = Prepared::new(old.clone());
        confirmed(&mut p, "s1", &old);
        assert!(p.parse_forwarded("s1", &new));
        let in_flight = p.take_batch();
        assert!(!p.bind_allowed("s1", &new, in_flight.iter()));
        p.drop_ops(in_flight);
        assert!(!p.bind_allowed("s1", &new, [].iter()));
    }

    #[test]
    fn the_same_batch_parse_decides_unless_an_older_one_is_unanswered() {
        let (old, new) = (policy(), policy());
        let mut p = Prepared::new(old.clone());
        assert!(p.parse_forwarded("s1", &new));
        assert!(p.bind_allowed("s1", &new, [].iter()));
        let mut q = Prepared::new(old.clone());
        assert!(q.parse_forwarded("s1", &old));
        assert!(q.parse_forwarded("s1", &new));
        assert!(!q.bind_allowed("s1", &new, [].iter()));
    }

    #[test]
    fn long_names_are_never_tracked() {
        let (old, new) = (policy(), policy());
        let mut p = Prepared::new(old.clone());
        let long = "a".repeat(MAX_NAME + 1);
        confirmed(&mut p, &long, &new);
        assert!(!p.bind_allowed(&long, &new, [].iter()));
        assert!(p.bind_allowed(&long, &old, [].iter()));
    }

    #[test]
    fn mismatched_answers_forget_everything() {
        let (old, new) = (policy(), policy());
        let mut p = Prepared::new(old.clone());
        confirmed(&mut p, "s1", &new);
        assert!(p.close_forwarded(None));
        let mut ops = p.take_batch();
        p.complete(true, &mut ops);
        assert!(!p.bind_allowed("s1", &new, [].iter()));
    }

    #[test]
    fn unanswered_operations_are_bounded() {
        let old = policy();
        let mut p = Prepared::new(old.clone());
        for _ in 0..MAX_OPS {
            assert!(p.parse_forwarded("s", &old));
        }
        assert!(!p.parse_forwarded("s", &old));
        assert!(!p.close_forwarded(Some("s")));
        let ops = p.take_batch();
        p.drop_ops(ops);
        assert!(p.parse_forwarded("s", &old));
    }
}
