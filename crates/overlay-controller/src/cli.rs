//! Command-line arguments of `overlay-controller`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ipnet::Ipv4Net;
use proto::api::Provider;
use proto::{Name, Role};

/// Cordon controller: enclaves, join tokens, netmaps, vault and audit.
#[derive(Debug, Parser)]
#[command(name = "overlay-controller", version, about)]
pub struct Cli {
    /// Logging.
    #[command(flatten)]
    pub log: telemetry::LogArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller.
    Serve(ServeArgs),
    /// Manage enclaves.
    Enclave {
        /// Enclave subcommand.
        #[command(subcommand)]
        cmd: EnclaveCmd,
        /// Connection to the controller.
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Issue join tokens.
    Token {
        /// Token subcommand.
        #[command(subcommand)]
        cmd: TokenCmd,
        /// Connection to the controller.
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List and remove members.
    Member {
        /// Member subcommand.
        #[command(subcommand)]
        cmd: MemberCmd,
        /// Connection to the controller.
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Protect assets with chambers.
    Chamber {
        /// Chamber subcommand.
        #[command(subcommand)]
        cmd: ChamberCmd,
        /// Connection to the controller.
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Store provider credentials in the vault.
    Credential {
        /// Credential subcommand.
        #[command(subcommand)]
        cmd: CredentialCmd,
        /// Connection to the controller.
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Set and show enclave policies.
    Policy {
        /// Policy subcommand.
        #[command(subcommand)]
        cmd: PolicyCmd,
        /// Connection to the controller.
        #[command(flatten)]
        client: ClientArgs,
    },
    /// AI agents that nodes found on their hosts (`overlay-node discover --report`).
    Inventory {
        /// Inventory subcommand.
        #[command(subcommand)]
        cmd: InventoryCmd,
        /// Connection to the controller.
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Check the audit log.
    Audit {
        /// Audit subcommand.
        #[command(subcommand)]
        cmd: AuditCmd,
    },
}

/// `serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// HTTPS listen address.
    #[arg(long, default_value = "127.0.0.1:7443")]
    pub listen: SocketAddr,
    /// Data directory (CA, vault key, admin token, SQLite database).
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// PostgreSQL URL (postgres://…) instead of the SQLite file.
    #[arg(long, env = "CORDON_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// URL nodes reach this controller at (goes into join tokens).
    #[arg(long)]
    pub advertise_url: Option<String>,
    /// Address pool enclaves are allocated from.
    #[arg(long, default_value = "100.64.0.0/10")]
    pub pool: Ipv4Net,
    /// Plain-HTTP listen address for Prometheus `/metrics`.
    #[arg(long)]
    pub metrics_listen: Option<SocketAddr>,
    /// Most concurrent connections, long-polls included.
    #[arg(long, default_value_t = 16384)]
    pub max_connections: usize,
    /// Seconds a client may take for its TLS handshake, headers or body.
    #[arg(long, default_value_t = 10)]
    pub client_timeout: u64,
}

/// How a client subcommand reaches the controller.
#[derive(Debug, Args, Clone)]
pub struct ClientArgs {
    /// Controller URL.
    #[arg(
        long,
        global = true,
        env = "CORDON_CONTROLLER",
        default_value = "https://127.0.0.1:7443"
    )]
    pub controller: String,
    /// File holding the admin token (CORDON_ADMIN_TOKEN takes precedence).
    #[arg(long, global = true, default_value = "./data/admin.token")]
    pub admin_token_file: PathBuf,
    /// The controller's CA certificate.
    #[arg(long, global = true, default_value = "./data/ca.pem")]
    pub ca_file: PathBuf,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `enclave …`
#[derive(Debug, Subcommand)]
pub enum EnclaveCmd {
    /// Create an enclave.
    Create {
        /// Enclave name.
        name: Name,
        /// Its CIDR (allocated from the pool when absent).
        #[arg(long)]
        cidr: Option<Ipv4Net>,
        /// Keep agents of this enclave from reaching each other.
        #[arg(long)]
        no_agent_to_agent: bool,
    },
    /// List enclaves.
    List,
    /// Show one enclave and who can reach whom in it.
    Show {
        /// Enclave name.
        name: Name,
    },
    /// Delete an enclave, revoking every member.
    Delete {
        /// Enclave name.
        name: Name,
    },
}

/// `token …`
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create a join token; prints only the token.
    Create {
        /// Enclave name.
        enclave: Name,
        /// Role of the joining member.
        #[arg(long)]
        role: Role,
        /// Token lifetime (e.g. 90s, 30m, 1h, 7d).
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        ttl: u64,
        /// How many joins it allows.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// Name the member gets.
        #[arg(long)]
        name: Option<Name>,
        /// Just-in-time membership: remove the member this long after it joins.
        #[arg(long, value_parser = parse_duration)]
        member_ttl: Option<u64>,
    },
}

/// `member …`
#[derive(Debug, Subcommand)]
pub enum MemberCmd {
    /// List an enclave's members.
    List {
        /// Enclave name.
        enclave: Name,
    },
    /// Remove a member: revoked everywhere in one step.
    Remove {
        /// Enclave name.
        enclave: Name,
        /// Member name.
        member: Name,
    },
}

/// `chamber …`
#[derive(Debug, Subcommand)]
pub enum ChamberCmd {
    /// Protect an asset so only the listed members or roles reach it.
    Create {
        /// Enclave name.
        enclave: Name,
        /// Chamber name.
        name: Name,
        /// The protected asset's member name.
        #[arg(long)]
        asset: Name,
        /// Who may reach it: a member name or role:ROLE (repeatable).
        #[arg(long, num_args = 1..)]
        allow: Vec<proto::api::ChamberRule>,
    },
}

/// `credential …`
#[derive(Debug, Subcommand)]
pub enum CredentialCmd {
    /// Store a provider key read from standard input.
    Set {
        /// Credential name.
        name: Name,
        /// Provider.
        #[arg(long)]
        provider: Provider,
    },
}

/// `policy …`
#[derive(Debug, Subcommand)]
pub enum PolicyCmd {
    /// Set an enclave's policy from a TOML file.
    Set {
        /// Enclave name.
        enclave: Name,
        /// Policy file.
        file: PathBuf,
    },
    /// Show an enclave's current policy.
    Show {
        /// Enclave name.
        enclave: Name,
    },
}

/// `inventory …`
#[derive(Debug, Subcommand)]
pub enum InventoryCmd {
    /// The newest inventory of every host.
    List {
        /// Only agents that no enclave governs.
        #[arg(long)]
        unmanaged: bool,
    },
}

/// `audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Check the hash chain, reading the database directly.
    Verify {
        /// Data directory of an SQLite controller.
        #[arg(long, default_value = "./data", conflicts_with = "database_url")]
        data_dir: PathBuf,
        /// PostgreSQL URL instead.
        #[arg(long, env = "CORDON_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
}

/// Parses `90`, `90s`, `30m`, `1h`, `7d` into seconds.
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a duration like 90s, 30m, 1h or 7d");
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(bad()),
    };
    n.checked_mul(mult).filter(|v| *v > 0).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("-1h").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
