//! Integration tests of the controller: every endpoint and subcommand, good
//! and bad input, on SQLite and on PostgreSQL.

mod common;

mod audit_log;
mod bad_input;
mod chambers;
mod cli;
mod enclaves;
mod inventory;
mod join;
mod load;
mod netmap;
mod replicas;
mod service;
mod vault_policy;
