//! netsim's side of an agent: send requests, await their answers.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{anyhow, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::oneshot;

use crate::agent::{Answer, Op, Request};

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Answer>>>>;

/// A connection to one running agent. Dropping it closes the agent's
/// stdin, which makes the agent exit.
pub struct AgentClient {
    label: String,
    stdin: tokio::sync::Mutex<ChildStdin>,
    pending: Pending,
    next: AtomicU64,
}

impl AgentClient {
    /// Takes over the pipes of a freshly started agent.
    ///
    /// # Errors
    /// When the child has no piped stdin/stdout.
    pub fn attach(label: &str, child: &mut Child) -> Result<Self> {
        let stdin = child.stdin.take().context("agent stdin")?;
        let stdout = child.stdout.take().context("agent stdout")?;
        let pending: Pending = Arc::default();
        let p = pending.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(a) = serde_json::from_str::<Answer>(&line) {
                    let tx = p.lock().ok().and_then(|mut m| m.remove(&a.id));
                    if let Some(tx) = tx {
                        let _ = tx.send(a);
                    }
                }
            }
            // The agent is gone: fail whatever still waits.
            if let Ok(mut m) = p.lock() {
                m.clear();
            }
        });
        Ok(Self {
            label: label.to_owned(),
            stdin: tokio::sync::Mutex::new(stdin),
            pending,
            next: AtomicU64::new(1),
        })
    }

    /// Sends `op` and waits for its answer.
    ///
    /// # Errors
    /// When the agent is gone.
    pub async fn call(&self, op: Op) -> Result<Answer> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .map_err(|_| anyhow!("poisoned"))?
            .insert(id, tx);
        let mut line = serde_json::to_string(&Request { id, op })?;
        line.push('\n');
        {
            let mut w = self.stdin.lock().await;
            w.write_all(line.as_bytes())
                .await
                .with_context(|| format!("agent {} is gone", self.label))?;
            w.flush().await?;
        }
        rx.await
            .map_err(|_| anyhow!("agent {} ended without answering", self.label))
    }
}
