//! The stream guard: events go in as they arrive from the upstream; they
//! come out only once policy has seen everything they carry. Text is held
//! back by the DLP window (a secret split over many deltas is caught
//! before its first byte is released); a tool call is held whole until it
//! has been judged (denied tools and DLP on its arguments) or approved.

use std::collections::VecDeque;

use dlp::{Finding, StreamScanner};

use crate::adapter::error::DenyKind;
use crate::adapter::{stream_error, Operation, ToolCall, Usage};
use crate::inspector::Inspector;
use crate::policy::{ToolRules, ToolVerdict};

use super::events::{frame_meaning, sse_meaning, Meaning, ToolPiece};
use super::eventstream::FrameDecoder;
use super::sse::SseDecoder;

/// Largest single event accepted from an upstream.
pub const MAX_EVENT: usize = 4 << 20;
/// How much response text the guard keeps for the session log.
const TRANSCRIPT_CAP: usize = 1 << 20;

/// What the shell must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Send these bytes to the agent.
    Forward(Vec<u8>),
    /// Send these bytes (the provider's error event) and end the stream.
    Block {
        /// The class of denial.
        kind: DenyKind,
        /// Why (safe to show: never the matched text).
        reason: String,
        /// The error event in the provider's framing.
        event: Vec<u8>,
    },
    /// This completed tool call needs a human: call
    /// [`StreamGuard::resolve`] before anything else is released.
    Approval(ToolCall),
}

enum Framing {
    Sse(SseDecoder),
    Events(FrameDecoder),
}

struct Held {
    bytes: Vec<u8>,
    text_end: usize,
}

/// The guard of one streamed response.
pub struct StreamGuard<'e> {
    op: Operation,
    framing: Framing,
    scanner: StreamScanner<'e>,
    inspector: &'e Inspector,
    tools: ToolRules,
    held: VecDeque<Held>,
    text_total: usize,
    text_released: usize,
    open: Vec<(String, ToolCall)>,
    to_judge: VecDeque<ToolCall>,
    awaiting: bool,
    blocked: bool,
    /// Response text seen (capped), for the session log.
    pub transcript: String,
    /// Completed tool calls, for the session log.
    pub calls: Vec<ToolCall>,
    /// Usage reported (largest seen per field).
    pub usage: Option<Usage>,
    /// Findings that blocked the stream.
    pub findings: Vec<Finding>,
}

impl<'e> StreamGuard<'e> {
    /// A guard for a response of `op`.
    pub fn new(op: Operation, inspector: &'e Inspector, tools: ToolRules) -> Self {
        let framing = match op {
            Operation::BedrockConverseStream | Operation::BedrockInvokeStream => {
                Framing::Events(FrameDecoder::new(MAX_EVENT))
            }
            _ => Framing::Sse(SseDecoder::new(MAX_EVENT)),
        };
        Self {
            op,
            framing,
            scanner: StreamScanner::new(inspector.engine(), 0),
            inspector,
            tools,
            held: VecDeque::new(),
            text_total: 0,
            text_released: 0,
            open: vec![],
            to_judge: VecDeque::new(),
            awaiting: false,
            blocked: false,
            transcript: String::new(),
            calls: vec![],
            usage: None,
            findings: vec![],
        }
    }

    fn block(&mut self, kind: DenyKind, reason: String) -> Step {
        self.blocked = true;
        self.held.clear();
        Step::Block {
            event: stream_error(self.op, kind, &reason),
            kind,
            reason,
        }
    }

    fn findings_reason(&self, what: &str) -> String {
        let mut rules: Vec<&str> = self.findings.iter().map(|f| f.rule.as_str()).collect();
        rules.sort_unstable();
        rules.dedup();
        format!(
            "blocked by policy: {what} matched DLP rules {}",
            rules.join(", ")
        )
    }

