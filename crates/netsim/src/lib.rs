//! netsim: proves who can reach whom. It builds a topology from network
//! namespaces on an underlay in `198.18.0.0/15`, runs the real
//! `overlay-controller` and one real `overlay-node` per membership (agents
//! in their `exec` sandboxes), probes every (source, destination, service)
//! over the overlay and the underlay, and compares with what the model
//! ([`expect`]) predicts from the topology file alone.

pub mod admin;
pub mod agent;
pub mod agent_client;
pub mod asc_demo;
pub mod asc_stage;
pub mod attack;
pub mod breach;
pub mod cli;
pub mod demo;
pub mod expect;
pub mod failover;
pub mod fault;
pub mod front;
pub mod hostile;
pub mod hygiene;
pub mod impair;
pub mod lab;
pub mod lossy_link;
pub mod pg;
pub mod questions;
pub mod report;
pub mod run;
pub mod story;
pub mod topology;
pub mod transfer;
