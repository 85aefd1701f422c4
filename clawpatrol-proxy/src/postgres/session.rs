//! The authenticated phase of a Postgres session: every Query and Parse is decided before it
//! is forwarded; upstream bytes are relayed unchanged, with the gateway's own answers slotted
//! in at ReadyForQuery boundaries so the agent sees responses in request order.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use clawpatrol_core::audit::{record_extra, redact_text, AuditRecord};
use clawpatrol_core::engine::frame_decision;
use clawpatrol_core::facts::SqlFacts;
use clawpatrol_core::{Action, Decision, Facts, Policy, Verdict};
use clawpatrol_protocols::postgres::deny::SQLSTATE_INSUFFICIENT_PRIVILEGE;
use clawpatrol_protocols::postgres::{
    error_response, BackendMessage, Decoded, FrameScanner, FrontendDecoder, FrontendMessage,
    ScanEvent, Target, TransactionStatus, FUNCTION_CALL_DENY_REASON,
};
use clawpatrol_protocols::sql::{
    postgres_encoding_change, postgres_encoding_readable, PostgresCache,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::prepared::{Op, Prepared, MAX_OPS};
use super::{BoxStream, SessionError};
use crate::approvals::{run_chain, ApprovalRequest, ApprovalVerdict};
use crate::runtime::{now_ns, Shared};

/// Deny reason of a Query/Parse/FunctionCall frame over the 1 MiB inspection cap.
pub const OVERSIZE_REASON: &str =
    "statement exceeds the 1 MiB inspection buffer and cannot be inspected; failing closed";
/// Deny reason of a Bind over the 1 MiB inspection cap once the policy was reloaded.
pub const OVERSIZE_BIND_REASON: &str =
    "Bind exceeds the 1 MiB inspection buffer, so its prepared statement cannot be decided again after the policy reload; failing closed";
/// Longest SQL summary stored in the audit `path` column, in bytes.
const SUMMARY_CAP: usize = 200;
/// Most agent bytes held (undecided) while a statement waits for approval.
const MAX_HELD: usize = 1 << 20;
/// Read buffer size of each leg.
const READ_BUF: usize = 64 * 1024;
/// The most answers (Syncs, Queries, gateway denials, COPY markers) owed to the agent at once;
/// a session that pipelines more is closed (each is a few dozen bytes of gateway memory).
const MAX_OWED: usize = 16 * 1024;
/// What one waiting audit row costs against [`MAX_HELD_ROWS_WEIGHT`] besides its statement.
const ROW_WEIGHT: usize = 1024;
/// The most audit rows (weighed by [`ROW_WEIGHT`] plus their statements' bytes) a session
/// keeps for statements forwarded but not yet answered; a session that pipelines more is
/// closed (a message of many statements makes a row for each).
pub const MAX_HELD_ROWS_WEIGHT: usize = 64 << 20;
/// SQLSTATE `feature_not_supported`: the session left the encoding the gateway reads.
const SQLSTATE_FEATURE_NOT_SUPPORTED: &str = "0A000";
/// Why a write to `pg_settings` is denied.
const PG_SETTINGS_REASON: &str = "statements on pg_settings other than SELECT may change client_encoding, which the gateway must keep UTF8; use SET";
/// Why a non-ASCII statement is denied after COPY made the answers uncertain.
const COPY_UNCERTAIN_REASON: &str = "statement text with non-ASCII characters after a COPY with pipelined Sync or Query messages: the gateway can no longer tell when earlier statements ran, so it cannot know the client encoding the server reads in; reconnect for non-ASCII statements";
/// Why a non-ASCII statement is denied when the gateway cannot wait for earlier ones.
const UNSETTLED_ENCODING_REASON: &str = "statement text with non-ASCII characters behind statements the server has not answered with ReadyForQuery (no Sync yet, or during COPY): the gateway cannot know the client encoding the server will read it in; send Sync and wait for its answer first";

thread_local! {
    /// Statement analyses by shape, shared by the sessions of one session thread: an agent's
    /// `… WHERE id = 42` is parsed once per thread, not once per id (bounded; see
    /// [`PostgresCache`]).
    static SQL_SHAPES: RefCell<PostgresCache> = RefCell::new(PostgresCache::new());
}

/// What is known about an authenticated session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Endpoint typed name.
    pub endpoint: String,
    /// Upstream host.
    pub host: String,
    /// Agent profile.
    pub profile: Option<String>,
    /// Dispatched credential name.
    pub credential: String,
    /// `sql.database` of the session.
    pub database: String,
    /// The agent's IP as the audit writes it (formatted once per session).
    pub peer_ip: String,
    /// The database's encoding, as the server reported it at login.
    pub server_encoding: String,
    /// Secret strings to redact from every audit field.
    pub secrets: Vec<String>,
}

/// An audit row waiting for its statement to complete.
struct Row {
    rec: AuditRecord,
    started: Instant,
    /// What the row counts against [`MAX_HELD_ROWS_WEIGHT`] while it waits (0 once finished).
    weight: usize,
}

/// One expected answer to the agent, in request order.
enum Slot {
    /// The upstream answers (up to its ReadyForQuery); `error` is sent just before that
    /// ReadyForQuery (a denied Parse in a batch whose earlier messages were forwarded).
    Upstream {
        rows: Vec<Row>,
        error: Option<String>,
        /// Owed for a Sync (which the server ignores while it reads COPY data), not a Query.
        sync: bool,
        /// The batch's Parses and Closes the server has not answered yet.
        ops: VecDeque<Op>,
        /// [`Pump::ran`] when this answer was owed: its ReadyForQuery settles that many.
        ran_before: u64,
        /// COPY data was forwarded between the last Query or Execute and this answer's
        /// request: a COPY may have ended or failed before the server read it.
        after_copy_data: bool,
    },
    /// The gateway answers: ErrorResponse 42501 + ReadyForQuery.
    Synthetic { reason: String },
    /// Where the agent's CopyDone or CopyFail sits among the Syncs: it ends the window of
    /// ignored Syncs once the server confirms the COPY started (no answer of its own).
    /// `after_execute`: extended-protocol messages were forwarded between the slot before it
    /// and it, so a COPY may still start there after that slot is answered.
    CopyEnd { after_execute: bool },
}

