//! `asc mcp-stdio --server NAME -- COMMAND …`: runs a stdio MCP server
//! behind the gate. Newline-delimited JSON-RPC is relayed both ways through
//! [`Gate`]; the server's stderr passes through; every call, refusal and
//! filtered list goes to the session log; the wrapper exits with the
//! server's exit code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use serde_json::{json, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::proxy::state::load_policy;
use crate::session_log::{RecordKind, SessionLog};

use super::gate::{FromClient, FromServer, Gate};
use super::message;
use super::pins::Pins;
use super::record::{exchange_id, McpLog};

/// Longest message accepted on either side.
pub const MAX_LINE: usize = 16 << 20;

/// Reads one line (without its newline), at most `MAX_LINE` bytes.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok((!line.is_empty()).then_some(line));
        }
        if let Some(i) = buf.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&buf[..i]);
            r.consume(i + 1);
            return Ok(Some(line));
        }
        let n = buf.len();
        line.extend_from_slice(buf);
        r.consume(n);
        if line.len() > MAX_LINE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "MCP message over 16 MiB",
            ));
        }
    }
}

/// The conversation's log and the exchange ids of calls in flight.
struct Logger {
    rec: McpLog,
    /// JSON-RPC id → exchange id of calls in flight.
    calls: Mutex<HashMap<String, String>>,
}

impl Logger {
    fn exchange_for(&self, msg: &Value) -> String {
        let id = exchange_id();
        if let Some(k) = message::id_key(msg) {
            self.calls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(k, id.clone());
        }
        id
    }

    fn exchange_of(&self, msg: &Value) -> Option<String> {
        let k = message::id_key(msg)?;
        self.calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&k)
    }
}

fn finding_rules(f: &[dlp::Finding]) -> Vec<String> {
    f.iter().map(|x| x.rule.clone()).collect()
}

