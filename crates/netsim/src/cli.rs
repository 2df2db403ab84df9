//! Command-line arguments of `netsim`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Cordon netsim: build a topology in network namespaces with the real
/// controller and nodes, and prove who can reach whom. Needs root.
#[derive(Debug, Parser)]
#[command(name = "netsim", version, about)]
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
    /// Bring a topology up, probe every pair, compare with the model.
    Run {
        /// The topology file (TOML, see configs/netsim/README.md).
        topology: PathBuf,
        /// Also write the full report as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Keep the topology running after the check, until Ctrl-C.
        #[arg(long)]
        keep: bool,
    },
    /// Run a ready-made demonstration.
    Demo {
        /// Which one.
        #[arg(value_enum, default_value_t = Demo::Isolation)]
        which: Demo,
        /// Also write the full report as JSON to this file (isolation).
        #[arg(long)]
        json: Option<PathBuf>,
        /// Test only: pass the real OpenAI key into the agent's sandbox
        /// (asc, all), to show that question 3 then fails.
        #[arg(long, hide = true)]
        test_leak_real_key: bool,
    },
    /// Attack a running topology from a compromised agent's host; every
    /// scenario must be contained.
    Attack {
        /// The topology file.
        topology: PathBuf,
        /// Also write the verdicts as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Remove what killed runs left behind (namespaces, links, processes
    /// in them, subnet locks; with --postgres also their databases).
    Clean {
        /// Also drop the throw-away databases (`nsim<PID>_…`) of dead
        /// `fault --postgres` runs, through this PostgreSQL admin URL.
        #[arg(long, env = "CORDON_NETSIM_PG", hide_env_values = true)]
        postgres: Option<String>,
    },
    /// Fault scenarios on a topology: a node killed and restarted, the
    /// controller stopped and restarted on its data dir, a lossy and slow
    /// underlay, and with --postgres a replica fail-over; each a pass/fail
    /// line with its figure.
    Fault {
        /// The topology file.
        topology: PathBuf,
        /// How long the controller stays down, seconds.
        #[arg(long, default_value_t = 60)]
        outage: u64,
        /// Also run the fail-over scenario: two controller replicas on a
        /// throw-away database created through this PostgreSQL admin URL
        /// (a role that may create databases), the first one killed.
        #[arg(long, env = "CORDON_NETSIM_PG", hide_env_values = true)]
        postgres: Option<String>,
        /// Also write the results as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Hostile input against the running daemons of the ASC demo (malformed,
    /// oversized, slow, replayed and forged), counting crashes, policy
    /// bypasses and corrupted state; each must be 0.
    Hostile {
        /// Also write the results as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Internal: the probe agent netsim runs inside each namespace.
    #[command(hide = true)]
    Agent,
}

/// The ready-made demonstrations.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Demo {
    /// Two projects on shared infrastructure: who reaches whom.
    Isolation,
    /// A sandboxed agent using the official SDKs through its enclave's ASC.
    Asc,
    /// Isolation, attacks, a controller outage and the ASC demo, answering
    /// the five evaluation questions with PASS or FAIL.
    All,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
