//! Default listener addresses (DESIGN §3 "Local mode": all loopback, flags and the `gateway`
//! block override them).

/// The explicit forward proxy listener when neither a flag nor `gateway.proxy_listen` sets one.
pub const DEFAULT_PROXY_LISTEN: &str = "127.0.0.1:8080";

/// The transparent TLS listener when neither a flag nor `gateway.transparent_listen` sets one.
pub const DEFAULT_TRANSPARENT_LISTEN: &str = "127.0.0.1:8443";

/// Default management API listener (loopback only).
pub const DEFAULT_MANAGEMENT_LISTEN: &str = "127.0.0.1:8081";
