//! Ingress in local mode (DESIGN §3): the explicit forward proxy and the transparent TLS
//! listener, both feeding one TLS dispatcher (reference §9.3).

pub mod identity;
pub mod proxy;
pub mod splice;
pub mod tls;
pub mod transparent;
