//! The static schema of every fact field: its facet, CEL type and inspection rules.

use std::collections::BTreeMap;

/// A rule family: which facets a rule's condition may read (reference §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// `https`, `openai_codex_https` endpoints: the `http` facet.
    Http,
    /// `kubernetes` endpoints: the `http` and `k8s` facets.
    K8s,
    /// `postgres`, `clickhouse_*` endpoints: the `sql` facet.
    Sql,
    /// `ssh` endpoints: the `ssh` facet.
    Ssh,
}

impl Family {
    /// The family's name as the reference spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Http => "http",
            Family::K8s => "k8s",
            Family::Sql => "sql",
            Family::Ssh => "ssh",
        }
    }

    /// The facets whose variables a condition of this family may read.
    pub fn facets(self) -> &'static [Facet] {
        match self {
            Family::Http => &[Facet::Http],
            Family::K8s => &[Facet::Http, Facet::K8s],
            Family::Sql => &[Facet::Sql],
            Family::Ssh => &[Facet::Ssh],
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A facet: one top-level CEL variable with typed fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Facet {
    /// The `http` variable.
    Http,
    /// The `k8s` variable.
    K8s,
    /// The `sql` variable.
    Sql,
    /// The `ssh` variable.
    Ssh,
}

impl Facet {
    /// The CEL variable name of the facet.
    pub fn as_str(self) -> &'static str {
        match self {
            Facet::Http => "http",
            Facet::K8s => "k8s",
            Facet::Sql => "sql",
            Facet::Ssh => "ssh",
        }
    }

    /// The facet whose CEL variable is `name`.
    pub fn from_name(name: &str) -> Option<Facet> {
        match name {
            "http" => Some(Facet::Http),
            "k8s" => Some(Facet::K8s),
            "sql" => Some(Facet::Sql),
            "ssh" => Some(Facet::Ssh),
            _ => None,
        }
    }

    /// The fields of this facet.
    pub fn fields(self) -> impl Iterator<Item = FieldId> {
        FieldId::ALL
            .iter()
            .copied()
            .filter(move |f| f.facet() == self)
    }

    /// The field `name` of this facet.
    pub fn field(self, name: &str) -> Option<FieldId> {
        self.fields().find(|f| f.name() == name)
    }
}

/// The CEL type of a fact field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// `string`.
    String,
    /// `int`.
    Int,
    /// `list(string)`.
    StringList,
    /// `map(string, string)`.
    StringMap,
    /// `map(string, list(string))`.
    StringListMap,
    /// `dyn`: a JSON value.
    Json,
}

/// Every fact field of every facet (reference §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FieldId {
    /// `http.method`: lower-cased request method.
    HttpMethod,
    /// `http.path`: percent-decoded path without query.
    HttpPath,
    /// `http.query`: query parameters, multi-valued.
    HttpQuery,
    /// `http.headers`: request headers in canonical form.
    HttpHeaders,
    /// `http.body`: buffered request body.
    HttpBody,
    /// `http.body_json`: the body parsed as JSON, else `{}`.
    HttpBodyJson,
    /// `k8s.verb`.
    K8sVerb,
    /// `k8s.resource`.
    K8sResource,
    /// `k8s.namespace`.
    K8sNamespace,
    /// `k8s.name`.
    K8sName,
    /// `k8s.params`: first value per query key.
    K8sParams,
    /// `sql.verb`.
    SqlVerb,
    /// `sql.tables`.
    SqlTables,
    /// `sql.functions`.
    SqlFunctions,
    /// `sql.statement`: raw statement text.
    SqlStatement,
    /// `sql.database`.
    SqlDatabase,
    /// `ssh.verb`.
    SshVerb,
    /// `ssh.command`.
    SshCommand,
    /// `ssh.subsystem`.
    SshSubsystem,
    /// `ssh.forward_host`.
    SshForwardHost,
    /// `ssh.forward_port`.
    SshForwardPort,
    /// `ssh.user`.
    SshUser,
    /// `ssh.stdin`.
    SshStdin,
}

/// Static properties of one field.
#[derive(Debug, Clone, Copy)]
pub struct FieldMeta {
    /// The facet the field belongs to.
    pub facet: Facet,
    /// The snake_case field name.
    pub name: &'static str,
    /// Its CEL type.
    pub ty: FieldType,
    /// Runtime values are lower-cased (literals compared with it are lower-cased at load).
    pub lowercased: bool,
    /// Derived from a capped buffer: unknown when the action is truncated.
    pub truncatable: bool,
    /// Derived by a parser: unknown when the action is unparseable.
    pub parser_derived: bool,
}

const fn meta(
    facet: Facet,
    name: &'static str,
    ty: FieldType,
    lowercased: bool,
    truncatable: bool,
    parser_derived: bool,
) -> FieldMeta {
    FieldMeta {
        facet,
        name,
        ty,
        lowercased,
        truncatable,
        parser_derived,
    }
}

