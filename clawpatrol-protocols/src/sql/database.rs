//! `sql.database` for Postgres (reference §3.5).

/// The session database of a Postgres connection from its StartupMessage parameters: the
/// `database` parameter, else the `user` parameter (as the agent sent it), else `""`.
pub fn postgres_database<'a, I>(params: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut user = None;
    for (k, v) in params {
        match k {
            "database" if !v.is_empty() => return v.to_string(),
            "user" => user = Some(v),
            _ => {}
        }
    }
    user.unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::postgres_database;

    #[test]
    fn database_then_user() {
        assert_eq!(postgres_database([("user", "u"), ("database", "d")]), "d");
        assert_eq!(postgres_database([("user", "u")]), "u");
        assert_eq!(postgres_database([("user", "u"), ("database", "")]), "u");
        assert_eq!(postgres_database([]), "");
    }
}
