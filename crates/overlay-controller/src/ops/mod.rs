//! The controller's operations, one file per domain noun. Each write runs in
//! one serialized transaction that also appends the audit record and, when
//! membership changes, the change-log row; the in-memory registry is then
//! brought up to date by replaying the log.

pub mod chamber;
pub mod credential;
pub mod enclave;
pub mod inventory;
pub mod join;
pub mod member;
pub mod netmap;
pub mod node_auth;
pub mod policy;
pub mod token;

use proto::Name;
use sqlx::AnyConnection;

use crate::error::{Error, Result};

/// The id of the enclave named `name`, or [`Error::NotFound`].
///
/// # Errors
/// [`Error::NotFound`] or storage errors.
pub async fn enclave_id(conn: &mut AnyConnection, name: &Name) -> Result<i64> {
    sqlx::query_scalar("SELECT id FROM enclaves WHERE name = $1")
        .bind(name.as_str())
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| Error::NotFound(format!("enclave {name}")))
}

/// Parses a path segment as a [`Name`], or [`Error::Invalid`].
///
/// # Errors
/// [`Error::Invalid`] naming what the segment was for.
pub fn name_param(what: &str, s: &str) -> Result<Name> {
    Name::new(s).map_err(|e| Error::Invalid(format!("{what} name {s:?}: {e}")))
}
