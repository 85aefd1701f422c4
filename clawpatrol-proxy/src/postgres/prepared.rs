//! Which SQL text each prepared statement of a session holds, so that a Bind after a policy
//! reload re-decides its statement under the new policy (DESIGN §3: open SQL sessions see the
//! new policy at their next statement).
//!
//! The text of a statement is known from the Parse the gateway forwarded, but only once the
//! server confirms it: the server answers the Parse and Close messages of a batch in order
//! (ParseComplete, CloseComplete) and skips the rest of the batch after an error, so each
//! success matches the oldest unanswered Parse or Close. Anything the gateway cannot follow
//! (SQL-level `PREPARE`, `DEALLOCATE`, `DISCARD`, an answer it cannot match, more statements
//! than it keeps) makes the affected names unknown; a Bind of an unknown name is forwarded
//! only while the session still runs on the policy it started with, and denied after a
//! reload (fail closed).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use clawpatrol_core::Policy;

/// Most statements whose text a session keeps.
pub const MAX_STATEMENTS: usize = 4096;
/// Most bytes of statement text a session keeps, confirmed and unanswered together.
pub const MAX_TEXT_BYTES: usize = 8 << 20;

/// A Parse or Close forwarded upstream and not answered yet.
#[derive(Debug)]
pub enum Op {
    /// A Parse: the statement name, its text (`None` when over [`MAX_TEXT_BYTES`]) and the
    /// policy that decided it.
    Parse {
        /// Statement name (empty: the unnamed statement).
        name: String,
        /// The SQL text, unless it was not kept.
        sql: Option<String>,
        /// The policy that allowed it.
        policy: Arc<Policy>,
    },
    /// A Close of a statement (`Some(name)`) or of a portal (`None`).
    Close(Option<String>),
}

impl Op {
    fn text_len(&self) -> usize {
        match self {
            Op::Parse { sql: Some(s), .. } => s.len(),
            _ => 0,
        }
    }
}

/// A statement the server confirmed.
#[derive(Debug)]
struct Known {
    sql: String,
    policy: Arc<Policy>,
    /// When it was confirmed, in [`Prepared::seq`] order.
    seq: u64,
}

/// What to do with a Bind.
#[derive(Debug, PartialEq, Eq)]
pub enum BindCheck {
    /// Every text the statement may hold was decided under the policy in force.
    Forward,
    /// Decide these texts under the policy in force first (the statement is any of them).
    Redecide(Vec<String>),
    /// The statement may predate a reload and its text is not known: deny.
    Unknown,
}

/// The prepared statements of one session, as far as the gateway can tell.
#[derive(Debug)]
pub struct Prepared {
    /// The policy in force when the session started.
    start: Arc<Policy>,
    known: HashMap<String, Known>,
    /// Bytes of text in `known` and in unanswered Parses.
    bytes: usize,
    seq: u64,
    /// Statements confirmed at or before this `seq` may have been replaced by something the
    /// gateway did not follow.
    untracked_at: u64,
    /// Parses and Closes of the batch being read (up to its Sync).
    batch: VecDeque<Op>,
}

impl Prepared {
    /// Tracking for a session that started under `start`.
    pub fn new(start: Arc<Policy>) -> Prepared {
        Prepared {
            start,
            known: HashMap::new(),
            bytes: 0,
            seq: 1,
            untracked_at: 0,
            batch: VecDeque::new(),
        }
    }

    /// A Parse was forwarded, allowed by `policy`.
    pub fn parse_forwarded(&mut self, name: &str, sql: &str, policy: &Arc<Policy>) {
        let sql = (self.bytes + sql.len() <= MAX_TEXT_BYTES).then(|| sql.to_string());
        self.bytes += sql.as_ref().map_or(0, String::len);
        self.batch.push_back(Op::Parse {
            name: name.to_string(),
            sql,
            policy: Arc::clone(policy),
        });
    }

    /// A Close was forwarded (`statement`: the statement's name; `None` for a portal).
    pub fn close_forwarded(&mut self, statement: Option<&str>) {
        self.batch
            .push_back(Op::Close(statement.map(str::to_string)));
    }

    /// The batch's Sync was forwarded: its unanswered operations, for the owed answer.
    pub fn take_batch(&mut self) -> VecDeque<Op> {
        std::mem::take(&mut self.batch)
    }

    /// Operations whose answers will never be matched (the server skipped them, or the
    /// gateway stopped following them); their text no longer counts.
    pub fn drop_ops(&mut self, ops: VecDeque<Op>) {
        for op in ops {
            self.bytes = self.bytes.saturating_sub(op.text_len());
        }
    }

    /// The operations answers go to when no upstream answer is owed: the current batch (its
    /// messages are answered before its Sync after a Flush).
    pub fn batch_ops(&mut self) -> &mut VecDeque<Op> {
        &mut self.batch
    }

