//! Command-line interface of `asc` (INTERFACE.md).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Cordon's AI Session Controller: the enclave's inspecting gateway to
/// LLM providers and MCP servers.
#[derive(Debug, Parser)]
#[command(name = "asc", version)]
pub struct Cli {
    /// Logging options.
    #[command(flatten)]
    pub log: telemetry::LogArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The configuration file option.
#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// The ASC configuration (TOML).
    #[arg(
        long,
        short,
        global = true,
        env = "ASC_CONFIG",
        default_value = "/etc/cordon/asc.toml"
    )]
    pub config: PathBuf,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the reverse and forward proxy and the admin API.
    Serve {
        /// Configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// Only check the configuration, policy and keys, then exit.
        #[arg(long)]
        check_config: bool,
    },
    /// Read the session log.
    Log {
        /// What to read.
        #[command(subcommand)]
        cmd: LogCmd,
        /// Configuration.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Run a stdio MCP server behind the policy of `[mcp.servers.NAME]`.
    McpStdio {
        /// Configuration.
        #[command(flatten)]
        config: ConfigArg,
        /// The server's name in the policy.
        #[arg(long)]
        server: String,
        /// The server command and its arguments (after `--`).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Pinned MCP tool definitions: list them, approve a changed one.
    Pins {
        /// What to do.
        #[command(subcommand)]
        cmd: PinCmd,
        /// Configuration.
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Decide tool calls held for approval.
    Approvals {
        /// What to do.
        #[command(subcommand)]
        cmd: ApprovalCmd,
        /// Configuration.
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// `asc log …`.
#[derive(Debug, Subcommand)]
pub enum LogCmd {
    /// The latest records.
    Tail {
        /// How many.
        #[arg(short, default_value_t = 20)]
        n: i64,
        /// Print whole records as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Every record of one exchange, as JSON.
    Show {
        /// The exchange id (`ex-…`).
        id: String,
    },
    /// Recompute the hash chain; exit 1 if it is broken.
    Verify,
}

/// `asc approvals …`.
#[derive(Debug, Subcommand)]
pub enum ApprovalCmd {
    /// Tool calls waiting for a decision.
    List,
    /// Let one call through.
    Approve {
        /// The approval id (`apr-…`).
        id: String,
    },
    /// Refuse one call.
    Deny {
        /// The approval id (`apr-…`).
        id: String,
    },
}

/// `asc pins …` (works on the log database, with or without a running
/// gateway; running ones pick the change up on the next call).
#[derive(Debug, Subcommand)]
pub enum PinCmd {
    /// Every pinned tool, marked CHANGED where the server now lists a
    /// different definition.
    List,
    /// Approve the definition the server lists now.
    Approve {
        /// The MCP server's name in the policy.
        server: String,
        /// The tool.
        tool: String,
    },
}
