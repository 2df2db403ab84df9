//! MCP governance: the same policy for tools reached over the Model
//! Context Protocol. [`gate`] is the sans-IO filter of one client-server
//! conversation (hidden tools never listed and never callable, pinned tool
//! definitions, DLP on arguments and results); [`stdio`] wraps a stdio
//! server with it, [`http`] proxies streamable-HTTP servers at
//! `/mcp/<server>`.

pub mod gate;
pub mod http;
pub mod message;
pub mod pins;
pub mod record;
pub mod stdio;