/// A Query, Parse or (re-decided) Bind frame with its statements and their decisions.
struct Framed {
    m: FrontendMessage,
    /// Extended protocol (Parse, Bind): a deny discards the batch up to its Sync.
    extended: bool,
    actions: Vec<Action>,
    decisions: Vec<Decision>,
    /// The policy that decided it.
    policy: Arc<Policy>,
}

/// A frame parked until its approval chain decides.
struct Awaiting {
    frame: Framed,
    chain: Vec<String>,
}

/// The statement that decided a frame: the first one not simply allowed.
fn first_gated(decisions: &[Decision]) -> (usize, Option<&Decision>) {
    decisions
        .iter()
        .enumerate()
        .find(|(_, d)| !matches!(d.verdict, Verdict::Allow | Verdict::Passthrough))
        .map_or((0, decisions.first()), |(i, d)| (i, Some(d)))
}

/// Records who approved or denied on an audit row.
fn mark_approval(rec: &mut AuditRecord, approval: Option<&ApprovalVerdict>) {
    if let Some(v) = approval {
        rec.approver = Some(v.approver.clone());
        rec.approver_type = Some(v.approver_type.clone());
        rec.approver_by = Some(v.by.clone()).filter(|b| !b.is_empty());
        if v.cached {
            if let serde_json::Value::Object(m) = &mut rec.extra {
                m.insert("approval_cached".to_string(), serde_json::Value::Bool(true));
            }
        }
    }
}

/// How the current oversize frame is handled.
enum Oversize {
    Forward,
    Drop,
    Deny(u8),
}

/// Decision state of one session (no I/O; the loop in [`run`] moves the bytes).
struct Pump<'a> {
    shared: &'a Shared,
    info: &'a SessionInfo,
    dec: FrontendDecoder,
    scanner: FrameScanner,
    events: Vec<ScanEvent>,
    slots: VecDeque<Slot>,
    status: u8,
    batch_rows: Vec<Row>,
    batch_forwarded: bool,
    discard: Option<String>,
    oversize: Option<Oversize>,
    finishing: Vec<Row>,
    up_out: Vec<u8>,
    agent_out: Vec<u8>,
    closing: bool,
    /// A frame waiting for its approval chain; no further frame is read meanwhile.
    awaiting: Option<Awaiting>,
    /// The server reads COPY data (it sent CopyInResponse) and the agent's CopyDone or
    /// CopyFail has not been forwarded yet: Syncs forwarded now get no ReadyForQuery.
    copy_in: bool,
    /// Rows (and the batch error) of ignored Syncs, answered at the next owed Sync's
    /// ReadyForQuery.
    carry: Vec<Row>,
    carry_error: Option<String>,
    /// The session's prepared statements, for re-deciding a Bind after a reload.
    prepared: Prepared,
    /// Messages forwarded that can run code on the server (Query, Parse, Bind, Execute,
    /// COPY data): any of them may change the client encoding.
    ran: u64,
    /// How many of those the server has answered with a ReadyForQuery (and so reported any
    /// encoding change before it).
    settled: u64,
    /// A Sync or Query was taken as ignored during COPY: whether the server really ignored
    /// it depends on when the COPY failed, so answers may no longer match slots and
    /// `settled` stops advancing for the rest of the session.
    copy_uncertain: bool,
    /// A non-ASCII Query or Parse waiting until the server has answered everything before
    /// it, so that any encoding change it made has been reported; no further frame is
    /// decided meanwhile.
    held: Option<FrontendMessage>,
    /// Agent bytes read while a frame is held.
    held_bytes: usize,
    /// Finished audit rows that found the writer's queue full, in order: the run loop
    /// queues them (waiting for room) before it relays or reads anything else.
    unsent: VecDeque<Box<AuditRecord>>,
    /// The weight of the rows kept for forwarded statements not yet answered.
    held_rows_weight: usize,
    /// COPY data (CopyData, CopyDone, CopyFail) was forwarded since the last Query or Execute.
    copy_data_sent: bool,
}

/// Relays an authenticated session until either side closes or the agent terminates.
pub async fn run(
    shared: &Shared,
    info: &SessionInfo,
    agent: BoxStream,
    dec: FrontendDecoder,
    upstream: BoxStream,
) -> Result<(), SessionError> {
    let mut pump = Pump::new(shared, info, dec);
    let (mut ar, mut aw) = tokio::io::split(agent);
    let (mut ur, mut uw) = tokio::io::split(upstream);
    let mut abuf = vec![0u8; READ_BUF];
    let mut ubuf = vec![0u8; READ_BUF];
    let result = async {
        pump.on_agent(&[])?;
        loop {
            if !pump.unsent.is_empty() {
                // Rows the audit queue could not take yet: their statements ran, so nothing
                // more is relayed or read until the rows are queued (fail closed).
                shared.audit.record_all(&mut pump.unsent).await;
            }
            if !pump.up_out.is_empty() {
                uw.write_all(&pump.up_out).await?;
                pump.up_out.clear();
            }
            if !pump.agent_out.is_empty() {
                aw.write_all(&pump.agent_out).await?;
                pump.agent_out.clear();
            }
            if pump.closing {
                let _ = uw.shutdown().await;
                let _ = aw.shutdown().await;
                return Ok(());
            }
            if let Some(parked) = pump.awaiting.take() {
                // Park the statement: nothing reaches the server before the chain allows.
                // The agent's later bytes are kept (bounded) but not decided until then; if
                // the agent goes away, the statement is denied and never sent.
                let policy = shared.policy.load_full();
                let req = pump.approval_request(&parked);
                let approvers = parked.chain.clone();
                let chain = run_chain(shared, &policy, &approvers, &req);
                tokio::pin!(chain);
                let mut held = 0usize;
                let verdict = loop {
                    tokio::select! {
                        v = &mut chain => break Some(v),
                        r = ar.read(&mut abuf), if held < MAX_HELD => match r {
                            Ok(0) | Err(_) => break None,
                            Ok(n) => {
                                pump.dec.feed(&abuf[..n]);
                                held += n;
                            }
                        },
                    }
                };
                match verdict {
                    Some(v) => {
                        pump.resolve(parked, &v)?;
                        pump.on_agent(&[])?;
                        continue;
                    }
                    None => {
                        let gone = ApprovalVerdict::deny(
                            "",
                            "",
                            "original client connection closed before approval; upstream request was not sent",
                        );
                        pump.resolve(parked, &gone)?;
                        pump.agent_out.clear();
                        return Ok(());
                    }
                }
            }
            // While the audit writer is behind, no new statement is read: the agent waits
            // rather than running statements faster than they are audited. The server's
            // answers to what was already sent keep flowing.
            let behind = shared.audit.behind();
            tokio::select! {
                r = ar.read(&mut abuf), if pump.held_bytes < MAX_HELD && !behind => {
                    let n = r?;
                    if n == 0 {
                        return Ok(());
                    }
                    super::threads::active();
                    if pump.held.is_some() {
                        pump.held_bytes += n;
                    }
                    pump.on_agent(&abuf[..n])?;
                }
                r = ur.read(&mut ubuf) => {
                    let n = r?;
                    if n == 0 {
                        return Ok(());
                    }
                    super::threads::active();
                    pump.on_upstream(&ubuf[..n])?;
                }
                () = shared.audit.room(), if behind => {}
            }
        }
    }
    .await;
    // Rows finished before an error are queued before the answers that went with them.
    shared.audit.record_all(&mut pump.unsent).await;
    if !pump.agent_out.is_empty() {
        let _ = aw.write_all(&pump.agent_out).await;
    }
    pump.abandon();
    shared.audit.record_all(&mut pump.unsent).await;
    result
}

