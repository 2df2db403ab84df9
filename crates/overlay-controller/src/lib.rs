//! The Cordon controller: the one place that decides which members form an
//! enclave and who may reach whom.
//!
//! It serves an HTTPS API to admins (enclaves, join tokens, members,
//! chambers, policies, vault) and to nodes (join, netmap long-poll,
//! gateway configuration), stores everything with sqlx on SQLite or
//! PostgreSQL, computes each member's netmap from an in-memory model kept
//! current by a change log, and records every action in a hash-chained
//! audit log. It does not carry traffic: the data plane is `overlay-node`.

pub mod api;
pub mod audit;
pub mod changes;
pub mod cli;
pub mod commands;
pub mod controller;
pub mod db;
pub mod error;
pub mod hub;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod pki;
pub mod registry;
pub mod rows;
pub mod secret;
pub mod seen;
pub mod server;
pub mod table;
pub mod vault;
