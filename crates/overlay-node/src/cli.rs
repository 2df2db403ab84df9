//! Command-line arguments of `overlay-node`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Cordon node: join an enclave and carry its WireGuard traffic.
#[derive(Debug, Parser)]
#[command(name = "overlay-node", version, about)]
pub struct Cli {
    /// Logging.
    #[command(flatten)]
    pub log: telemetry::LogArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Join with a token (or resume from a state dir) and run the data plane.
    Up {
        /// Join token from `overlay-controller token create`.
        #[arg(long, env = "CORDON_JOIN_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// State dir (default `/var/lib/cordon/ENCLAVE`).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Interface name (default `cn-ENCLAVE`).
        #[arg(long)]
        interface: Option<String>,
        /// UDP listen port.
        #[arg(long, default_value_t = crate::run::DEFAULT_PORT)]
        listen_port: u16,
        /// Underlay address:port peers reach this node at.
        #[arg(long)]
        endpoint: Option<SocketAddr>,
        /// Serve Prometheus metrics on this address (plain HTTP, /metrics).
        #[arg(long)]
        metrics_listen: Option<SocketAddr>,
    },
    /// Run a command in a sandbox that sees only `lo` and the enclave.
    Exec {
        /// State dir of the running node.
        #[arg(long)]
        state_dir: PathBuf,
        /// Namespace name (default `cordon-INTERFACE`).
        #[arg(long)]
        netns: Option<String>,
        /// User to run the command as (never root).
        #[arg(long, default_value = "nobody")]
        user: String,
        /// Pass a variable into the sandbox, `NAME=VALUE` or `NAME` (the
        /// operator's value); may repeat. Nothing else of the operator's
        /// environment is inherited, and credential-like (`*API_KEY*`,
        /// `*TOKEN*`, `*SECRET*`, …), proxy, endpoint, CA and Cordon
        /// variables cannot be set this way.
        #[arg(long = "env", value_name = "NAME[=VALUE]")]
        env: Vec<String>,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Inventory of the AI agents on this host: coding agents, frameworks,
    /// MCP servers, local models, and which enclave governs each.
    Discover {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// More catalog entries (TOML, the format of
        /// configs/agents.catalog.toml); may repeat.
        #[arg(long)]
        catalog: Vec<PathBuf>,
        /// Also send the inventory to the controller as this node.
        #[arg(long, requires = "state_dir")]
        report: bool,
        /// State dir of the node that reports; its sandboxes count too.
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Show the interface and its peers, like `wg show`.
    Status {
        /// State dir of the node.
        #[arg(long)]
        state_dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop the node running from a state dir.
    Down {
        /// State dir of the node.
        #[arg(long)]
        state_dir: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    /// The systemd unit in configs/ must keep matching the CLI.
    #[test]
    fn the_systemd_unit_parses() {
        let unit = include_str!("../../../configs/overlay-node@.service");
        let mut seen = 0;
        for line in unit.lines() {
            let Some(cmd) = line
                .strip_prefix("ExecStart=")
                .or_else(|| line.strip_prefix("ExecStop="))
            else {
                continue;
            };
            let args: Vec<String> = cmd
                .replace("%i", "project-a")
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            let parsed = Cli::try_parse_from(&args);
            assert!(parsed.is_ok(), "{cmd}: {:?}", parsed.err());
            seen += 1;
        }
        assert_eq!(seen, 2);
    }
}
