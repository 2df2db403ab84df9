//! What `overlay-node discover` finds on a host: the AI agents, agent
//! frameworks, MCP servers and local models running there, and whether an
//! enclave governs each. Nodes report it with `POST /api/v1/node/inventory`;
//! admins read it with `GET /api/v1/inventory`.
//!
//! An inventory carries names, never values: environment variable *names*
//! that point at LLM APIs, command lines with anything secret-looking
//! replaced. The controller refuses fields it does not know and oversized
//! strings, so a node cannot smuggle an environment dump into its database.

use serde::{Deserialize, Serialize};

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Longest string the controller accepts in an inventory.
pub const MAX_TEXT: usize = 1024;
/// Most processes one inventory may list.
pub const MAX_AGENTS: usize = 1024;

/// What kind of agent a process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub enum AgentKind {
    /// A coding assistant in a terminal or editor (Claude Code, Codex, aider…).
    CodingAgent,
    /// An agent framework runtime (LangGraph, CrewAI, AutoGen…).
    Framework,
    /// An MCP server.
    McpServer,
    /// A local model server (Ollama, llama.cpp, vLLM…).
    LocalModel,
    /// No catalog entry matched, but it holds LLM-API environment names or
    /// talks to a Cordon gateway.
    Unclassified,
}

impl AgentKind {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::CodingAgent => "coding-agent",
            AgentKind::Framework => "framework",
            AgentKind::McpServer => "mcp-server",
            AgentKind::LocalModel => "local-model",
            AgentKind::Unclassified => "unclassified",
        }
    }
}

/// One agent-like process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AgentProcess {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Owner (user name, or the uid when it has none).
    pub user: String,
    /// Program name (printable, escaped).
    pub program: String,
    /// Command line, truncated, secret-looking arguments replaced by
    /// `<redacted>`.
    pub command: String,
    /// What it is.
    pub kind: AgentKind,
    /// The catalog entry that matched (absent when unclassified).
    pub entry: Option<String>,
    /// The entry's risk note.
    pub risk: Option<String>,
    /// LLM-API environment variable names it holds (names only).
    pub env_names: Vec<String>,
    /// TCP ports it listens on.
    pub listening: Vec<u16>,
    /// MCP servers it runs (their pids; each is listed too).
    pub mcp_children: Vec<u32>,
    /// The enclave whose sandbox it runs in; absent: no enclave governs it.
    pub enclave: Option<String>,
}

/// An AI assistant extension installed in an editor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Extension {
    /// Whose home directory it is in.
    pub user: String,
    /// Its directory name (publisher.name-version).
    pub id: String,
    /// The catalog entry that matched.
    pub entry: String,
}

/// A host's inventory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Inventory {
    /// Host name.
    pub host: String,
    /// When it was taken, Unix seconds.
    pub scanned_at: i64,
    /// Agent-like processes.
    pub agents: Vec<AgentProcess>,
    /// Editor extensions of AI assistants.
    pub extensions: Vec<Extension>,
    /// Processes that could not be read (gone mid-scan, or not permitted).
    pub unreadable: u32,
}

impl Inventory {
    /// Checks the limits a controller enforces on a reported inventory.
    ///
    /// # Errors
    /// What is over a limit.
    pub fn check_limits(&self) -> Result<(), String> {
        if self.agents.len() > MAX_AGENTS {
            return Err(format!("more than {MAX_AGENTS} agents"));
        }
        let texts = std::iter::once(&self.host)
            .chain(self.agents.iter().flat_map(|a| {
                [&a.user, &a.program, &a.command]
                    .into_iter()
                    .chain(a.entry.iter())
                    .chain(a.risk.iter())
                    .chain(a.env_names.iter())
                    .chain(a.enclave.iter())
            }))
            .chain(
                self.extensions
                    .iter()
                    .flat_map(|e| [&e.user, &e.id, &e.entry]),
            );
        for t in texts {
            if t.len() > MAX_TEXT {
                return Err(format!("a field is longer than {MAX_TEXT} bytes"));
            }
        }
        for a in &self.agents {
            if let Some(bad) = a.env_names.iter().find(|n| !is_env_name(n)) {
                return Err(format!(
                    "env_names carries `{}`, which is not a variable name",
                    bad.chars().take(40).collect::<String>()
                ));
            }
        }
        Ok(())
    }

    /// Only the agents no enclave governs.
    pub fn unmanaged(mut self) -> Self {
        self.agents.retain(|a| a.enclave.is_none());
        self
    }
}

/// The latest inventory of one host, as the controller serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct HostInventory {
    /// The enclave of the member that reported it.
    pub enclave: String,
    /// The member that reported it.
    pub member: String,
    /// When it was reported, Unix seconds.
    pub reported_at: i64,
    /// What it found.
    pub inventory: Inventory,
}

/// Whether `s` is an environment variable name (and so carries no value).
pub fn is_env_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(env: &str, enclave: Option<&str>) -> AgentProcess {
        AgentProcess {
            pid: 1,
            ppid: 0,
            user: "u".into(),
            program: "p".into(),
            command: "p".into(),
            kind: AgentKind::Unclassified,
            entry: None,
            risk: None,
            env_names: vec![env.into()],
            listening: vec![],
            mcp_children: vec![],
            enclave: enclave.map(str::to_owned),
        }
    }

    #[test]
    fn limits_refuse_values_and_oversized_fields() {
        let mut inv = Inventory {
            host: "h".into(),
            scanned_at: 0,
            agents: vec![agent("OPENAI_API_KEY", None), agent("X", Some("e"))],
            extensions: vec![],
            unreadable: 0,
        };
        assert!(inv.check_limits().is_ok());
        assert_eq!(inv.clone().unmanaged().agents.len(), 1);
        inv.agents[0].env_names = vec!["OPENAI_API_KEY=sk-live".into()];
        assert!(inv.check_limits().is_err(), "a value smuggled as a name");
        inv.agents[0].env_names = vec![];
        inv.host = "h".repeat(MAX_TEXT + 1);
        assert!(inv.check_limits().is_err());
        let text = r#"{"host":"h","scanned_at":0,"agents":[],"extensions":[],"unreadable":0,"environ":"A=1"}"#;
        assert!(
            serde_json::from_str::<Inventory>(text).is_err(),
            "unknown fields are refused"
        );
    }
}
