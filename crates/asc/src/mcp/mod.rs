//! MCP governance: the same policy for tools reached over the Model
//! Context Protocol. [`gate`] is the sans-IO filter of one client-server
//! conversation (hidden tools, prompts and resources never listed and
//! never reachable, pinned tool definitions, DLP on arguments and
//! results); [`conversation`] adds the pins' database and the session log;
//! [`stdio`] wraps a stdio server with it, [`http`] proxies
//! streamable-HTTP servers at `/mcp/<server>`.

pub mod approve;
pub mod conversation;
pub mod gate;
pub mod http;
pub mod message;
pub mod pins;
pub mod record;
pub mod stdio;
