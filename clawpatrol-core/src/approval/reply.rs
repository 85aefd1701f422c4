//! Parsing the judge's reply (reference §5.2).
//!
//! The reply is trimmed; its first line, lower-cased and stripped of ``.,;:!?"'` ``, must be
//! `allow` or `deny`, and the second line is the reason. A first line dressed up as
//! `**Verdict:** allow` is read the same way. Otherwise a reply that mentions `deny` and not
//! `allow` denies with the whole text as the reason, and anything else denies as
//! `ambiguous llm response: <first 200 chars>`; an empty reply denies as
//! `llm returned empty response`.
//!
//! One deliberate difference from the original: it also allowed any reply that merely
//! contained `allow` and not `deny`, so `This request is not allowed.` was an allow. Here an
//! allow needs the verdict word on the first line; everything else fails closed.

use super::truncate_chars;

/// Characters stripped from both ends of the first line.
const VERDICT_TRIM: &[char] = &['.', ',', ';', ':', '!', '?', '"', '\'', '`'];
/// Markdown decoration stripped from the first line before a second look.
const DECORATION: &[char] = &['*', '_', '#', '>', '[', ']', '(', ')'];
/// Labels a model may put before the verdict word (`Verdict: allow`).
const LABELS: &[&str] = &["verdict", "decision", "answer", "result"];
/// Most characters of a reason kept (reasons reach the agent).
pub const MAX_REASON_CHARS: usize = 1000;
/// Characters of an ambiguous reply quoted in the reason.
const AMBIGUOUS_QUOTE_CHARS: usize = 200;

/// How the verdict was read from the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// The first line is the verdict word.
    FirstLine,
    /// No verdict word on the first line; the reply mentions only `deny`.
    Mentioned,
    /// Neither: a deny.
    Ambiguous,
    /// The reply was empty: a deny.
    Empty,
}

/// A parsed judge reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JudgeReply {
    /// Whether the judge allowed.
    pub allow: bool,
    /// The reason (may be empty when the model gave none).
    pub reason: String,
    /// How the verdict was read.
    pub kind: ReplyKind,
}

impl JudgeReply {
    /// Whether the verdict is a real answer worth caching (not ambiguous or empty).
    pub fn is_definite(&self) -> bool {
        matches!(self.kind, ReplyKind::FirstLine | ReplyKind::Mentioned)
    }
}

/// Parses the judge's reply text.
pub fn parse_judge_reply(text: &str) -> JudgeReply {
    let text = text.trim();
    if text.is_empty() {
        return JudgeReply {
            allow: false,
            reason: "llm returned empty response".to_string(),
            kind: ReplyKind::Empty,
        };
    }
    let (first, rest) = match text.split_once('\n') {
        Some((f, r)) => (f, Some(r)),
        None => (text, None),
    };
    if let Some(allow) = verdict_word(first) {
        let reason = rest
            .and_then(|r| r.trim().lines().next())
            .map(|r| truncate_chars(r, MAX_REASON_CHARS))
            .unwrap_or_default();
        return JudgeReply {
            allow,
            reason,
            kind: ReplyKind::FirstLine,
        };
    }
    let lower = text.to_lowercase();
    if lower.contains("deny") && !lower.contains("allow") {
        return JudgeReply {
            allow: false,
            reason: truncate_chars(text, MAX_REASON_CHARS),
            kind: ReplyKind::Mentioned,
        };
    }
    JudgeReply {
        allow: false,
        reason: format!(
            "ambiguous llm response: {}",
            truncate_chars(text, AMBIGUOUS_QUOTE_CHARS)
        ),
        kind: ReplyKind::Ambiguous,
    }
}

/// `Some(true)` for `allow`, `Some(false)` for `deny`, read from the first line.
fn verdict_word(first: &str) -> Option<bool> {
    let plain = first.trim().to_lowercase();
    if let Some(v) = word(plain.trim_matches(VERDICT_TRIM)) {
        return Some(v);
    }
    // `**Verdict:** allow`, `# deny`, `Decision - allow`.
    let undecorated: String = plain.chars().filter(|c| !DECORATION.contains(c)).collect();
    let mut s = undecorated.trim().trim_matches(VERDICT_TRIM).trim();
    for label in LABELS {
        if let Some(rest) = s.strip_prefix(label) {
            let rest = rest.trim_start();
            if let Some(r) = rest.strip_prefix([':', '-', '=']) {
                s = r.trim();
                break;
            }
        }
    }
    word(s.trim_matches(VERDICT_TRIM).trim())
}

fn word(s: &str) -> Option<bool> {
    match s {
        "allow" => Some(true),
        "deny" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> (bool, String, ReplyKind) {
        let r = parse_judge_reply(s);
        (r.allow, r.reason, r.kind)
    }

    #[test]
    fn first_line_verdicts() {
        assert_eq!(
            p("allow\nreads only"),
            (true, "reads only".into(), ReplyKind::FirstLine)
        );
        assert_eq!(
            p("  Deny.\n  writes to prod  \n"),
            (false, "writes to prod".into(), ReplyKind::FirstLine)
        );
        assert_eq!(p("`allow`"), (true, String::new(), ReplyKind::FirstLine));
        assert_eq!(
            p("\"DENY!\"\nno"),
            (false, "no".into(), ReplyKind::FirstLine)
        );
        assert_eq!(
            p("allow\r\nok\r\nmore"),
            (true, "ok".into(), ReplyKind::FirstLine)
        );
    }

    #[test]
    fn decorated_first_line() {
        assert_eq!(
            p("**Verdict:** allow\nfine"),
            (true, "fine".into(), ReplyKind::FirstLine)
        );
        assert_eq!(
            p("# Decision - deny\nbad"),
            (false, "bad".into(), ReplyKind::FirstLine)
        );
        assert_eq!(p("**deny**"), (false, String::new(), ReplyKind::FirstLine));
    }

    #[test]
    fn mention_fallback_denies_only() {
        assert_eq!(
            p("I must deny this request."),
            (
                false,
                "I must deny this request.".into(),
                ReplyKind::Mentioned
            )
        );
        // The original allowed these; a verdict must be on the first line to allow.
        let (allow, reason, kind) = p("This request is not allowed by the policy.");
        assert!(!allow);
        assert_eq!(kind, ReplyKind::Ambiguous);
        assert_eq!(
            reason,
            "ambiguous llm response: This request is not allowed by the policy."
        );
        assert!(!p("I would allow it").0);
    }

    #[test]
    fn ambiguous_and_empty() {
        let (allow, reason, kind) = p("maybe allow, maybe deny");
        assert!(!allow);
        assert_eq!(kind, ReplyKind::Ambiguous);
        assert_eq!(reason, "ambiguous llm response: maybe allow, maybe deny");
        let long = "x".repeat(300);
        assert_eq!(
            p(&long).1,
            format!("ambiguous llm response: {}…", "x".repeat(200))
        );
        assert_eq!(
            p("  \n "),
            (
                false,
                "llm returned empty response".into(),
                ReplyKind::Empty
            )
        );
        assert!(!parse_judge_reply("").is_definite());
        assert!(parse_judge_reply("deny").is_definite());
    }

    #[test]
    fn reasons_are_capped() {
        let r = parse_judge_reply(&format!("deny\n{}", "r".repeat(5000)));
        assert_eq!(r.reason.chars().count(), MAX_REASON_CHARS + 1);
    }
}
