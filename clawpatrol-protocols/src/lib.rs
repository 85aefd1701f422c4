//! clawpatrol-protocols: sans-IO codecs and parsers (bytes ⇄ frames ⇄ facts).
//!
//! This crate does no network I/O and has no async runtime. Its parsers (HTTP/1.1,
//! Kubernetes paths, SQL, the Postgres v3 wire protocol, TLS ClientHello) are filled by the
//! protocol-layer work item; the crate exists so the dependency direction
//! `protocols <- core <- {test, proxy, bindings}` holds from the start.

pub mod clickhouse;
pub mod http;
pub mod k8s;
pub mod postgres;
pub mod sql;
pub mod ssh;
pub mod tls;
