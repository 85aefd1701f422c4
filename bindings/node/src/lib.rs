//! Node.js bindings of clawpatrol (napi-rs).

use napi_derive::napi;

/// The version of the clawpatrol engine inside this addon.
#[napi]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
