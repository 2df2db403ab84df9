//! One MCP conversation as both transports run it: the [`Gate`], the pins
//! kept in step with the database, and the session-log records of every
//! call, refusal and filtered list. Fail closed: what cannot be logged is
//! not forwarded.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::session_log::RecordKind;

use super::gate::{FromClient, FromServer, Gate, Pending};
use super::message;
use super::pins::{PinState, Pins};
use super::record::{exchange_id, McpLog};

/// What to do with a message from the client.
#[derive(Debug)]
pub enum ClientStep {
    /// Send it to the server.
    Forward(Value),
    /// Answer the client with this (nothing for a refused notification).
    Reply(Option<Value>),
    /// A call that needs a human: the transport decides, then calls
    /// [`Conversation::decided`].
    Approval {
        /// The request.
        request: Value,
        /// The tool.
        tool: String,
        /// Its arguments (JSON text).
        arguments: String,
    },
}

/// Requests whose forwarding and answer are logged: those that act on a
/// named tool, prompt or resource.
fn logged(method: &str) -> bool {
    matches!(method, "tools/call" | "prompts/get" | "resources/read")
}

/// One conversation.
pub struct Conversation {
    gate: Gate,
    /// The gate's pins (a shared handle), kept in step with the database.
    pins: Pins,
    rec: McpLog,
    /// JSON-RPC id → exchange id of logged requests in flight.
    exchanges: HashMap<String, String>,
}

impl Conversation {
    /// A conversation through `gate`, logging to `rec`.
    pub fn new(gate: Gate, rec: McpLog) -> Self {
        Self {
            pins: gate.pins().clone(),
            gate,
            rec,
            exchanges: HashMap::new(),
        }
    }

    /// The calling agent.
    pub fn agent(&self) -> &str {
        &self.rec.agent
    }

    fn unlogged(&mut self, request: &Value) -> ClientStep {
        ClientStep::Reply(Some(self.gate.refusal(
            request,
            "the gateway cannot write its session log; nothing is forwarded unlogged",
        )))
    }

    /// Judges and logs a message from the client.
    pub async fn client(&mut self, msg: Value) -> ClientStep {
        let method = message::method(&msg).to_owned();
        let target = msg
            .pointer("/params/name")
            .or_else(|| msg.pointer("/params/uri"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if method == "tools/call" && self.pins.state(self.gate.server(), &target) != PinState::Same
        {
            // Another process may have listed or approved it meanwhile.
            if self
                .pins
                .refresh(self.gate.server(), &target)
                .await
                .is_err()
            {
                return ClientStep::Reply(Some(self.gate.refusal(
                    &msg,
                    "the gateway cannot read its tool pins; refusing the call",
                )));
            }
        }
        match self.gate.from_client(msg.clone()) {
            FromClient::Forward(m) => self.forward(m, &method, &target).await,
            FromClient::Refuse {
                reply,
                reason,
                findings,
            } => {
                let rules: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
                // What DLP refused is logged without the arguments.
                let body = if findings.is_empty() {
                    msg
                } else {
                    json!({"method": method, "params": {"name": target}})
                };
                // The refusal stands whether or not it could be logged.
                let _ = self
                    .rec
                    .write(
                        &exchange_id(),
                        RecordKind::Request,
                        (&method, &target),
                        "blocked",
                        &body,
                        json!({"reason": reason, "findings": rules}),
                    )
                    .await;
                ClientStep::Reply(reply)
            }
            FromClient::Approval {
                request,
                tool,
                arguments,
            } => ClientStep::Approval {
                request,
                tool,
                arguments,
            },
        }
    }

    async fn forward(&mut self, m: Value, method: &str, target: &str) -> ClientStep {
        if !logged(method) {
            return ClientStep::Forward(m);
        }
        let ex = exchange_id();
        let ok = self
            .rec
            .write(
                &ex,
                RecordKind::Request,
                (method, target),
                "forwarded",
                &m,
                json!({}),
            )
            .await;
        if ok.is_err() {
            return self.unlogged(&m);
        }
        if let Some(k) = message::id_key(&m) {
            self.exchanges.insert(k, ex);
        }
        ClientStep::Forward(m)
    }

    /// A human decided a held call (`reason` says why when refused).
    pub async fn decided(&mut self, request: Value, approved: bool, reason: &str) -> ClientStep {
        let tool = request
            .pointer("/params/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if approved {
            return self.forward(request, "tools/call", &tool).await;
        }
        let _ = self
            .rec
            .write(
                &exchange_id(),
                RecordKind::Request,
                ("tools/call", &tool),
                "blocked",
                &request,
                json!({"reason": reason}),
            )
            .await;
        ClientStep::Reply(Some(self.gate.refusal(&request, reason)))
    }

    /// Judges and logs a message from the server; `None` when nothing may
    /// reach the client.
    pub async fn server(&mut self, msg: Value) -> Option<Value> {
        let pending = msg
            .get("id")
            .and_then(|id| self.gate.pending(id))
            .cloned()
            .unwrap_or_default();
        let listing = pending.method == "tools/list" && msg.get("result").is_some();
        if listing && self.pins.sync().await.is_err() {
            let id = msg.get("id").cloned().unwrap_or(Value::Null);
            self.gate.forget(&msg);
            return Some(message::error(
                id,
                message::INTERNAL_ERROR,
                "the gateway cannot read its tool pins; the tool list is withheld",
            ));
        }
        let step = self.gate.from_server(msg);
        if listing {
            // New pins and changed definitions, for every other process.
            if let Err(e) = self.pins.sync().await {
                tracing::error!(error = %e, "cannot store MCP tool pins");
            }
        }
        let ex = pending_exchange(&mut self.exchanges, &step);
        let Pending { method, target } = pending;
        let (decision, message, detail) = match step {
            FromServer::Forward { message, hidden } => {
                if !hidden.is_empty() {
                    ("filtered", message, json!({"hidden": hidden}))
                } else if ex.is_some() {
                    ("delivered", message, json!({}))
                } else {
                    return Some(message);
                }
            }
            FromServer::Withhold {
                reply,
                reason,
                findings,
            } => {
                let rules: Vec<&str> = findings.iter().map(|f| f.rule.as_str()).collect();
                (
                    "blocked",
                    reply,
                    json!({"reason": reason, "findings": rules}),
                )
            }
            FromServer::Drop { reason } => {
                tracing::warn!(server = %self.gate.server(), %reason, "MCP server message dropped");
                return None;
            }
        };
        let ex = ex.unwrap_or_else(exchange_id);
        let ok = self
            .rec
            .write(
                &ex,
                RecordKind::Response,
                (&method, &target),
                decision,
                &message,
                detail,
            )
            .await;
        if ok.is_err() && decision != "blocked" {
            let id = message.get("id").cloned().unwrap_or(Value::Null);
            return Some(message::error(
                id,
                message::INTERNAL_ERROR,
                "the gateway cannot write its session log; the result is withheld",
            ));
        }
        Some(message)
    }

    /// Errors answering every request still in flight (the server is gone).
    pub fn abandon(&mut self, reason: &str) -> Vec<Value> {
        self.exchanges.clear();
        self.gate.abandon(reason)
    }
}

/// The exchange id of the request a server message answers, if logged.
fn pending_exchange(exchanges: &mut HashMap<String, String>, step: &FromServer) -> Option<String> {
    let msg = match step {
        FromServer::Forward { message, .. } => message,
        FromServer::Withhold { reply, .. } => reply,
        FromServer::Drop { .. } => return None,
    };
    if message::kind(msg) != message::Kind::Response {
        return None;
    }
    exchanges.remove(&message::id_key(msg)?)
}
