//! Typed facts per facet, the `Action` that carries them, and the field schema.

pub mod action;
pub mod from_clickhouse;
pub mod from_http;
pub mod from_sql;
pub mod from_ssh;
pub mod http;
pub mod k8s;
pub mod schema;
pub mod sql;
pub mod ssh;

pub use action::{Action, ActionError, Facts};
pub use http::HttpFacts;
pub use k8s::K8sFacts;
pub use schema::{
    Activation, Facet, Family, FieldId, FieldMeta, FieldType, FieldValue, UnknownCause,
};
pub use sql::SqlFacts;
pub use ssh::SshFacts;