impl FieldId {
    /// Every field, in facet order.
    pub const ALL: [FieldId; 23] = [
        FieldId::HttpMethod,
        FieldId::HttpPath,
        FieldId::HttpQuery,
        FieldId::HttpHeaders,
        FieldId::HttpBody,
        FieldId::HttpBodyJson,
        FieldId::K8sVerb,
        FieldId::K8sResource,
        FieldId::K8sNamespace,
        FieldId::K8sName,
        FieldId::K8sParams,
        FieldId::SqlVerb,
        FieldId::SqlTables,
        FieldId::SqlFunctions,
        FieldId::SqlStatement,
        FieldId::SqlDatabase,
        FieldId::SshVerb,
        FieldId::SshCommand,
        FieldId::SshSubsystem,
        FieldId::SshForwardHost,
        FieldId::SshForwardPort,
        FieldId::SshUser,
        FieldId::SshStdin,
    ];

    /// The static properties of the field.
    pub const fn meta(self) -> FieldMeta {
        use Facet as F;
        use FieldType as T;
        match self {
            FieldId::HttpMethod => meta(F::Http, "method", T::String, true, false, false),
            FieldId::HttpPath => meta(F::Http, "path", T::String, false, false, false),
            FieldId::HttpQuery => meta(F::Http, "query", T::StringListMap, false, false, false),
            FieldId::HttpHeaders => meta(F::Http, "headers", T::StringListMap, false, false, false),
            FieldId::HttpBody => meta(F::Http, "body", T::String, false, true, false),
            FieldId::HttpBodyJson => meta(F::Http, "body_json", T::Json, false, true, false),
            FieldId::K8sVerb => meta(F::K8s, "verb", T::String, true, false, false),
            FieldId::K8sResource => meta(F::K8s, "resource", T::String, false, false, false),
            FieldId::K8sNamespace => meta(F::K8s, "namespace", T::String, false, false, false),
            FieldId::K8sName => meta(F::K8s, "name", T::String, false, false, false),
            FieldId::K8sParams => meta(F::K8s, "params", T::StringMap, false, false, false),
            FieldId::SqlVerb => meta(F::Sql, "verb", T::String, true, true, true),
            FieldId::SqlTables => meta(F::Sql, "tables", T::StringList, false, true, true),
            FieldId::SqlFunctions => meta(F::Sql, "functions", T::StringList, true, true, true),
            FieldId::SqlStatement => meta(F::Sql, "statement", T::String, false, true, false),
            FieldId::SqlDatabase => meta(F::Sql, "database", T::String, false, false, false),
            FieldId::SshVerb => meta(F::Ssh, "verb", T::String, true, false, false),
            FieldId::SshCommand => meta(F::Ssh, "command", T::String, false, false, false),
            FieldId::SshSubsystem => meta(F::Ssh, "subsystem", T::String, false, false, false),
            FieldId::SshForwardHost => meta(F::Ssh, "forward_host", T::String, false, false, false),
            FieldId::SshForwardPort => meta(F::Ssh, "forward_port", T::Int, false, false, false),
            FieldId::SshUser => meta(F::Ssh, "user", T::String, false, false, false),
            FieldId::SshStdin => meta(F::Ssh, "stdin", T::String, false, true, false),
        }
    }

    /// The facet of the field.
    pub const fn facet(self) -> Facet {
        self.meta().facet
    }

    /// The snake_case name of the field.
    pub const fn name(self) -> &'static str {
        self.meta().name
    }

    /// The CEL path, e.g. `http.method`.
    pub fn path(self) -> String {
        format!("{}.{}", self.facet().as_str(), self.name())
    }
}

/// Why a field's value is not known for this action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct UnknownCause {
    /// The input was cut at the inspection buffer.
    pub truncated: bool,
    /// The parser refused the input.
    pub unparseable: bool,
}

impl UnknownCause {
    /// Both causes together.
    pub fn union(self, other: UnknownCause) -> UnknownCause {
        UnknownCause {
            truncated: self.truncated || other.truncated,
            unparseable: self.unparseable || other.unparseable,
        }
    }
}

/// A field's value for one action, borrowed from the facts.
#[derive(Debug, Clone, Copy)]
pub enum FieldValue<'a> {
    /// A string.
    Str(&'a str),
    /// An integer.
    Int(i64),
    /// A list of strings.
    StrList(&'a [String]),
    /// A string → string map.
    StrMap(&'a BTreeMap<String, String>),
    /// A string → list of strings map.
    StrListMap(&'a BTreeMap<String, Vec<String>>),
    /// A JSON value.
    Json(&'a serde_json::Value),
    /// Not known for this action (truncated or unparseable input).
    Unknown(UnknownCause),
    /// The facet does not exist for this action (e.g. a k8s field on a request that is not
    /// k8s-shaped, or a field of another family): evaluation error.
    Absent,
}

/// Supplies field values to the CEL evaluator.
pub trait Activation {
    /// The value of `field` for this action.
    fn field(&self, field: FieldId) -> FieldValue<'_>;
}