    /// Adds bytes from the upstream.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Step> {
        if self.blocked {
            return vec![];
        }
        let mut out = vec![];
        let events: Result<Vec<(Vec<u8>, Meaning)>, String> = match &mut self.framing {
            Framing::Sse(d) => d.push(bytes).map_err(|e| e.to_string()).and_then(|evs| {
                evs.into_iter()
                    .map(|e| {
                        sse_meaning(self.op, &e.data)
                            .map(|m| (e.raw, m))
                            .map_err(|x| x.to_string())
                    })
                    .collect()
            }),
            Framing::Events(d) => d.push(bytes).map_err(|e| e.to_string()).and_then(|frames| {
                frames
                    .into_iter()
                    .map(|f| {
                        if f.header(":message-type") != Some("event") {
                            // Upstream exceptions pass through as they are.
                            return Ok((f.raw.clone(), Meaning::default()));
                        }
                        let ty = f.header(":event-type").unwrap_or_default().to_owned();
                        frame_meaning(self.op, &ty, &f.payload)
                            .map(|m| (f.raw, m))
                            .map_err(|x| x.to_string())
                    })
                    .collect()
            }),
        };
        match events {
            Err(e) => out.push(self.block(
                DenyKind::Upstream,
                format!("upstream stream unreadable: {e}"),
            )),
            Ok(events) => {
                for (raw, meaning) in events {
                    if let Some(step) = self.event(raw, meaning) {
                        out.push(step);
                        break;
                    }
                }
            }
        }
        if !self.blocked {
            self.release(&mut out);
        }
        out
    }

    /// Handles one event; a blocking step stops everything.
    fn event(&mut self, raw: Vec<u8>, m: Meaning) -> Option<Step> {
        if let Some(u) = m.usage {
            let cur = self.usage.unwrap_or_default();
            self.usage = Some(Usage {
                input: cur.input.max(u.input),
                output: cur.output.max(u.output),
            });
        }
        if !m.text.is_empty() {
            if self.transcript.len() < TRANSCRIPT_CAP {
                self.transcript.push_str(&m.text);
            }
            let step = self.scanner.push(m.text.as_bytes());
            self.text_released += step.release.len();
            self.text_total += m.text.len();
            if !step.findings.is_empty() {
                self.findings = step.findings;
                let reason = self.findings_reason("the response");
                return Some(self.block(DenyKind::Forbidden, reason));
            }
        }
        for piece in m.tools {
            match piece {
                ToolPiece::Start { key, name } => self.open.push((
                    key,
                    ToolCall {
                        name,
                        arguments: String::new(),
                    },
                )),
                ToolPiece::Args { key, delta } => {
                    if let Some((_, c)) = self.open.iter_mut().find(|(k, _)| *k == key) {
                        c.arguments.push_str(&delta);
                    }
                }
                ToolPiece::End { key } => {
                    if let Some(i) = self.open.iter().position(|(k, _)| *k == key) {
                        let (_, c) = self.open.remove(i);
                        self.to_judge.push_back(c);
                    }
                }
                ToolPiece::EndAll => {
                    for (_, c) in self.open.drain(..) {
                        self.to_judge.push_back(c);
                    }
                }
                ToolPiece::Whole { key, call } => {
                    if let Some(k) = key {
                        self.open.retain(|(o, _)| *o != k);
                    }
                    self.to_judge.push_back(call);
                }
            }
        }
        self.held.push_back(Held {
            bytes: raw,
            text_end: self.text_total,
        });
        self.judge()
    }

    /// Judges completed tool calls until one needs approval or blocks.
    fn judge(&mut self) -> Option<Step> {
        if self.awaiting {
            return None;
        }
        while let Some(call) = self.to_judge.pop_front() {
            self.calls.push(call.clone());
            match self.tools.verdict(&call.name) {
                ToolVerdict::Hidden => {
                    let reason = format!("blocked by policy: the model called tool `{}`, which policy does not allow", call.name);
                    return Some(self.block(DenyKind::Forbidden, reason));
                }
                verdict => {
                    let found = self.inspector.scan(call.arguments.as_bytes());
                    if !found.is_empty() {
                        self.findings = found;
                        let reason =
                            self.findings_reason(&format!("arguments of tool `{}`", call.name));
                        return Some(self.block(DenyKind::Forbidden, reason));
                    }
                    if verdict == ToolVerdict::NeedsApproval {
                        self.awaiting = true;
                        return Some(Step::Approval(call));
                    }
                }
            }
        }
        None
    }

    /// The decision on the call of the last [`Step::Approval`].
    pub fn resolve(&mut self, granted: bool, reason: &str) -> Vec<Step> {
        self.awaiting = false;
        if self.blocked {
            return vec![];
        }
        if !granted {
            return vec![self.block(DenyKind::Forbidden, reason.to_owned())];
        }
        let mut out = vec![];
        if let Some(step) = self.judge() {
            out.push(step);
        }
        if !self.blocked && !self.awaiting {
            self.release(&mut out);
        }
        out
    }

    fn release(&mut self, out: &mut Vec<Step>) {
        if self.awaiting || !self.open.is_empty() || !self.to_judge.is_empty() {
            return;
        }
        let mut bytes = vec![];
        while let Some(front) = self.held.front() {
            if front.text_end > self.text_released {
                break;
            }
            if let Some(h) = self.held.pop_front() {
                bytes.extend_from_slice(&h.bytes);
            }
        }
        if !bytes.is_empty() {
            out.push(Step::Forward(bytes));
        }
    }

    /// The upstream ended the stream: judges what is still open and
    /// releases the rest.
    pub fn finish(&mut self) -> Vec<Step> {
        if self.blocked {
            return vec![];
        }
        let mut out = vec![];
        let tail = match &mut self.framing {
            Framing::Sse(d) => match d.finish() {
                Ok(Some(e)) => match sse_meaning(self.op, &e.data) {
                    Ok(m) => Some((e.raw, m)),
                    Err(e) => {
                        return vec![self.block(
                            DenyKind::Upstream,
                            format!("upstream stream unreadable: {e}"),
                        )]
                    }
                },
                Ok(None) => None,
                Err(e) => {
                    return vec![self.block(
                        DenyKind::Upstream,
                        format!("upstream stream unreadable: {e}"),
                    )]
                }
            },
            Framing::Events(d) => match d.finish() {
                Ok(()) => None,
                Err(e) => {
                    return vec![self.block(
                        DenyKind::Upstream,
                        format!("upstream stream unreadable: {e}"),
                    )]
                }
            },
        };
        if let Some((raw, m)) = tail {
            if let Some(step) = self.event(raw, m) {
                return vec![step];
            }
        }
        let last = self.scanner.finish();
        self.text_released += last.release.len();
        if !last.findings.is_empty() {
            self.findings = last.findings;
            let reason = self.findings_reason("the response");
            return vec![self.block(DenyKind::Forbidden, reason)];
        }
        for (_, c) in std::mem::take(&mut self.open) {
            self.to_judge.push_back(c);
        }
        if let Some(step) = self.judge() {
            out.push(step);
            if self.blocked || self.awaiting {
                return out;
            }
        }
        self.text_released = self.text_total;
        self.release(&mut out);
        out
    }

    /// Whether the guard is waiting for an approval decision.
    pub fn awaiting_approval(&self) -> bool {
        self.awaiting
    }
}
