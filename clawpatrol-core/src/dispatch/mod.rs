//! Endpoint resolution by host and credential dispatch (pure functions).
