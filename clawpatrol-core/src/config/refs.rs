//! The symbol table of named items and typed reference resolution (DESIGN §4.2).

use std::collections::BTreeMap;
use std::ops::Range;

use super::diag::Diagnostic;
use super::types::{kind_of_root, Kind};
use super::value::{Val, ValKind};

/// Where a named item is declared.
#[derive(Debug, Clone)]
pub(crate) struct Decl {
    /// The type label (`https`, …), or the kind keyword for rules and profiles.
    pub type_label: String,
    /// File index.
    pub file: usize,
    /// The name label's span.
    pub span: Range<usize>,
}

/// Every declared name, per kind.
#[derive(Debug, Default)]
pub(crate) struct Symbols {
    by_kind: BTreeMap<Kind, BTreeMap<String, Decl>>,
}

/// A resolved reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The root (type label, `rule`, `profile` or `builtin`).
    pub root: String,
    /// The bare name.
    pub name: String,
}

impl Resolved {
    /// `<root>.<name>`.
    pub fn typed(&self) -> String {
        format!("{}.{}", self.root, self.name)
    }
}

impl Symbols {
    /// Registers a name; returns the earlier declaration if the name is taken.
    pub fn declare(&mut self, kind: Kind, name: &str, decl: Decl) -> Result<(), Decl> {
        let names = self.by_kind.entry(kind).or_default();
        if let Some(first) = names.get(name) {
            return Err(first.clone());
        }
        names.insert(name.to_string(), decl);
        Ok(())
    }

    /// The declaration of `name` in `kind`.
    pub fn get(&self, kind: Kind, name: &str) -> Option<&Decl> {
        self.by_kind.get(&kind).and_then(|m| m.get(name))
    }

    /// The typed spelling of a declared name, e.g. `https.github`.
    pub fn typed_name(&self, kind: Kind, name: &str) -> Option<String> {
        if kind == Kind::Approver && name == "dashboard" && self.get(kind, name).is_none() {
            return Some("builtin.dashboard".to_string());
        }
        self.get(kind, name)
            .map(|d| format!("{}.{}", d.type_label, name))
    }

    fn suggest(&self, kind: Kind, name: &str) -> Option<String> {
        let names = self.by_kind.get(&kind)?;
        names
            .keys()
            .map(|n| (edit_distance(n, name), n))
            .filter(|(d, n)| *d <= 2.max(n.len() / 3) && *d > 0)
            .min()
            .and_then(|(_, n)| self.typed_name(kind, n))
    }

    /// Resolves `val` as a reference to an item of `kind`.
    pub fn resolve(&self, kind: Kind, val: &Val) -> Result<Resolved, Box<Diagnostic>> {
        self.resolve_inner(kind, val).map_err(Box::new)
    }

    // Boxed once by `resolve`; the many early returns read better unboxed.
    #[allow(clippy::result_large_err)]
    fn resolve_inner(&self, kind: Kind, val: &Val) -> Result<Resolved, Diagnostic> {
        let expected = format!("expected {} reference", kind.with_article());
        match &val.kind {
            ValKind::Traversal(parts) if parts.len() == 2 => {
                let (root, name) = (&parts[0], &parts[1]);
                let typed = format!("{root}.{name}");
                if kind == Kind::Approver && root == "builtin" {
                    if name == "dashboard" {
                        return Ok(Resolved {
                            root: root.clone(),
                            name: name.clone(),
                        });
                    }
                    return Err(
                        Diagnostic::error(format!("unknown built-in approver `{typed}`"))
                            .with_help("the only built-in approver is `builtin.dashboard`"),
                    );
                }
                match kind_of_root(root) {
                    Some(k) if k == kind => {}
                    Some(other) => {
                        let mut d = Diagnostic::error(format!(
                            "{expected}, got {} reference",
                            other.with_article()
                        ))
                        .with_detail(format!(
                            "`{typed}` refers to {} (`{root}` is {} type)",
                            other.as_str(),
                            other.with_article()
                        ));
                        if let Some(t) = self.typed_name(kind, name) {
                            d = d.with_help(format!("did you mean `{t}`?"));
                        }
                        return Err(d);
                    }
                    None => {
                        let mut d = Diagnostic::error(format!(
                            "unknown {} type `{root}` in reference `{typed}`",
                            kind.as_str()
                        ));
                        if let Some(t) = self.typed_name(kind, name) {
                            d = d.with_help(format!("write `{t}`"));
                        }
                        return Err(d);
                    }
                }
                match self.get(kind, name) {
                    Some(decl) if kind.typed() && decl.type_label != *root => {
                        Err(Diagnostic::error(format!(
                            "{} `{name}` is of type `{}`, not `{root}`",
                            kind.as_str(),
                            decl.type_label
                        ))
                        .with_help(format!("write `{}.{name}`", decl.type_label)))
                    }
                    Some(_) => Ok(Resolved {
                        root: root.clone(),
                        name: name.clone(),
                    }),
                    None => {
                        let mut d =
                            Diagnostic::error(format!("unknown {} `{typed}`", kind.as_str()))
                                .with_detail(format!(
                                    "no {} named `{name}` is declared",
                                    kind.as_str()
                                ));
                        if let Some(s) = self.suggest(kind, name) {
                            d = d.with_help(format!("did you mean `{s}`?"));
                        }
                        Err(d)
                    }
                }
            }
            ValKind::Traversal(parts) => {
                Err(
                    Diagnostic::error(format!("{expected}, got `{}`", parts.join("."))).with_help(
                        format!("a reference is `<type>.<name>`, e.g. `{}`", example(kind)),
                    ),
                )
            }
            ValKind::Var(name) => {
                let mut d = Diagnostic::error(format!(
                    "bare name `{name}` is not {} reference",
                    kind.with_article()
                ))
                .with_detail("references are typed: `<type>.<name>`");
                d = match self.typed_name(kind, name) {
                    Some(t) => d.with_help(format!("write `{t}`")),
                    None => d.with_help(format!(
                        "no {} named `{name}` is declared; a reference looks like `{}`",
                        kind.as_str(),
                        example(kind)
                    )),
                };
                Err(d)
            }
            ValKind::Str { text, .. } | ValKind::Heredoc(text) => {
                let bare = text.rsplit('.').next().unwrap_or(text);
                let mut d = Diagnostic::error(format!(
                    "quoted string where {} reference is expected",
                    kind.with_article()
                ));
                d = match self.typed_name(kind, bare) {
                    Some(t) => d.with_help(format!("drop the quotes: write `{t}`")),
                    None => d.with_help(format!(
                        "drop the quotes: a reference looks like `{}`",
                        example(kind)
                    )),
                };
                Err(d)
            }
            _ => Err(
                Diagnostic::error(format!("{expected}, got {}", val.describe()))
                    .with_help(format!("a reference looks like `{}`", example(kind))),
            ),
        }
    }
}

fn example(kind: Kind) -> &'static str {
    match kind {
        Kind::Endpoint => "https.github",
        Kind::Credential => "bearer_token.github_pat",
        Kind::Approver => "human_approver.ops",
        Kind::Tunnel => "ssh_port_forward.bastion",
        Kind::Rule => "rule.github-reads",
        Kind::Profile => "profile.default",
    }
}

/// Levenshtein distance (for did-you-mean).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
