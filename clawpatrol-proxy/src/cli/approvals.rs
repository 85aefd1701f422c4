//! `clawpatrol approvals list | show ID | approve ID | deny ID [--reason R]`: decide parked
//! actions through the running gateway's management API.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::state::{self, StateDir};

/// Arguments of `approvals`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
The gateway records its management address and token in the state directory; these commands
read both from there (or take --api).

Examples:
  clawpatrol approvals list
  clawpatrol approvals show 3
  clawpatrol approvals approve 3 --by alice
  clawpatrol approvals deny 3 --reason \"merges wait for the release freeze to end\"")]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
    /// The gateway's state directory (default `$HOME/.clawpatrol`).
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    /// The management API address (default: the one the running gateway recorded).
    #[arg(long, global = true)]
    api: Option<SocketAddr>,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// List pending approvals, oldest first.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one pending approval with its facts.
    Show {
        /// The pending id.
        id: u64,
    },
    /// Approve a pending action: the parked request goes upstream.
    Approve {
        /// The pending id.
        id: u64,
        /// Who approves (recorded in the audit row).
        #[arg(long)]
        by: Option<String>,
    },
    /// Deny a pending action: the agent gets the reason.
    Deny {
        /// The pending id.
        id: u64,
        /// The reason the agent sees.
        #[arg(long)]
        reason: Option<String>,
        /// Who denies (recorded in the audit row).
        #[arg(long)]
        by: Option<String>,
    },
}

/// Why a command could not reach the gateway.
#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("state directory: {0}")]
    State(#[from] state::StateError),
    #[error("no management address recorded in `{0}`: is the gateway running? (or pass --api)")]
    NoAddr(String),
    #[error("cannot reach the management api at `{addr}`: {why}")]
    Connect {
        addr: SocketAddr,
        why: std::io::Error,
    },
    #[error("malformed response from the management api")]
    Malformed,
}

/// Runs the subcommand; exit 0 ok, 1 when the id is not pending, 2 on other errors.
pub fn run(args: Args) -> ExitCode {
    match run_inner(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("clawpatrol approvals: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_inner(args: &Args) -> Result<ExitCode, ApiError> {
    let dir = state::resolve(args.state_dir.as_deref(), None)?;
    let state = StateDir::open(&dir)?;
    let addr = match args.api {
        Some(a) => a,
        None => {
            let path = state.management_addr_path();
            std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .ok_or_else(|| ApiError::NoAddr(path.display().to_string()))?
        }
    };
    let token = state.management_token()?;
    let (status, body) = match &args.command {
        Sub::List { .. } => call(addr, &token, "GET", "/api/approvals", "")?,
        Sub::Show { id } => call(addr, &token, "GET", &format!("/api/approvals/{id}"), "")?,
        Sub::Approve { id, by } => {
            let b = serde_json::json!({"by": by.clone().unwrap_or_default()}).to_string();
            call(
                addr,
                &token,
                "POST",
                &format!("/api/approvals/{id}/approve"),
                &b,
            )?
        }
        Sub::Deny { id, reason, by } => {
            let b = serde_json::json!({
                "reason": reason.clone().unwrap_or_default(),
                "by": by.clone().unwrap_or_default(),
            })
            .to_string();
            call(
                addr,
                &token,
                "POST",
                &format!("/api/approvals/{id}/deny"),
                &b,
            )?
        }
    };
    let json: serde_json::Value = serde_json::from_str(&body).map_err(|_| ApiError::Malformed)?;
    if status != 200 {
        let why = json["error"].as_str().unwrap_or("request failed");
        eprintln!("clawpatrol approvals: {why}");
        return Ok(ExitCode::from(if status == 404 { 1 } else { 2 }));
    }
    match &args.command {
        Sub::List { json: true } => println!("{}", json["pending"]),
        Sub::List { json: false } => {
            let pending = json["pending"].as_array().cloned().unwrap_or_default();
            if pending.is_empty() {
                println!("no pending approvals");
            }
            for p in pending {
                println!(
                    "{:<5} {:<24} {:<20} {:<7} {}{}  rule={} profile={}",
                    p["id"],
                    p["approver"].as_str().unwrap_or(""),
                    p["endpoint"].as_str().unwrap_or(""),
                    p["method"].as_str().unwrap_or(""),
                    p["host"].as_str().unwrap_or(""),
                    p["path"].as_str().unwrap_or(""),
                    p["rule"].as_str().unwrap_or("-"),
                    p["profile"].as_str().unwrap_or("-"),
                );
            }
        }
        Sub::Show { .. } => {
            println!(
                "{}",
                serde_json::to_string_pretty(&json).unwrap_or_default()
            );
        }
        Sub::Approve { id, .. } => println!("approved {id}"),
        Sub::Deny { id, .. } => println!("denied {id}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// One HTTP/1.1 request to the management API; returns status and body.
fn call(
    addr: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: &str,
) -> Result<(u16, String), ApiError> {
    let connect = |why| ApiError::Connect { addr, why };
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(connect)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(connect)?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).map_err(connect)?;
    let mut raw = Vec::new();
    s.take(1 << 20).read_to_end(&mut raw).map_err(connect)?;
    let text = String::from_utf8(raw).map_err(|_| ApiError::Malformed)?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or(ApiError::Malformed)?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or(ApiError::Malformed)?;
    Ok((status, body.to_string()))
}
