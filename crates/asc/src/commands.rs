//! The `log`, `pins` and `approvals` subcommands: read the log file and
//! the pins directly, decide approvals through the running ASC's admin API.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::cli::{ApprovalCmd, LogCmd, PinCmd};
use crate::config::Config;
use crate::mcp::approve;
use crate::mcp::pins::Pins;
use crate::session_log::{self, SessionLog};

/// `asc log …`; returns the exit code.
///
/// # Errors
/// When the log cannot be read.
pub async fn log(cmd: LogCmd, config: &Config) -> anyhow::Result<u8> {
    let pool = SessionLog::open_read(&config.log_database).await?;
    match cmd {
        LogCmd::Tail { n, json } => {
            for s in session_log::tail(&pool, n).await? {
                if json {
                    println!("{}", serde_json::to_string(&s)?);
                } else {
                    let r = &s.record;
                    println!(
                        "{:>6}  {}  {:<8}  {:<10} {:<9} {:<28} {:<22} {}",
                        s.seq,
                        r.exchange,
                        r.kind_str(),
                        r.agent,
                        r.provider,
                        r.model,
                        r.operation,
                        r.decision
                    );
                }
            }
            Ok(0)
        }
        LogCmd::Show { id } => {
            let recs = session_log::show(&pool, &id).await?;
            if recs.is_empty() {
                eprintln!("no exchange {id}");
                return Ok(1);
            }
            println!("{}", serde_json::to_string_pretty(&recs)?);
            Ok(0)
        }
        LogCmd::Verify => {
            let v = session_log::verify(&pool).await?;
            match v.broken_at {
                None => {
                    println!(
                        "session log intact: {} records, hash chain verified",
                        v.records
                    );
                    Ok(0)
                }
                Some(seq) => {
                    println!("session log BROKEN at record {seq} (of {})", v.records);
                    Ok(1)
                }
            }
        }
    }
}

/// `asc pins …`; returns the exit code.
///
/// # Errors
/// When the database cannot be opened.
pub async fn pins(cmd: PinCmd, config: &Config) -> anyhow::Result<u8> {
    let log = SessionLog::open(&config.log_database).await?;
    let pins = Pins::open(log.pool().clone()).await?;
    match cmd {
        PinCmd::List => {
            for p in pins.list().await? {
                let state = if p.approved == p.seen { "" } else { "CHANGED" };
                println!(
                    "{:<16} {:<32} {}  {state}",
                    p.server,
                    p.tool,
                    &p.approved[..16.min(p.approved.len())]
                );
            }
            Ok(0)
        }
        PinCmd::Approve { server, tool } => {
            let by = format!(
                "admin:{}",
                std::env::var("USER").unwrap_or_else(|_| "cli".into())
            );
            match approve::approve(&pins, &log, &config.enclave, (&server, &tool), &by).await {
                Ok(p) => {
                    println!(
                        "{server}/{tool}: definition {} approved",
                        &p.approved[..16.min(p.approved.len())]
                    );
                    Ok(0)
                }
                Err(e @ approve::ApproveError::Unknown(..)) => {
                    eprintln!("{e}");
                    Ok(1)
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// `asc approvals …` against the admin API; returns the exit code.
///
/// # Errors
/// When the admin API cannot be reached or refuses.
pub async fn approvals(cmd: ApprovalCmd, config: &Config) -> anyhow::Result<u8> {
    let addr = config
        .admin
        .ok_or_else(|| anyhow::anyhow!("listen.admin is not set in the configuration"))?;
    let token = std::fs::read_to_string(&config.admin_token_file)
        .map_err(|e| anyhow::anyhow!("{}: {e}", config.admin_token_file.display()))?;
    let (method, path) = match &cmd {
        ApprovalCmd::List => ("GET", "/api/v1/approvals".to_owned()),
        ApprovalCmd::Approve { id } => ("POST", format!("/api/v1/approvals/{id}/approve")),
        ApprovalCmd::Deny { id } => ("POST", format!("/api/v1/approvals/{id}/deny")),
    };
    let client = crate::proxy::upstream::client(&[])?;
    let req = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("authorization", format!("Bearer {}", token.trim()))
        .body(Full::new(Bytes::new()))?;
    let resp = client.request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    if !status.is_success() {
        eprintln!(
            "{}",
            v["error"]["message"].as_str().unwrap_or("request refused")
        );
        return Ok(1);
    }
    match cmd {
        ApprovalCmd::List => {
            let list = v["approvals"].as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                println!("no tool calls waiting");
            }
            for p in list {
                println!(
                    "{}  agent={} tool={} args_sha256={} policy={} expires_at={}\n    arguments: {}",
                    p["id"].as_str().unwrap_or(""),
                    p["agent"].as_str().unwrap_or(""),
                    p["tool"].as_str().unwrap_or(""),
                    &p["arguments_sha256"].as_str().unwrap_or("")[..16.min(p["arguments_sha256"].as_str().unwrap_or("").len())],
                    p["policy_version"].as_str().unwrap_or(""),
                    p["expires_at"],
                    p["arguments"].as_str().unwrap_or("")
                );
            }
        }
        ApprovalCmd::Approve { id } => println!("approved {id}"),
        ApprovalCmd::Deny { id } => println!("denied {id}"),
    }
    Ok(0)
}
