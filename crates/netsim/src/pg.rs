//! A throw-away PostgreSQL database for a run's controller replicas, made
//! and dropped with `psql` through an admin URL (one that may create
//! databases, e.g. the `cordon` role `scripts/setup.sh` makes).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::{bail, Context, Result};

use crate::lab::command;

/// See the module docs.
pub struct PgDatabase {
    admin_url: String,
    /// The database's name.
    pub name: String,
}

/// `url` with its host and port replaced by `addr` (when given) and its
/// database by `db`.
///
/// # Errors
/// When `url` is not `postgres[ql]://[user[:password]@]host[:port][/db][?…]`.
pub fn rewrite(url: &str, addr: Option<SocketAddr>, db: &str) -> Result<String> {
    let (scheme, rest) = url
        .split_once("://")
        .filter(|(s, _)| matches!(*s, "postgres" | "postgresql"))
        .context("a PostgreSQL URL starts with postgres://")?;
    let (before_query, query) = rest
        .split_once('?')
        .map_or((rest, None), |(a, q)| (a, Some(q)));
    let authority = before_query.split('/').next().unwrap_or_default();
    let (user, host) = authority
        .rsplit_once('@')
        .map_or((None, authority), |(u, h)| (Some(u), h));
    if host.is_empty() {
        bail!("the PostgreSQL URL names no host (netsim reaches it over TCP)");
    }
    let host = addr.map_or_else(|| host.to_owned(), |a| a.to_string());
    let mut out = format!("{scheme}://");
    if let Some(u) = user {
        out.push_str(u);
        out.push('@');
    }
    out.push_str(&host);
    out.push('/');
    out.push_str(db);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

/// The `host:port` of a PostgreSQL URL (port 5432 when absent).
///
/// # Errors
/// When it does not parse as an address.
pub fn server_addr(url: &str) -> Result<SocketAddr> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let with_port = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    };
    with_port
        .parse()
        .with_context(|| format!("{with_port} is not an IP address and port"))
}

/// Drops the databases of runs whose process is gone (`nsim<PID>_…`, as
/// [`crate::run`] names them) through `admin_url`; returns what it dropped.
///
/// # Errors
/// When `psql` cannot list the databases.
pub fn clean(admin_url: &str) -> Result<Vec<String>> {
    let names = command(
        "psql",
        &[
            admin_url,
            "-tAc",
            "SELECT datname FROM pg_database WHERE datname LIKE 'nsim%'",
        ],
    )
    .context("listing databases (is PostgreSQL running?)")?;
    let mut dropped = vec![];
    for name in names.lines().map(str::trim) {
        let Some(pid) = name
            .strip_prefix("nsim")
            .and_then(|r| r.split_once('_'))
            .map(|(pid, _)| pid)
        else {
            continue;
        };
        let plain = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if plain && crate::lab::is_dead_pid(pid) {
            drop_database(admin_url, name)?;
            dropped.push(format!("database {name}"));
        }
    }
    Ok(dropped)
}

impl PgDatabase {
    /// Creates database `name` through `admin_url`.
    ///
    /// # Errors
    /// When `psql` fails (PostgreSQL not running, no right to create).
    pub fn create(admin_url: &str, name: &str) -> Result<Self> {
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            bail!("database name {name:?}: lowercase letters, digits and _ only");
        }
        command(
            "psql",
            &[
                admin_url,
                "-qv",
                "ON_ERROR_STOP=1",
                "-c",
                &format!("CREATE DATABASE {name}"),
            ],
        )
        .context(
            "creating the run's database (is PostgreSQL running? scripts/setup.sh starts it)",
        )?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name: name.to_owned(),
        })
    }

    /// Its URL, for clients that reach the server where the admin URL says.
    ///
    /// # Errors
    /// When the admin URL does not parse.
    pub fn url(&self) -> Result<String> {
        rewrite(&self.admin_url, None, &self.name)
    }

    /// Its URL for clients that reach the server through `addr`.
    ///
    /// # Errors
    /// When the admin URL does not parse.
    pub fn url_via(&self, addr: SocketAddr) -> Result<String> {
        rewrite(&self.admin_url, Some(addr), &self.name)
    }

    /// The server's address.
    ///
    /// # Errors
    /// When the admin URL does not name one.
    pub fn server(&self) -> Result<SocketAddr> {
        server_addr(&self.admin_url)
    }

    /// Row counts of `tables`.
    ///
    /// # Errors
    /// When `psql` fails.
    pub fn row_counts(&self, tables: &[&str]) -> Result<BTreeMap<String, u64>> {
        let select = tables
            .iter()
            .map(|t| format!("'{t}', (SELECT COUNT(*) FROM {t})"))
            .collect::<Vec<_>>()
            .join(", ");
        let out = command(
            "psql",
            &[
                &self.url()?,
                "-qtAc",
                &format!("SELECT json_build_object({select})"),
            ],
        )?;
        Ok(serde_json::from_str(out.trim())?)
    }
}

/// Drops database `name` (a name this module made), closing its sessions.
fn drop_database(admin_url: &str, name: &str) -> Result<()> {
    command(
        "psql",
        &[
            admin_url,
            "-qc",
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        ],
    )
    .map(drop)
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = drop_database(&self.admin_url, &self.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_rewritten_and_addresses_read() -> Result<()> {
        let admin = "postgres://cordon:cordon@127.0.0.1:5432/postgres?sslmode=disable";
        assert_eq!(
            rewrite(admin, Some("198.18.3.1:40000".parse()?), "run1")?,
            "postgres://cordon:cordon@198.18.3.1:40000/run1?sslmode=disable"
        );
        assert_eq!(
            rewrite("postgresql://h.example:1/x", None, "y")?,
            "postgresql://h.example:1/y"
        );
        assert_eq!(server_addr(admin)?, "127.0.0.1:5432".parse()?);
        assert_eq!(
            server_addr("postgres://u@127.0.0.1/db")?,
            "127.0.0.1:5432".parse()?
        );
        assert!(rewrite("mysql://x/y", None, "z").is_err());
        assert!(rewrite("postgres:///db?host=/run/postgresql", None, "z").is_err());
        assert!(server_addr("postgres://localhost/db").is_err());
        Ok(())
    }
}