/// Runs the wrapper; returns the server's exit code.
///
/// # Errors
/// When the policy has no such server, or the server cannot be started.
pub async fn run(config: &Config, server: &str, command: &[String]) -> anyhow::Result<i32> {
    let active = load_policy(&config.policy_file).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rules = active
        .policy
        .mcp
        .get(server)
        .with_context(|| {
            format!(
                "the policy has no [mcp.servers.{server}]: refusing to run an ungoverned server"
            )
        })?
        .tools
        .clone();
    let (program, args) = command
        .split_first()
        .context("no server command given after --")?;
    let log = SessionLog::open(&config.log_database).await?;
    let gate = Arc::new(Mutex::new(Gate::new(
        server,
        rules,
        Pins::default(),
        active.inspector.clone(),
    )));
    let logger = Arc::new(Logger {
        rec: McpLog {
            log,
            enclave: config.enclave.clone(),
            agent: std::env::var("CORDON_AGENT").unwrap_or_else(|_| "stdio".into()),
            server: server.to_owned(),
        },
        calls: Mutex::new(HashMap::new()),
    });
    let mut child = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {program}"))?;
    let mut server_in = child.stdin.take().context("server stdin")?;
    let server_out = child.stdout.take().context("server stdout")?;

    // Everything for the client goes through one writer, in order.
    let (to_client, mut client_rx) = mpsc::channel::<Value>(256);
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        while let Some(v) = client_rx.recv().await {
            let mut line = v.to_string().into_bytes();
            line.push(b'\n');
            if out.write_all(&line).await.is_err() || out.flush().await.is_err() {
                break;
            }
        }
    });

    let (g, l, tc) = (gate.clone(), logger.clone(), to_client.clone());
    let upstream = tokio::spawn(async move {
        let mut stdin = BufReader::new(tokio::io::stdin());
        while let Ok(Some(line)) = read_line(&mut stdin).await {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let msg: Value = match serde_json::from_slice(&line) {
                Ok(v) => v,
                Err(_) => {
                    let _ = tc
                        .send(message::error(Value::Null, -32700, "parse error"))
                        .await;
                    continue;
                }
            };
            let method = message::method(&msg).to_owned();
            let tool = msg
                .pointer("/params/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let step = g
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .from_client(msg.clone());
            match step {
                FromClient::Forward(m) => {
                    if method == "tools/call" {
                        let ex = l.exchange_for(&m);
                        l.rec
                            .write(
                                &ex,
                                RecordKind::Request,
                                (&method, &tool),
                                "forwarded",
                                &m,
                                json!({}),
                            )
                            .await;
                    }
                    let mut out = m.to_string().into_bytes();
                    out.push(b'\n');
                    if server_in.write_all(&out).await.is_err() || server_in.flush().await.is_err()
                    {
                        break;
                    }
                }
                FromClient::Refuse {
                    reply,
                    reason,
                    findings,
                } => {
                    let ex = exchange_id();
                    let detail = json!({"reason": reason, "findings": finding_rules(&findings)});
                    // The refused message is logged without its arguments
                    // when DLP refused it.
                    let body = if findings.is_empty() {
                        msg.clone()
                    } else {
                        json!({"method": method, "params": {"name": tool}})
                    };
                    l.rec
                        .write(
                            &ex,
                            RecordKind::Request,
                            (&method, &tool),
                            "blocked",
                            &body,
                            detail,
                        )
                        .await;
                    if let Some(r) = reply {
                        let _ = tc.send(r).await;
                    }
                }
                FromClient::Approval { request, tool, .. } => {
                    let reason = format!("tool `{tool}` needs a human's approval, which the stdio wrapper cannot ask for; use the gateway's HTTP endpoint");
                    let reply = g
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .refusal(&request, &reason);
                    let ex = exchange_id();
                    l.rec
                        .write(
                            &ex,
                            RecordKind::Request,
                            (&method, &tool),
                            "blocked",
                            &request,
                            json!({"reason": reason}),
                        )
                        .await;
                    let _ = tc.send(reply).await;
                }
            }
        }
        // Client gone: closing the server's stdin asks it to exit.
        drop(server_in);
    });

    let (g, l, tc) = (gate.clone(), logger.clone(), to_client);
    let downstream = tokio::spawn(async move {
        let mut out = BufReader::new(server_out);
        while let Ok(Some(line)) = read_line(&mut out).await {
            let Ok(msg) = serde_json::from_slice::<Value>(&line) else {
                tracing::warn!("the MCP server wrote a line that is not JSON; dropped");
                continue;
            };
            let (method, tool) = {
                let gate = g.lock().unwrap_or_else(|p| p.into_inner());
                let tool = msg
                    .get("id")
                    .and_then(|id| gate.pending_tool(id))
                    .map(str::to_owned);
                (
                    if tool.is_some() { "tools/call" } else { "" }.to_owned(),
                    tool.unwrap_or_default(),
                )
            };
            let step = g
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .from_server(msg.clone());
            let ex = l.exchange_of(&msg);
            match step {
                FromServer::Forward { message, hidden } => {
                    if let Some(ex) = ex {
                        l.rec
                            .write(
                                &ex,
                                RecordKind::Response,
                                (&method, &tool),
                                "delivered",
                                &message,
                                json!({}),
                            )
                            .await;
                    } else if !hidden.is_empty() {
                        let ex = exchange_id();
                        l.rec
                            .write(
                                &ex,
                                RecordKind::Response,
                                ("tools/list", ""),
                                "filtered",
                                &message,
                                json!({"hidden": hidden}),
                            )
                            .await;
                    }
                    if tc.send(message).await.is_err() {
                        break;
                    }
                }
                FromServer::Withhold {
                    reply,
                    reason,
                    findings,
                } => {
                    let ex = ex.unwrap_or_else(exchange_id);
                    let detail = json!({"reason": reason, "findings": finding_rules(&findings)});
                    l.rec
                        .write(
                            &ex,
                            RecordKind::Response,
                            (&method, &tool),
                            "blocked",
                            &reply,
                            detail,
                        )
                        .await;
                    if tc.send(reply).await.is_err() {
                        break;
                    }
                }
            }
        }
    });

    let status = child.wait().await?;
    let _ = downstream.await;
    upstream.abort();
    let _ = writer.await;
    Ok(status.code().unwrap_or(1))
}