    /// The server confirmed the oldest unanswered operation of `ops` (a ParseComplete when
    /// `parse`, else a CloseComplete).
    pub fn complete(&mut self, parse: bool, ops: &mut VecDeque<Op>) {
        match ops.pop_front() {
            Some(Op::Parse { name, sql, policy }) if parse => {
                let len = sql.as_ref().map_or(0, String::len);
                self.forget(&name);
                match sql {
                    Some(sql) if self.known.len() < MAX_STATEMENTS => {
                        // Its bytes move from the unanswered Parse to `known`.
                        let seq = self.seq;
                        self.seq += 1;
                        self.known.insert(name, Known { sql, policy, seq });
                    }
                    // Not kept: the name now holds a text the gateway does not know.
                    _ => self.bytes = self.bytes.saturating_sub(len),
                }
            }
            Some(Op::Close(statement)) if !parse => {
                if let Some(name) = statement {
                    self.forget(&name);
                }
            }
            other => {
                if let Some(op) = other {
                    self.bytes = self.bytes.saturating_sub(op.text_len());
                }
                tracing::warn!(
                    "postgres: an upstream Parse/Close answer matched nothing the gateway sent; prepared statements become unknown"
                );
                self.untracked();
            }
        }
    }

    /// Something the gateway does not follow may have created, replaced or removed prepared
    /// statements (SQL-level PREPARE, DEALLOCATE, DISCARD, an unmatched answer).
    pub fn untracked(&mut self) {
        self.untracked_at = self.seq;
        self.seq += 1;
    }

    /// What to do with a Bind of `name` under `current`; `in_flight` are the unanswered
    /// operations of earlier batches, oldest first.
    pub fn check_bind<'a>(
        &self,
        name: &str,
        current: &Arc<Policy>,
        in_flight: impl Iterator<Item = &'a Op>,
    ) -> BindCheck {
        // In the same batch, the latest Parse or Close of the name decides alone: if it
        // failed, the server skips the Bind too.
        if let Some(op) = self.batch.iter().rev().find(|op| touches(op, name)) {
            return match op {
                Op::Parse {
                    sql: Some(sql),
                    policy,
                    ..
                } => {
                    if Arc::ptr_eq(policy, current) {
                        BindCheck::Forward
                    } else {
                        BindCheck::Redecide(vec![sql.clone()])
                    }
                }
                Op::Parse { sql: None, .. } => self.unknown(current),
                // Closed (or the batch failed before): the server refuses the Bind.
                Op::Close(_) => BindCheck::Forward,
            };
        }
        let mut texts = Vec::new();
        // A Parse of an earlier batch still unanswered may yet replace the statement.
        for op in in_flight {
            if let Op::Parse {
                name: n,
                sql,
                policy,
            } = op
            {
                if n == name && !Arc::ptr_eq(policy, current) {
                    match sql {
                        Some(sql) => texts.push(sql.clone()),
                        None => return BindCheck::Unknown,
                    }
                }
            }
        }
        match self.known.get(name).filter(|k| k.seq > self.untracked_at) {
            Some(k) => {
                if !Arc::ptr_eq(&k.policy, current) {
                    texts.push(k.sql.clone());
                }
            }
            None => {
                if self.unknown(current) == BindCheck::Unknown {
                    return BindCheck::Unknown;
                }
            }
        }
        if texts.is_empty() {
            BindCheck::Forward
        } else {
            BindCheck::Redecide(texts)
        }
    }

    /// The texts a Bind of `name` may run were allowed under `current`: later Binds need no
    /// new decision until the next reload.
    pub fn redecided(&mut self, name: &str, current: &Arc<Policy>) {
        if let Some(k) = self.known.get_mut(name) {
            k.policy = Arc::clone(current);
        }
        for op in self.batch.iter_mut() {
            if let Op::Parse {
                name: n, policy, ..
            } = op
            {
                if n == name {
                    *policy = Arc::clone(current);
                }
            }
        }
    }

    /// True while the policy the session started with is in force (no reload since): every
    /// statement was decided under it.
    pub fn no_reload_since_start(&self, current: &Arc<Policy>) -> bool {
        Arc::ptr_eq(&self.start, current)
    }

    /// A statement whose text is unknown: fine while the session's first policy is in force.
    fn unknown(&self, current: &Arc<Policy>) -> BindCheck {
        if self.no_reload_since_start(current) {
            BindCheck::Forward
        } else {
            BindCheck::Unknown
        }
    }

    fn forget(&mut self, name: &str) {
        if let Some(k) = self.known.remove(name) {
            self.bytes = self.bytes.saturating_sub(k.sql.len());
        }
    }
}

