//! `asc mcp-stdio --server NAME -- COMMAND …`: runs a stdio MCP server
//! behind the gate. Newline-delimited JSON-RPC is relayed both ways through
//! a [`Conversation`]; the server's stderr passes through; every call,
//! refusal and filtered list goes to the session log; the wrapper exits
//! with the server's exit code, answering calls still in flight with an
//! error first.

use std::sync::Arc;

use anyhow::Context;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, Mutex};

use crate::config::{Config, Source};
use crate::proxy::state::load_policy;
use crate::session_log::{Appending, SessionLog};

use super::conversation::{ClientStep, Conversation};
use super::gate::Gate;
use super::message;
use super::pins::Pins;
use super::record::McpLog;

/// Longest message accepted on either side.
pub const MAX_LINE: usize = 16 << 20;

/// One read from a newline-delimited stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A whole line, without its newline.
    Message(Vec<u8>),
    /// A line longer than [`MAX_LINE`], skipped up to its newline.
    TooLong,
    /// End of stream.
    End,
}

/// Reads one line of at most `MAX_LINE` bytes; a longer one is skipped
/// without being held in memory.
///
/// # Errors
/// When reading fails.
pub async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<Line> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = r.fill_buf().await?;
        if buf.is_empty() {
            return Ok(match (too_long, line.is_empty()) {
                (true, _) => Line::TooLong,
                (false, true) => Line::End,
                (false, false) => Line::Message(line),
            });
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        if !too_long {
            line.extend_from_slice(chunk);
            if line.len() > MAX_LINE {
                too_long = true;
                line = Vec::new();
            }
        }
        let n = done.unwrap_or(buf.len());
        r.consume(n);
        if done.is_some() {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Message(line)
            });
        }
    }
}

/// The client's side of the conversation: stdin and stdout as
/// non-blocking pipes when they are pipes (as MCP clients start servers),
/// so reads and writes go through the event loop instead of a blocking
/// thread per operation; the plain tokio handles otherwise (a terminal, a
/// file).
fn client_io() -> (
    Box<dyn tokio::io::AsyncRead + Unpin + Send>,
    Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
) {
    use std::os::fd::AsFd;
    use tokio::net::unix::pipe;
    let dup = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned().map(std::fs::File::from);
    let input: Box<dyn tokio::io::AsyncRead + Unpin + Send> =
        match dup(std::io::stdin().as_fd()).and_then(pipe::Receiver::from_file) {
            Ok(r) => Box::new(r),
            Err(_) => Box::new(tokio::io::stdin()),
        };
    let output: Box<dyn tokio::io::AsyncWrite + Unpin + Send> =
        match dup(std::io::stdout().as_fd()).and_then(pipe::Sender::from_file) {
            Ok(w) => Box::new(w),
            Err(_) => Box::new(tokio::io::stdout()),
        };
    (input, output)
}

