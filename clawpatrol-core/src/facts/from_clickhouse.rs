//! Facts and actions from ClickHouse native packets (reference §3.4, §3.5, §4.3, §4.4.3):
//! the bridge from `clawpatrol_protocols::clickhouse::native` to dispatch inputs and
//! [`Action`]s.

use clawpatrol_protocols::clickhouse::database_after;
use clawpatrol_protocols::clickhouse::native::{ClientHello, Query};

use super::action::Action;
use super::from_sql::{sql_actions, SqlDialect};
use crate::dispatch::credential::DispatchRequest;

/// What a client Hello offers to credential dispatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelloDispatch {
    /// The Hello's user name (possibly a placeholder).
    pub user: String,
    /// The Hello's default database (`""` when unset).
    pub database: String,
    /// The placeholder haystack: `user + "\0" + password`.
    pub haystack: String,
}

impl HelloDispatch {
    /// The dispatch inputs of a Hello.
    pub fn from_hello(hello: &ClientHello) -> HelloDispatch {
        HelloDispatch {
            user: hello.user.clone(),
            database: hello.database.clone(),
            haystack: hello.placeholder_haystack(),
        }
    }

    /// Runs `f` with the [`DispatchRequest`] of this Hello.
    pub fn with_request<T>(&self, f: impl FnOnce(&DispatchRequest<'_>) -> T) -> T {
        let hay = [self.haystack.as_str()];
        f(&DispatchRequest {
            haystack: &hay,
            user: Some(&self.user),
            database: Some(&self.database),
        })
    }
}

/// The SQL state of one native session: the database queries run in.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClickHouseSession {
    /// The current database: the Hello's, then moved by allowed `USE`.
    pub database: String,
}

impl ClickHouseSession {
    /// A session starting in the Hello's database.
    pub fn new(hello: &ClientHello) -> ClickHouseSession {
        ClickHouseSession {
            database: hello.database.clone(),
        }
    }

    /// The actions to decide for a Query packet (one; `truncated` when its text was cut
    /// at the inspection cap).
    pub fn query_actions(&self, query: &Query) -> Vec<Action> {
        query_actions(query, &self.database)
    }

    /// Records that `query` was allowed and forwarded (an allowed `USE db` moves the
    /// session; a truncated text never does).
    pub fn allowed(&mut self, query: &Query) {
        if !query.truncated {
            self.database = database_after(&self.database, &query.text());
        }
    }
}

/// The actions to decide for a Query packet run in `database`.
pub fn query_actions(query: &Query, database: &str) -> Vec<Action> {
    sql_actions(
        SqlDialect::ClickHouse,
        &query.text(),
        database,
        query.truncated,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Facts;
    use clawpatrol_protocols::clickhouse::native::{ClientDecoder, ClientItem, ClientPacket};

    fn hello() -> ClientHello {
        ClientHello {
            client_name: "ClickHouse client".into(),
            version_major: 25,
            version_minor: 3,
            revision: 54477,
            database: "analytics".into(),
            user: "agent".into(),
            password: "ph_abc".into(),
        }
    }

    fn query(text: &str, truncated: bool) -> Query {
        Query {
            query_id: String::new(),
            client_info: None,
            settings: Vec::new(),
            external_roles: Vec::new(),
            interserver_secret: Vec::new(),
            stage: 2,
            compression: false,
            query: text.as_bytes().to_vec(),
            truncated,
            parameters: Vec::new(),
        }
    }

    #[test]
    fn hello_dispatch_inputs() {
        let d = HelloDispatch::from_hello(&hello());
        assert_eq!(d.haystack, "agent\0ph_abc");
        d.with_request(|r| {
            assert_eq!(r.user, Some("agent"));
            assert_eq!(r.database, Some("analytics"));
            assert_eq!(r.haystack, &["agent\0ph_abc"]);
        });
    }

    #[test]
    fn query_facts_and_use_moves_the_session() {
        let mut s = ClickHouseSession::new(&hello());
        let a = s.query_actions(&query("SELECT count() FROM events WHERE x = 1", false));
        assert_eq!(a.len(), 1);
        let Facts::Sql(f) = &a[0].facts else {
            panic!("sql facts")
        };
        assert_eq!(
            (f.verb.as_str(), f.database.as_str()),
            ("select", "analytics")
        );
        assert_eq!(f.tables, vec!["events"]);
        assert_eq!(f.functions, vec!["count"]);
        s.allowed(&query("USE logs", false));
        assert_eq!(s.database, "logs");
        s.allowed(&query("USE other", true));
        assert_eq!(s.database, "logs");
    }

    #[test]
    fn truncated_query_is_flagged() {
        let a = query_actions(&query("SELECT 'xxxx", true), "db");
        assert_eq!(a.len(), 1);
        assert!(a[0].truncated);
        let Facts::Sql(f) = &a[0].facts else {
            panic!("sql facts")
        };
        assert!(f.verb.is_empty() && f.tables.is_empty());
    }

    #[test]
    fn decoded_hello_feeds_dispatch() {
        let mut b = Vec::new();
        hello().encode(&mut b);
        let mut d = ClientDecoder::default();
        d.feed(&b);
        let Ok(Some(ClientItem::Packet {
            packet: ClientPacket::Hello(h),
            ..
        })) = d.next_item()
        else {
            panic!("hello")
        };
        assert_eq!(HelloDispatch::from_hello(&h).user, "agent");
    }
}