fn touches(op: &Op, name: &str) -> bool {
    match op {
        Op::Parse { name: n, .. } => n == name,
        Op::Close(Some(n)) => n == name,
        Op::Close(None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Arc<Policy> {
        Arc::new(Policy::from_source("t.hcl", "schema_version = 1\n").unwrap())
    }

    fn redecide(texts: &[&str]) -> BindCheck {
        BindCheck::Redecide(texts.iter().map(|s| s.to_string()).collect())
    }

    /// Forwards a Parse, ends the batch and confirms it.
    fn confirmed(p: &mut Prepared, name: &str, sql: &str, policy: &Arc<Policy>) {
        p.parse_forwarded(name, sql, policy);
        let mut ops = p.take_batch();
        p.complete(true, &mut ops);
        p.drop_ops(ops);
    }

    #[test]
    fn a_confirmed_statement_is_redecided_only_after_a_reload() {
        let (old, new) = (policy(), policy());
        let mut p = Prepared::new(old.clone());
        confirmed(&mut p, "s1", "DELETE FROM t", &old);
        assert_eq!(p.check_bind("s1", &old, [].iter()), BindCheck::Forward);
        assert_eq!(
            p.check_bind("s1", &new, [].iter()),
            redecide(&["DELETE FROM t"])
        );
        p.redecided("s1", &new);
        assert_eq!(p.check_bind("s1", &new, [].iter()), BindCheck::Forward);
    }

    #[test]
    fn a_parse_the_server_skipped_never_names_the_statement() {
        // Parse s1 A fails upstream (no ParseComplete; the batch's answer ends), then Parse
        // s1 B succeeds: s1 is B.
        let (old, new) = (policy(), policy());
        let mut p = Prepared::new(old.clone());
        p.parse_forwarded("s1", "SELECT 1", &old);
        let ops = p.take_batch();
        p.drop_ops(ops);
        confirmed(&mut p, "s1", "DELETE FROM t", &old);
        assert_eq!(
            p.check_bind("s1", &new, [].iter()),
            redecide(&["DELETE FROM t"])
        );
    }

    #[test]
    fn the_same_batch_parse_decides_alone() {
        let (old, new) = (policy(), policy());
        let mut p = Prepared::new(old.clone());
        confirmed(&mut p, "s1", "DELETE FROM t", &old);
        p.parse_forwarded("s1", "SELECT 2", &new);
        assert_eq!(p.check_bind("s1", &new, [].iter()), BindCheck::Forward);
        p.close_forwarded(Some("s1"));
        assert_eq!(p.check_bind("s1", &new, [].iter()), BindCheck::Forward);
    }

    #[test]
    fn an_unanswered_parse_of_an_earlier_batch_is_a_candidate_too() {
        let (old, new) = (policy(), policy());
        let mut p = Prepared::new(old.clone());
        confirmed(&mut p, "s1", "SELECT 1", &old);
        p.parse_forwarded("s1", "DELETE FROM t", &old);
        let in_flight = p.take_batch();
        assert_eq!(
            p.check_bind("s1", &new, in_flight.iter()),
            redecide(&["DELETE FROM t", "SELECT 1"])
        );
    }

    #[test]
    fn unknown_names_pass_only_before_any_reload() {
        let (old, new) = (policy(), policy());
        let p = Prepared::new(old.clone());
        assert_eq!(p.check_bind("x", &old, [].iter()), BindCheck::Forward);
        assert_eq!(p.check_bind("x", &new, [].iter()), BindCheck::Unknown);
    }

    #[test]
    fn sql_level_changes_make_earlier_statements_unknown() {
        let (old, new) = (policy(), policy());
        let mut p = Prepared::new(old.clone());
        confirmed(&mut p, "s1", "SELECT 1", &old);
        p.untracked();
        assert_eq!(p.check_bind("s1", &new, [].iter()), BindCheck::Unknown);
        // A Parse confirmed afterwards is known again.
        confirmed(&mut p, "s2", "SELECT 2", &old);
        assert_eq!(p.check_bind("s2", &new, [].iter()), redecide(&["SELECT 2"]));
    }

    #[test]
    fn close_complete_forgets_and_mismatched_answers_fail_closed() {
        let (old, new) = (policy(), policy());
        let mut p = Prepared::new(old.clone());
        confirmed(&mut p, "s1", "SELECT 1", &old);
        p.close_forwarded(Some("s1"));
        let mut ops = p.take_batch();
        p.complete(false, &mut ops);
        assert_eq!(p.check_bind("s1", &new, [].iter()), BindCheck::Unknown);

        confirmed(&mut p, "s2", "SELECT 2", &old);
        // A ParseComplete where the gateway expected a CloseComplete.
        p.close_forwarded(None);
        let mut ops = p.take_batch();
        p.complete(true, &mut ops);
        assert_eq!(p.check_bind("s2", &new, [].iter()), BindCheck::Unknown);
    }

    #[test]
    fn text_over_the_cap_is_not_kept_and_the_name_becomes_unknown() {
        let (old, new) = (policy(), policy());
        let mut p = Prepared::new(old.clone());
        let big = "x".repeat(MAX_TEXT_BYTES + 1);
        confirmed(&mut p, "s1", &big, &old);
        assert_eq!(p.check_bind("s1", &old, [].iter()), BindCheck::Forward);
        assert_eq!(p.check_bind("s1", &new, [].iter()), BindCheck::Unknown);
        assert_eq!(p.bytes, 0);
        confirmed(&mut p, "s2", "SELECT 2", &old);
        assert_eq!(p.bytes, "SELECT 2".len());
    }
}