/// Runs the wrapper; returns the server's exit code.
///
/// # Errors
/// When the policy has no such server, or the server cannot be started.
pub async fn run(config: &Config, server: &str, command: &[String]) -> anyhow::Result<i32> {
    let active = match &config.source {
        Source::File(f) => load_policy(f).map_err(|e| anyhow::anyhow!("{e}"))?,
        Source::Controller(dir) => crate::controller::fetch_policy(dir, &config.base_dir).await?,
    };
    let rules = active
        .policy
        .mcp
        .get(server)
        .with_context(|| {
            format!(
                "the policy has no [mcp.servers.{server}]: refusing to run an ungoverned server"
            )
        })?
        .clone();
    let (program, args) = command
        .split_first()
        .context("no server command given after --")?;
    // One conversation appends one record at a time and would wait for
    // each commit: journal it and commit behind.
    let log = SessionLog::open_with(&config.log_database, Appending::Journaled).await?;
    let closing = log.clone();
    let pins = Pins::open(log.pool().clone()).await?;
    let conv = Arc::new(Mutex::new(Conversation::new(
        Gate::new(server, rules, pins, active.inspector.clone()),
        McpLog {
            log,
            enclave: config.enclave.clone(),
            agent: std::env::var("CORDON_AGENT").unwrap_or_else(|_| "stdio".into()),
            server: server.to_owned(),
        },
    )));
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
    let (client_in, mut out) = client_io();
    let writer = tokio::spawn(async move {
        while let Some(v) = client_rx.recv().await {
            let mut line = v.to_string().into_bytes();
            line.push(b'\n');
            if out.write_all(&line).await.is_err() || out.flush().await.is_err() {
                break;
            }
        }
    });

    let (c, tc) = (conv.clone(), to_client.clone());
    let upstream = tokio::spawn(async move {
        let mut stdin = BufReader::new(client_in);
        loop {
            let msg = match read_line(&mut stdin).await {
                Ok(Line::Message(l)) if l.iter().all(u8::is_ascii_whitespace) => continue,
                Ok(Line::Message(l)) => match serde_json::from_slice::<Value>(&l) {
                    Ok(v) => v,
                    Err(_) => {
                        let _ = tc
                            .send(message::error(Value::Null, -32700, "parse error"))
                            .await;
                        continue;
                    }
                },
                Ok(Line::TooLong) => {
                    let e = message::error(
                        Value::Null,
                        message::INVALID_REQUEST,
                        "message over 16 MiB refused",
                    );
                    let _ = tc.send(e).await;
                    continue;
                }
                Ok(Line::End) | Err(_) => break,
            };
            let mut conv = c.lock().await;
            let step = match conv.client(msg).await {
                ClientStep::Approval { request, tool, .. } => {
                    let reason = format!("tool `{tool}` needs a human's approval, which the stdio wrapper cannot ask for; use the gateway's HTTP endpoint");
                    conv.decided(request, false, &reason).await
                }
                step => step,
            };
            drop(conv);
            match step {
                ClientStep::Forward(m) => {
                    let mut out = m.to_string().into_bytes();
                    out.push(b'\n');
                    if server_in.write_all(&out).await.is_err() || server_in.flush().await.is_err()
                    {
                        break;
                    }
                }
                ClientStep::Reply(Some(r)) => {
                    let _ = tc.send(r).await;
                }
                ClientStep::Reply(None) | ClientStep::Approval { .. } => {}
            }
        }
        // Client gone: closing the server's stdin asks it to exit.
        drop(server_in);
    });

    let (c, tc) = (conv.clone(), to_client);
    let downstream = tokio::spawn(async move {
        let mut out = BufReader::new(server_out);
        loop {
            let msg = match read_line(&mut out).await {
                Ok(Line::Message(l)) => match serde_json::from_slice::<Value>(&l) {
                    Ok(v) => v,
                    Err(_) => {
                        tracing::warn!("the MCP server wrote a line that is not JSON; dropped");
                        continue;
                    }
                },
                Ok(Line::TooLong) => {
                    tracing::warn!("the MCP server wrote a message over 16 MiB; dropped");
                    continue;
                }
                Ok(Line::End) | Err(_) => break,
            };
            let out = c.lock().await.server(msg).await;
            if let Some(m) = out {
                if tc.send(m).await.is_err() {
                    break;
                }
            }
        }
        // The server is gone: nothing in flight will be answered.
        for e in c
            .lock()
            .await
            .abandon("the MCP server exited before answering")
        {
            let _ = tc.send(e).await;
        }
    });

    let status = child.wait().await?;
    let _ = downstream.await;
    upstream.abort();
    let _ = writer.await;
    if let Err(e) = closing.close().await {
        // Left in the journal: the next process to open the log commits it.
        tracing::error!(error = %e, "session log not committed before exit");
    }
    Ok(status.code().unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_over_the_limit_are_skipped_not_held() {
        let mut input = Vec::new();
        input.extend_from_slice(b"{\"a\":1}\n");
        input.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        input.extend_from_slice(b"\n{\"b\":2}\nlast");
        let mut r = BufReader::new(&input[..]);
        assert_eq!(
            read_line(&mut r).await.ok(),
            Some(Line::Message(b"{\"a\":1}".to_vec()))
        );
        assert_eq!(read_line(&mut r).await.ok(), Some(Line::TooLong));
        assert_eq!(
            read_line(&mut r).await.ok(),
            Some(Line::Message(b"{\"b\":2}".to_vec()))
        );
        assert_eq!(
            read_line(&mut r).await.ok(),
            Some(Line::Message(b"last".to_vec()))
        );
        assert_eq!(read_line(&mut r).await.ok(), Some(Line::End));
    }
}