impl<'a> Pump<'a> {
    fn new(shared: &'a Shared, info: &'a SessionInfo, dec: FrontendDecoder) -> Pump<'a> {
        Pump {
            shared,
            info,
            dec,
            scanner: FrameScanner::new(),
            events: Vec::new(),
            slots: VecDeque::new(),
            copy_in: false,
            carry: Vec::new(),
            carry_error: None,
            status: b'I',
            batch_rows: Vec::new(),
            batch_forwarded: false,
            discard: None,
            oversize: None,
            finishing: Vec::new(),
            up_out: Vec::new(),
            agent_out: Vec::new(),
            closing: false,
            awaiting: None,
            prepared: Prepared::new(shared.policy.load_full()),
            ran: 0,
            settled: 0,
            copy_uncertain: false,
            held: None,
            held_bytes: 0,
            held_rows_weight: 0,
            copy_data_sent: false,
            unsent: VecDeque::new(),
        }
    }

    /// Decodes and decides the agent's bytes.
    fn on_agent(&mut self, data: &[u8]) -> Result<(), SessionError> {
        self.dec.feed(data);
        while !self.closing && self.awaiting.is_none() && self.held.is_none() {
            match self.dec.next_frame().map_err(SessionError::Protocol)? {
                None => break,
                Some(item) => self.on_item(item)?,
            }
        }
        Ok(())
    }

    fn on_item(&mut self, item: Decoded<FrontendMessage>) -> Result<(), SessionError> {
        match item {
            Decoded::Message(m) => self.on_message(m),
            Decoded::OversizeStart(h) => {
                self.oversize = Some(match h.tag {
                    b'Q' | b'P' | b'F' => Oversize::Deny(h.tag),
                    _ if self.discard.is_some() => Oversize::Drop,
                    // Its statement name is not read, so after a reload it cannot be
                    // decided again.
                    b'B' if !self
                        .prepared
                        .no_reload_since_start(&self.shared.policy.load_full()) =>
                    {
                        Oversize::Deny(b'B')
                    }
                    tag => {
                        self.up_out.push(tag);
                        self.up_out.extend_from_slice(&h.len.to_be_bytes());
                        if runs_code(tag) {
                            self.ran += 1;
                        }
                        if is_extended(tag) {
                            self.batch_forwarded = true;
                        }
                        Oversize::Forward
                    }
                });
                Ok(())
            }
            Decoded::OversizeChunk(bytes) => {
                if matches!(self.oversize, Some(Oversize::Forward)) {
                    self.up_out.extend_from_slice(&bytes);
                }
                Ok(())
            }
            Decoded::OversizeEnd => {
                if let Some(Oversize::Deny(tag)) = self.oversize.take() {
                    let reason = if tag == b'B' {
                        OVERSIZE_BIND_REASON
                    } else {
                        OVERSIZE_REASON
                    };
                    let mut a = self.action(String::new());
                    a.truncated = true;
                    let mut rec = self.record(&a, None, "deny", reason);
                    if tag == b'B' {
                        rec.method = "bind".to_string();
                    }
                    self.finish(Row {
                        rec,
                        started: Instant::now(),
                        weight: 0,
                    });
                    if self.discard.is_none() {
                        if tag == b'P' || tag == b'B' {
                            self.discard = Some(reason.to_string());
                        } else {
                            self.push_synthetic(reason.to_string())?;
                        }
                    }
                }
                Ok(())
            }
        }
    }

    fn on_message(&mut self, m: FrontendMessage) -> Result<(), SessionError> {
        match m {
            FrontendMessage::Sync => {
                if let Some(reason) = self.discard.take() {
                    if self.batch_forwarded {
                        self.forward(&FrontendMessage::Sync)?;
                        self.push_sync_slot(Some(reason))?;
                    } else {
                        self.push_synthetic(reason)?;
                    }
                } else {
                    self.forward(&FrontendMessage::Sync)?;
                    self.push_sync_slot(None)?;
                }
                self.batch_forwarded = false;
                Ok(())
            }
            m @ (FrontendMessage::CopyDone | FrontendMessage::CopyFail(_)) => {
                self.forward(&m)?;
                if self.copy_in {
                    // The COPY's own answer (a Query's) comes after the server read its data.
                    if let Some(Slot::Upstream {
                        sync: false,
                        ran_before,
                        ..
                    }) = self.slots.front_mut()
                    {
                        *ran_before = self.ran;
                    }
                    self.copy_in = false;
                } else if self.batch_forwarded || self.owes_upstream() {
                    // A COPY may still start before the server reaches this message.
                    self.push_slot(Slot::CopyEnd {
                        after_execute: self.batch_forwarded,
                    })?;
                }
                // Otherwise the server ignores it (no COPY can be running): nothing to track.
                Ok(())
            }
            FrontendMessage::Terminate => {
                self.forward(&FrontendMessage::Terminate)?;
                self.closing = true;
                Ok(())
            }
            _ if self.discard.is_some() => Ok(()),
            FrontendMessage::Query(_) if self.batch_forwarded => Err(SessionError::QueryInBatch),
            m @ (FrontendMessage::Query(_) | FrontendMessage::Parse { .. })
                if self.must_wait(&m) =>
            {
                self.held = Some(m);
                self.held_bytes = 0;
                Ok(())
            }
            FrontendMessage::Query(sql) => self.gate(FrontendMessage::Query(sql)),
            m @ FrontendMessage::Parse { .. } => self.gate(m),
            m @ FrontendMessage::Bind { .. } => self.gate_bind(m),
            FrontendMessage::FunctionCall { function, .. } => {
                let a = self.action(format!("-- FunctionCall oid {function}"));
                let mut rec = self.record(&a, None, "deny", FUNCTION_CALL_DENY_REASON);
                rec.method = "function_call".to_string();
                self.finish(Row {
                    rec,
                    started: Instant::now(),
                    weight: 0,
                });
                self.push_synthetic(FUNCTION_CALL_DENY_REASON.to_string())?;
                Ok(())
            }
            m => {
                if m.tag().is_some_and(is_extended) {
                    self.batch_forwarded = true;
                }
                if let FrontendMessage::Close { target, name } = &m {
                    let statement = (*target == Target::Statement).then_some(name.as_str());
                    if !self.prepared.close_forwarded(statement) {
                        return Err(SessionError::TooManyPrepares(MAX_OPS));
                    }
                }
                self.forward(&m)
            }
        }
    }

    /// Decides a Query or Parse message and forwards it, answers with a deny, or parks it
    /// for an approval chain (the run loop resolves it before reading further frames).
    fn gate(&mut self, m: FrontendMessage) -> Result<(), SessionError> {
        let (sql, extended) = match &m {
            FrontendMessage::Query(q) => (q.clone(), false),
            FrontendMessage::Parse { query, .. } => (query.clone(), true),
            _ => return self.forward(&m),
        };
        let policy = self.shared.policy.load_full();
        let unsettled = !sql.is_ascii() && (!self.settled() || self.copy_uncertain);
        let base = self.action(sql);
        let actions = SQL_SHAPES
            .with(|c| match c.try_borrow_mut() {
                Ok(mut cache) => policy.sql_text_actions_cached(&base, &mut cache),
                Err(_) => policy.sql_text_actions(&base),
            })
            .unwrap_or_default();
        let decisions: Vec<Decision> = actions
            .iter()
            .map(|a| {
                let d = policy.decide_fail_closed(a);
                match self.encoding_change(a) {
                    Some(reason) => encoding_deny(d, reason),
                    None if unsettled => encoding_deny(
                        d,
                        if self.copy_uncertain {
                            COPY_UNCERTAIN_REASON
                        } else {
                            UNSETTLED_ENCODING_REASON
                        }
                        .to_string(),
                    ),
                    None => d,
                }
            })
            .collect();
        self.dispatch(Framed {
            m,
            extended,
            actions,
            decisions,
            policy,
        })
    }

    /// True when the server has answered everything forwarded that can run code: it reads
    /// the next message in the encoding it last reported.
    fn settled(&self) -> bool {
        self.ran == self.settled
    }

    /// True when the server's answers that would settle the session are still coming: a
    /// frame can wait for them (not during COPY, where the server waits for the agent).
    fn can_wait(&self) -> bool {
        self.owes_upstream() && !self.copy_in && !self.copy_uncertain
    }

    /// A Query or Parse whose text is not ASCII (which every client encoding reads alike)
    /// waits until the server has answered what ran before it: a statement may change the
    /// encoding, which the server reports only with its ReadyForQuery. When no such answer
    /// is coming (no Sync yet, or COPY), `gate` denies it instead.
    fn must_wait(&self, m: &FrontendMessage) -> bool {
        let text = match m {
            FrontendMessage::Query(q) => q,
            FrontendMessage::Parse { query, .. } => query,
            _ => return false,
        };
        !text.is_ascii() && !self.settled() && self.can_wait()
    }

    /// Decides the held frame once the session settled or it can wait no longer, then the
    /// frames behind it.
    fn release_held(&mut self) -> Result<(), SessionError> {
        if self.held.is_none() || self.closing || (!self.settled() && self.can_wait()) {
            return Ok(());
        }
        if let Some(m) = self.held.take() {
            self.held_bytes = 0;
            self.on_message(m)?;
            self.on_agent(&[])?;
        }
        Ok(())
    }

    /// Why running `a` may switch the session to a client encoding the gateway cannot read
    /// (`SET` statements, `set_config` calls and statements on `pg_settings` are looked at).
    fn encoding_change(&self, a: &Action) -> Option<String> {
        let Facts::Sql(f) = &a.facts else {
            return None;
        };
        // pg_settings' UPDATE rule calls set_config; a statement other than a plain SELECT
        // may write to it now (EXPLAIN ANALYZE, a CTE) or later (PREPARE, a view, a rule).
        let writes_settings = f.verb != "select"
            && f.tables
                .iter()
                .any(|t| t == "pg_settings" || t.ends_with(".pg_settings"));
        if writes_settings {
            return Some(PG_SETTINGS_REASON.to_string());
        }
        let may = f.verb == "set"
            || f.functions
                .iter()
                .any(|n| n == "set_config" || n.ends_with(".set_config"));
        if !may {
            return None;
        }
        postgres_encoding_change(&f.statement, &self.info.server_encoding)
    }

    /// Forwards a Bind, unless a reload happened since its statement was prepared: then it
    /// is refused (one error for the batch, like a denied Parse) and must be prepared again.
    fn gate_bind(&mut self, m: FrontendMessage) -> Result<(), SessionError> {
        let FrontendMessage::Bind { statement, .. } = &m else {
            return self.forward(&m);
        };
        let policy = self.shared.policy.load_full();
        let in_flight = self
            .slots
            .iter()
            .filter_map(|s| match s {
                Slot::Upstream { ops, .. } => Some(ops),
                _ => None,
            })
            .flatten();
        if self.prepared.bind_allowed(statement, &policy, in_flight) {
            self.batch_forwarded = true;
            return self.forward(&m);
        }
        let reason = prepared_before_reload_reason(statement);
        let a = self.action(format!("-- Bind of prepared statement {statement:?}"));
        let mut rec = self.record_with(&policy, &a, None, "deny", &reason);
        rec.method = "bind".to_string();
        self.finish(Row {
            rec,
            started: Instant::now(),
            weight: 0,
        });
        self.discard = Some(reason);
        Ok(())
    }

    /// Forwards, denies or parks a decided frame.
    fn dispatch(&mut self, frame: Framed) -> Result<(), SessionError> {
        let policy = Arc::clone(&frame.policy);
        let decisions = &frame.decisions;
        let frame_d = frame_decision(decisions);
        if let Some(d) = frame_d {
            if let Some(detail) = &d.log_detail {
                tracing::info!(
                    rule = d.rule.as_deref().unwrap_or(""),
                    detail = %redact_text(detail, &self.info.secrets),
                    "rule unevaluable"
                );
            }
        }
        match frame_decision(&frame.decisions).map(|d| d.verdict.clone()) {
            None | Some(Verdict::Allow) | Some(Verdict::Passthrough) => {
                self.allow_frame(&policy, frame, None)
            }
            Some(Verdict::Deny) => {
                let reason = frame_decision(&frame.decisions)
                    .map(|d| d.agent_reason().to_string())
                    .unwrap_or_default();
                self.deny_frame(&policy, &frame, "deny", &reason, None)?;
                Ok(())
            }
            Some(Verdict::Approve(_)) => {
                // Every statement that needs approval is approved together: the union of
                // their chains runs, and the approvers see the whole frame.
                let mut chain: Vec<String> = Vec::new();
                for d in &frame.decisions {
                    if let Verdict::Approve(c) = &d.verdict {
                        for a in c {
                            if !chain.contains(a) {
                                chain.push(a.clone());
                            }
                        }
                    }
                }
                self.awaiting = Some(Awaiting { frame, chain });
                Ok(())
            }
        }
    }

    /// Applies an approval chain's verdict to the parked frame.
    fn resolve(&mut self, parked: Awaiting, v: &ApprovalVerdict) -> Result<(), SessionError> {
        let policy = self.shared.policy.load_full();
        if v.allow {
            self.allow_frame(&policy, parked.frame, Some(v))
        } else {
            self.deny_frame(&policy, &parked.frame, "denied", &v.reason, Some(v))?;
            Ok(())
        }
    }

    /// What the approvers of a parked frame are told (reference §5.1).
    fn approval_request(&self, parked: &Awaiting) -> ApprovalRequest {
        let (i, d) = first_gated(&parked.frame.decisions);
        let action = parked
            .frame
            .actions
            .get(i)
            .cloned()
            .unwrap_or_else(|| self.action(String::new()));
        let mut redacted = action.clone();
        clawpatrol_core::audit::redact_action(&mut redacted, &self.info.secrets);
        let verb = match &action.facts {
            Facts::Sql(f) => f.verb.clone(),
            _ => String::new(),
        };
        let whole = match &parked.frame.m {
            FrontendMessage::Query(q) => q.as_str(),
            FrontendMessage::Parse { query, .. } => query.as_str(),
            _ => "",
        };
        let summary = summary(whole);
        ApprovalRequest {
            approver: String::new(),
            endpoint: self.info.endpoint.clone(),
            rule: d.and_then(|d| d.rule.as_deref().map(str::to_string)),
            rule_reason: d.map(|d| d.reason.clone()).unwrap_or_default(),
            action: redacted,
            profile: self.info.profile.clone(),
            agent_ip: self.info.peer_ip.clone(),
            method: verb,
            host: self.info.host.clone(),
            path: redact_text(&summary, &self.info.secrets),
            user_agent: None,
            body_sample: String::new(),
        }
    }

    /// Forwards an allowed (or approved) frame and queues its audit rows.
    fn allow_frame(
        &mut self,
        policy: &Policy,
        frame: Framed,
        approval: Option<&ApprovalVerdict>,
    ) -> Result<(), SessionError> {
        let outcome = if approval.is_some() {
            "approved"
        } else {
            "allow"
        };
        let rows: Vec<Row> = frame
            .actions
            .iter()
            .zip(&frame.decisions)
            .map(|(a, d)| {
                let mut rec = self.record_with(policy, a, Some(d), outcome, "");
                mark_approval(&mut rec, approval);
                let statement = match &a.facts {
                    Facts::Sql(f) => f.statement.len(),
                    _ => 0,
                };
                Row {
                    rec,
                    started: Instant::now(),
                    weight: ROW_WEIGHT + statement,
                }
            })
            .collect();
        let after_copy_data = self.copy_data_sent;
        let weight: usize = rows.iter().map(|r| r.weight).sum();
        if self.held_rows_weight + weight > MAX_HELD_ROWS_WEIGHT {
            return Err(SessionError::TooManyHeldRows(MAX_HELD_ROWS_WEIGHT >> 20));
        }
        self.held_rows_weight += weight;
        self.forward(&frame.m)?;
        if let FrontendMessage::Parse { name, .. } = &frame.m {
            if !self.prepared.parse_forwarded(name, &frame.policy) {
                return Err(SessionError::TooManyPrepares(MAX_OPS));
            }
        }
        if frame.extended {
            self.batch_rows.extend(rows);
            self.batch_forwarded = true;
        } else {
            if self.copy_in {
                // The server takes a Query during COPY FROM STDIN as a protocol error: it
                // aborts the COPY and never answers the Query itself. After COPY data, the
                // COPY may have ended first, and the server then answers it: answers can no
                // longer be matched to requests for certain.
                self.copy_uncertain = true;
                if after_copy_data {
                    self.prepared
                        .lost("a Query followed COPY data before the COPY's end");
                }
                self.carry.extend(rows);
            } else {
                self.push_slot(Slot::Upstream {
                    rows,
                    error: None,
                    sync: false,
                    ops: VecDeque::new(),
                    ran_before: self.ran,
                    after_copy_data: self.copy_data_sent,
                })?;
            }
        }
        Ok(())
    }

    /// Answers a denied frame (one audit row, for the statement that caused the deny).
    fn deny_frame(
        &mut self,
        policy: &Policy,
        frame: &Framed,
        outcome: &str,
        reason: &str,
        approval: Option<&ApprovalVerdict>,
    ) -> Result<(), SessionError> {
        let (i, d) = first_gated(&frame.decisions);
        if let Some(a) = frame.actions.get(i) {
            let mut rec = self.record_with(policy, a, d, outcome, reason);
            mark_approval(&mut rec, approval);
            self.finish(Row {
                rec,
                started: Instant::now(),
                weight: 0,
            });
        }
        if frame.extended {
            self.discard = Some(reason.to_string());
            Ok(())
        } else {
            self.push_synthetic(reason.to_string())
        }
    }

    fn forward(&mut self, m: &FrontendMessage) -> Result<(), SessionError> {
        if m.tag().is_some_and(runs_code) {
            self.ran += 1;
        }
        match m.tag() {
            Some(b'd' | b'c' | b'f') => self.copy_data_sent = true,
            Some(b'Q' | b'E') => self.copy_data_sent = false,
            _ => {}
        }
        m.encode(&mut self.up_out).map_err(SessionError::Protocol)
    }

    /// Owes the agent the server's answer to a forwarded Sync, with the batch's rows; while
    /// the server reads COPY data it ignores the Sync, so the rows wait for the next one.
    fn push_sync_slot(&mut self, error: Option<String>) -> Result<(), SessionError> {
        let mut rows = std::mem::take(&mut self.carry);
        rows.append(&mut self.batch_rows);
        let error = self.carry_error.take().or(error);
        let ops = self.prepared.take_batch();
        if self.copy_in {
            // The server ignores this Sync; answers to these operations (if any) will not
            // match, which makes the statements unknown (fail closed). After COPY data the
            // COPY may have ended or failed first, and the server then answers the Sync.
            self.copy_uncertain = true;
            if self.copy_data_sent {
                self.prepared
                    .lost("a Sync followed COPY data before the COPY's end");
            }
            self.prepared.drop_ops(ops);
            self.carry = rows;
            self.carry_error = error;
            Ok(())
        } else {
            self.push_slot(Slot::Upstream {
                rows,
                error,
                sync: true,
                ops,
                ran_before: self.ran,
                after_copy_data: self.copy_data_sent,
            })
        }
    }

    /// Queues an owed answer, closing the session beyond [`MAX_OWED`].
    fn push_slot(&mut self, slot: Slot) -> Result<(), SessionError> {
        if self.slots.len() >= MAX_OWED {
            return Err(SessionError::TooManyOwed(MAX_OWED));
        }
        self.slots.push_back(slot);
        Ok(())
    }

    /// True while an upstream answer (to a Sync or a Query) is still owed to the agent.
    fn owes_upstream(&self) -> bool {
        self.slots
            .iter()
            .any(|s| matches!(s, Slot::Upstream { .. }))
    }

    /// After an upstream answer: drops the CopyEnd markers the server has now passed without
    /// starting a COPY, and writes the gateway's own denials that no upstream answer precedes.
    fn settle_front(&mut self) {
        loop {
            match self.slots.front() {
                Some(Slot::CopyEnd {
                    after_execute: false,
                }) => {
                    self.slots.pop_front();
                }
                Some(Slot::Synthetic { .. }) => {
                    if let Some(Slot::Synthetic { reason }) = self.slots.pop_front() {
                        self.write_deny(&reason);
                    }
                }
                _ => break,
            }
        }
        // Denials behind markers that may still be waiting for a COPY owe nothing upstream.
        if !self.owes_upstream() {
            let mut kept = VecDeque::with_capacity(self.slots.len());
            for s in std::mem::take(&mut self.slots) {
                match s {
                    Slot::Synthetic { reason } => self.write_deny(&reason),
                    other => kept.push_back(other),
                }
            }
            self.slots = kept;
        }
    }

    /// The server started reading COPY data: the Syncs forwarded after the command that
    /// started it and before the agent's CopyDone/CopyFail get no ReadyForQuery. A Query
    /// slot at the front is that command's own (answered after the COPY); every Sync slot
    /// up to the CopyEnd marker is ignored and hands its rows on. Without a marker the
    /// window is still open.
    fn on_copy_in(&mut self) {
        let start = usize::from(matches!(
            self.slots.front(),
            Some(Slot::Upstream { sync: false, .. })
        ));
        let mut i = start;
        while i < self.slots.len() {
            match self.slots.get(i) {
                Some(Slot::CopyEnd { .. }) => {
                    self.slots.remove(i);
                    // Hand the ignored Syncs' rows to the next owed Sync after the COPY.
                    let rows = std::mem::take(&mut self.carry);
                    let error = self.carry_error.take();
                    if let Some(Slot::Upstream {
                        rows: next,
                        error: next_error,
                        sync: true,
                        ..
                    }) = self.slots.get_mut(i)
                    {
                        let mut all = rows;
                        all.append(next);
                        *next = all;
                        if next_error.is_none() {
                            *next_error = error;
                        }
                    } else {
                        self.carry = rows;
                        self.carry_error = error;
                    }
                    return;
                }
                Some(Slot::Upstream { sync: true, .. }) => {
                    self.copy_uncertain = true;
                    if let Some(Slot::Upstream {
                        rows,
                        error,
                        ops,
                        after_copy_data,
                        ..
                    }) = self.slots.remove(i)
                    {
                        if after_copy_data {
                            // The COPY may have failed on that data before the server read
                            // the Sync, which it then answered.
                            self.prepared
                                .lost("a Sync followed COPY data sent before the COPY started");
                        }
                        self.prepared.drop_ops(ops);
                        self.carry.extend(rows);
                        if self.carry_error.is_none() {
                            self.carry_error = error;
                        }
                    }
                }
                _ => i += 1,
            }
        }
        self.copy_in = true;
    }

    /// Answers a denied frame now, or after the upstream answers still owed to the agent.
    fn push_synthetic(&mut self, reason: String) -> Result<(), SessionError> {
        if self.owes_upstream() {
            self.push_slot(Slot::Synthetic { reason })
        } else {
            self.write_deny(&reason);
            Ok(())
        }
    }

    fn write_deny(&mut self, reason: &str) {
        self.write_error(reason);
        let status = match self.status {
            b'T' => TransactionStatus::InTransaction,
            b'E' => TransactionStatus::Failed,
            _ => TransactionStatus::Idle,
        };
        // Infallible: a one-byte message.
        let _ = BackendMessage::ReadyForQuery(status).encode(&mut self.agent_out);
    }

    fn write_error(&mut self, reason: &str) {
        // Infallible: NULs are removed by `error_response` and the reason is small.
        let _ = error_response("ERROR", SQLSTATE_INSUFFICIENT_PRIVILEGE, reason)
            .encode(&mut self.agent_out);
    }

    /// Relays upstream bytes, inserting the gateway's answers at ReadyForQuery boundaries.
    fn on_upstream(&mut self, data: &[u8]) -> Result<(), SessionError> {
        self.events.clear();
        self.scanner
            .scan(data, &mut self.events)
            .map_err(SessionError::Protocol)?;
        let mut last = 0;
        for i in 0..self.events.len() {
            match self.events[i] {
                ScanEvent::ReadyStart(off) => {
                    self.agent_out.extend_from_slice(&data[last..off]);
                    last = off;
                    // A CopyEnd still queued here belonged to no COPY (the server never
                    // sent CopyInResponse before answering what follows it).
                    while matches!(self.slots.front(), Some(Slot::CopyEnd { .. })) {
                        self.slots.pop_front();
                    }
                    // The server answers only outside COPY: one that failed mid-way is over,
                    // and the rows of what it swallowed meanwhile end with this answer.
                    if std::mem::take(&mut self.copy_in) {
                        self.finishing.append(&mut self.carry);
                    }
                    match self.slots.pop_front() {
                        Some(Slot::Upstream {
                            rows,
                            error,
                            ops,
                            ran_before,
                            ..
                        }) => {
                            // Everything forwarded before this answer's Sync or Query has
                            // run, and any encoding change was reported before it.
                            if !self.copy_uncertain {
                                self.settled = self.settled.max(ran_before);
                            }
                            // Operations still unanswered failed or were skipped.
                            self.prepared.drop_ops(ops);
                            if let Some(reason) = error {
                                self.write_error(&reason);
                            }
                            self.finishing = rows;
                        }
                        Some(Slot::Synthetic { .. } | Slot::CopyEnd { .. }) => {
                            // The gateway no longer knows which request the server answers:
                            // its denials and audit rows would land on the wrong ones.
                            return Err(SessionError::Desync);
                        }
                        // The answer to a Sync sent during a COPY that failed (the server
                        // then waits for a Sync instead of ignoring it).
                        None => {
                            if let Some(reason) = self.carry_error.take() {
                                self.write_error(&reason);
                            }
                            self.finishing.append(&mut self.carry);
                        }
                    }
                }
                ScanEvent::CopyInStart(_) => self.on_copy_in(),
                ScanEvent::ParameterStatusEnd(end) => {
                    let Some(p) = self.scanner.take_status() else {
                        continue;
                    };
                    if p.name != "client_encoding" {
                        continue;
                    }
                    let value = p.value.unwrap_or_default();
                    if postgres_encoding_readable(&value, &self.info.server_encoding) {
                        continue;
                    }
                    // The server now reads what follows in an encoding the gateway cannot:
                    // nothing more is forwarded, and the session ends.
                    self.agent_out.extend_from_slice(&data[last..end]);
                    let reason = SessionError::UnreadableEncoding(value).to_string();
                    tracing::warn!(
                        endpoint = %self.info.endpoint,
                        peer = %self.info.peer_ip,
                        reason = %reason,
                        "postgres session closed"
                    );
                    let _ = error_response("FATAL", SQLSTATE_FEATURE_NOT_SUPPORTED, &reason)
                        .encode(&mut self.agent_out);
                    self.up_out.clear();
                    self.closing = true;
                    return Ok(());
                }
                ScanEvent::ParseComplete(_) => self.on_complete(true),
                ScanEvent::CloseComplete(_) => self.on_complete(false),
                ScanEvent::ReadyEnd { end, status } => {
                    self.agent_out.extend_from_slice(&data[last..end]);
                    last = end;
                    self.status = status;
                    for row in std::mem::take(&mut self.finishing) {
                        self.finish(row);
                    }
                    self.settle_front();
                }
            }
        }
        self.agent_out.extend_from_slice(&data[last..]);
        self.release_held()
    }

    /// The server confirmed a Parse (`parse`) or a Close: it answers the oldest owed
    /// Sync's operations, or, when none is owed, the current batch's (after a Flush).
    fn on_complete(&mut self, parse: bool) {
        let owed = self.slots.iter_mut().find_map(|s| match s {
            Slot::Upstream { ops, .. } => Some(ops),
            _ => None,
        });
        match owed {
            Some(ops) => self.prepared.complete(parse, ops),
            None => {
                let mut ops = std::mem::take(self.prepared.batch_ops());
                self.prepared.complete(parse, &mut ops);
                *self.prepared.batch_ops() = ops;
            }
        }
    }

    /// Writes the rows of statements whose answer never arrived (the session ended).
    fn abandon(&mut self) {
        let mut rows = std::mem::take(&mut self.finishing);
        rows.append(&mut self.carry);
        rows.append(&mut self.batch_rows);
        for s in std::mem::take(&mut self.slots) {
            if let Slot::Upstream { rows: r, .. } = s {
                rows.extend(r);
            }
        }
        for row in rows {
            self.finish(row);
        }
    }

    /// The SQL action of `statement` in this session.
    fn action(&self, statement: String) -> Action {
        session_action(self.info, statement)
    }

    fn record(&self, a: &Action, d: Option<&Decision>, outcome: &str, reason: &str) -> AuditRecord {
        let policy = self.shared.policy.load_full();
        self.record_with(&policy, a, d, outcome, reason)
    }

    /// An audit row for one statement (redacted).
    fn record_with(
        &self,
        policy: &Policy,
        a: &Action,
        d: Option<&Decision>,
        outcome: &str,
        reason: &str,
    ) -> AuditRecord {
        statement_record(self.info, policy, a, d, outcome, reason)
    }

    /// Queues a finished row, or keeps it (and every later one, in order) for the run loop
    /// when the audit queue is full.
    fn finish(&mut self, row: Row) {
        self.held_rows_weight = self.held_rows_weight.saturating_sub(row.weight);
        let mut rec = row.rec;
        rec.ms = u64::try_from(row.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            action = %rec.action,
            verb = %rec.method,
            endpoint = rec.endpoint.as_deref().unwrap_or(""),
            database = %self.info.database,
            rule = rec.rule.as_deref().unwrap_or(""),
            credential = rec.credential.as_deref().unwrap_or(""),
            reason = %rec.reason,
            ms = rec.ms,
            "statement"
        );
        let rec = Box::new(rec);
        if !self.unsent.is_empty() {
            self.unsent.push_back(rec);
        } else if let Err(rec) = self.shared.audit.try_record(rec) {
            self.unsent.push_back(rec);
        }
    }
}

