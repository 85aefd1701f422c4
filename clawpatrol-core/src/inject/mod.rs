//! Credential injection plans (reference §4.2): given the chosen credential, its secret and
//! the agent's request head, rewrite the head. Pure functions; the proxy does the I/O.

pub mod http;
pub mod secret;

pub use http::{inject_http, InjectError, Injected};
pub use secret::SecretMaterial;
