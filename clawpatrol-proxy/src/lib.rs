//! The `clawpatrol` binary's library: the gateway (listeners, TLS interception, credential
//! injection, audit store, hot reload) and the command line.

pub mod approvals;
pub mod audit;
pub mod cli;
pub mod defaults;
pub mod http;
pub mod listen;
pub mod logging;
pub mod postgres;
pub mod reload;
pub mod runtime;
pub mod secrets;
pub mod state;
pub mod tls;
