//! ClickHouse (todo).