impl Drop for Pump<'_> {
    /// A session torn down mid-way (its task cancelled) still queues the rows of what it
    /// ran; those that find no room are counted as lost.
    fn drop(&mut self) {
        self.abandon();
        self.shared.audit.count_lost(self.unsent.len());
    }
}

/// The SQL action of `statement` in the session `info` describes.
pub(super) fn session_action(info: &SessionInfo, statement: String) -> Action {
    let mut a = Action::new(Facts::Sql(SqlFacts {
        statement,
        database: info.database.clone(),
        ..SqlFacts::default()
    }))
    .with_host(info.host.clone())
    .with_credential(info.credential.clone());
    a.endpoint = Some(info.endpoint.clone());
    a.peer_ip.clone_from(&info.peer_ip);
    a
}

/// An audit row for one statement of the session `info` describes (redacted).
pub(super) fn statement_record(
    info: &SessionInfo,
    policy: &Policy,
    a: &Action,
    d: Option<&Decision>,
    outcome: &str,
    reason: &str,
) -> AuditRecord {
    let secrets = &info.secrets;
    let (method, statement) = match &a.facts {
        Facts::Sql(s) if !s.verb.is_empty() => (s.verb.clone(), s.statement.as_str()),
        Facts::Sql(s) if a.truncated => ("truncated".to_string(), s.statement.as_str()),
        Facts::Sql(s) if a.unparseable => ("unparseable".to_string(), s.statement.as_str()),
        Facts::Sql(s) => ("sql".to_string(), s.statement.as_str()),
        _ => ("sql".to_string(), ""),
    };
    AuditRecord {
        action_id: uuid::Uuid::now_v7().to_string(),
        ts_ns: now_ns(),
        mode: "pg".to_string(),
        family: "sql".to_string(),
        agent_ip: info.peer_ip.clone(),
        profile: info.profile.clone(),
        host: info.host.clone(),
        method,
        path: summary(&redact_text(statement, secrets)),
        action: outcome.to_string(),
        reason: redact_text(reason, secrets),
        extra: record_extra(a, secrets, Shared::body_storage(policy)),
        endpoint: Some(info.endpoint.clone()),
        rule: d.and_then(|d| d.rule.as_deref().map(str::to_string)),
        credential: Some(info.credential.clone()),
        ..AuditRecord::default()
    }
}

