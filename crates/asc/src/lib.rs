//! Cordon's AI Session Controller (ASC): the gateway of an enclave. It
//! terminates the agents' LLM traffic (reverse proxy and TLS-intercepting
//! forward proxy), reads each provider's API natively ([`adapter`]),
//! applies the enclave's [`policy`] (models, tools, DLP, budgets,
//! approvals) in a pure [`pipeline`] and a [`stream`] guard, substitutes
//! the real API key on the way out ([`credential`], [`sigv4`]) and writes
//! every exchange to the hash-chained [`session_log`].

pub mod adapter;
pub mod admin;
pub mod approval;
pub mod budget;
pub mod ca;
pub mod cli;
pub mod commands;
pub mod config;
pub mod controller;
pub mod credential;
pub mod duration;
pub use proto::glob;
pub mod inspector;
pub mod mcp;
pub mod pipeline;
pub mod policy;
pub mod provider;
pub mod proxy;
pub mod run;
pub mod session_log;
pub mod sigv4;
pub mod stream;
