//! The Postgres verb table: parse-tree node type → `sql.verb` (reference §3.3).

use pg_query::protobuf::node::Node as N;
use pg_query::protobuf::{TransactionStmtKind, VariableSetStmt};

/// The verb of a top-level parse-tree node; `""` for statements the table does not name
/// (CREATE EXTENSION, CREATE POLICY, ALTER SYSTEM, SECURITY LABEL, …).
pub fn postgres_verb(node: &N) -> &'static str {
    match node {
        N::SelectStmt(_) => "select",
        N::InsertStmt(_) => "insert",
        N::UpdateStmt(_) => "update",
        N::DeleteStmt(_) => "delete",
        N::MergeStmt(_) => "merge",
        N::CreateStmt(_)
        | N::ViewStmt(_)
        | N::IndexStmt(_)
        | N::CreateSeqStmt(_)
        | N::CreateSchemaStmt(_)
        | N::CreateFunctionStmt(_)
        | N::CreateTrigStmt(_)
        | N::CreateEnumStmt(_)
        | N::CreateDomainStmt(_)
        | N::CreateTableAsStmt(_)
        | N::CreateRoleStmt(_)
        | N::CreatedbStmt(_) => "create",
        // Every DROP form is `drop` (the reference names DROP of any object, role, database;
        // DROP OWNED / SUBSCRIPTION / TABLESPACE / USER MAPPING are added here).
        N::DropStmt(_)
        | N::DropRoleStmt(_)
        | N::DropdbStmt(_)
        | N::DropOwnedStmt(_)
        | N::DropSubscriptionStmt(_)
        | N::DropTableSpaceStmt(_)
        | N::DropUserMappingStmt(_) => "drop",
        N::AlterTableStmt(_)
        | N::AlterSeqStmt(_)
        | N::AlterDomainStmt(_)
        | N::AlterEnumStmt(_)
        | N::AlterRoleStmt(_)
        | N::AlterRoleSetStmt(_)
        | N::AlterDatabaseStmt(_)
        | N::AlterDatabaseSetStmt(_)
        | N::AlterObjectSchemaStmt(_)
        | N::AlterOwnerStmt(_)
        | N::AlterFunctionStmt(_) => "alter",
        N::RenameStmt(_) => "rename",
        N::TruncateStmt(_) => "truncate",
        N::CommentStmt(_) => "comment",
        N::GrantStmt(_) | N::GrantRoleStmt(_) => "grant",
        N::CopyStmt(_) => "copy",
        N::VacuumStmt(v) => {
            if v.is_vacuumcmd {
                "vacuum"
            } else {
                "analyze"
            }
        }
        N::LockStmt(_) => "lock",
        N::RefreshMatViewStmt(_) => "refresh",
        N::ClusterStmt(_) => "cluster",
        N::ReindexStmt(_) => "reindex",
        N::DoStmt(_) => "do",
        N::CallStmt(_) => "call",
        N::ExplainStmt(_) => "explain",
        N::PrepareStmt(_) => "prepare",
        N::ExecuteStmt(_) => "execute",
        N::DeallocateStmt(_) => "deallocate",
        N::DeclareCursorStmt(_) => "declare",
        N::FetchStmt(f) => {
            if f.ismove {
                "move"
            } else {
                "fetch"
            }
        }
        N::ClosePortalStmt(_) => "close",
        N::ListenStmt(_) => "listen",
        N::UnlistenStmt(_) => "unlisten",
        N::NotifyStmt(_) => "notify",
        N::LoadStmt(_) => "load",
        N::CheckPointStmt(_) => "checkpoint",
        N::DiscardStmt(_) => "discard",
        N::ConstraintsSetStmt(_) => "set",
        N::TransactionStmt(t) => transaction_verb(t.kind),
        N::VariableSetStmt(s) => set_verb(s),
        N::VariableShowStmt(_) => "show",
        _ => "",
    }
}

fn transaction_verb(kind: i32) -> &'static str {
    use TransactionStmtKind as K;
    match K::try_from(kind) {
        Ok(K::TransStmtBegin | K::TransStmtStart) => "begin",
        Ok(K::TransStmtCommit | K::TransStmtCommitPrepared) => "commit",
        Ok(K::TransStmtRollback | K::TransStmtRollbackTo | K::TransStmtRollbackPrepared) => {
            "rollback"
        }
        Ok(K::TransStmtSavepoint) => "savepoint",
        Ok(K::TransStmtRelease) => "release",
        Ok(K::TransStmtPrepare) => "prepare",
        Ok(K::Undefined) | Err(_) => "",
    }
}

/// SET/RESET: `role` and `session_authorization` get their own verbs (RESET ROLE too).
fn set_verb(s: &VariableSetStmt) -> &'static str {
    match (s.name.as_str(), s.is_local) {
        ("role", false) => "set role",
        ("role", true) => "set local role",
        ("session_authorization", false) => "set session authorization",
        ("session_authorization", true) => "set local session authorization",
        _ => "set",
    }
}

/// Every verb [`postgres_verb`] can produce (besides `""` for statements it does not name),
/// sorted: a rule comparing `sql.verb` with anything else can never match on Postgres.
pub const POSTGRES_VERBS: &[&str] = &[
    "alter",
    "analyze",
    "begin",
    "call",
    "checkpoint",
    "close",
    "cluster",
    "comment",
    "commit",
    "copy",
    "create",
    "deallocate",
    "declare",
    "delete",
    "discard",
    "do",
    "drop",
    "execute",
    "explain",
    "fetch",
    "grant",
    "insert",
    "listen",
    "load",
    "lock",
    "merge",
    "move",
    "notify",
    "prepare",
    "refresh",
    "reindex",
    "release",
    "rename",
    "rollback",
    "savepoint",
    "select",
    "set",
    "set local role",
    "set local session authorization",
    "set role",
    "set session authorization",
    "show",
    "truncate",
    "unlisten",
    "update",
    "vacuum",
];

#[cfg(test)]
mod vocabulary_tests {
    use super::POSTGRES_VERBS;

    /// Each string literal the verb table returns is listed (read from this file's source, so
    /// adding a verb without listing it fails here).
    #[test]
    fn every_verb_of_the_table_is_listed() {
        let src = include_str!("verb.rs");
        let table = &src[..src.find("pub const POSTGRES_VERBS").unwrap_or(src.len())];
        for line in table.lines().filter(|l| l.contains("=> \"")) {
            let verb = line
                .split("=> \"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("");
            assert!(
                verb.is_empty() || POSTGRES_VERBS.contains(&verb),
                "{verb} missing"
            );
        }
        let mut sorted = POSTGRES_VERBS.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, POSTGRES_VERBS);
    }
}
