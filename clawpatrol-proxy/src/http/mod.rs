//! The HTTP(S) data path: reading requests, deciding, injecting, forwarding.

pub mod client;
pub mod conn;
pub mod io;
pub mod respond;
pub mod upstream;