/// True for a frontend message the server may run code for (a function that changes the
/// client encoding): Query, Parse (constant folding), Bind (parameter input), Execute,
/// FunctionCall and COPY data (column input, triggers).
fn runs_code(tag: u8) -> bool {
    matches!(tag, b'Q' | b'P' | b'B' | b'E' | b'F' | b'd' | b'c' | b'f')
}

/// `d` turned into the gateway's deny of a statement that may change the client encoding.
fn encoding_deny(d: Decision, reason: String) -> Decision {
    Decision {
        verdict: Verdict::Deny,
        rule: None,
        reason,
        synthesized: true,
        log_detail: None,
        trace: None,
        ..d
    }
}

/// Deny reason of a Bind of a statement prepared before the policy reload.
fn prepared_before_reload_reason(statement: &str) -> String {
    format!(
        "prepared statement {statement:?} was prepared before the policy was reloaded (or the \
         gateway cannot tell when); prepare it again so the new policy decides it"
    )
}

/// Extended-protocol messages that are answered only at the next Sync.
fn is_extended(tag: u8) -> bool {
    matches!(tag, b'P' | b'B' | b'D' | b'E' | b'C' | b'H')
}

/// A one-line summary of a statement: whitespace collapsed, cut at [`SUMMARY_CAP`] bytes.
fn summary(statement: &str) -> String {
    let mut out = String::new();
    for word in statement.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
        if out.len() > SUMMARY_CAP {
            break;
        }
    }
    if out.len() > SUMMARY_CAP {
        let mut end = SUMMARY_CAP;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn summary_collapses_and_cuts() {
        assert_eq!(summary("SELECT  1\n FROM\tt"), "SELECT 1 FROM t");
        let long = "é".repeat(300);
        let s = summary(&long);
        assert!(s.len() <= SUMMARY_CAP_PLUS);
        assert!(s.ends_with('…'));
    }

    const SUMMARY_CAP_PLUS: usize = super::SUMMARY_CAP + 3;
}
