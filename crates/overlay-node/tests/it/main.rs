//! Real nodes in real network namespaces, joined through a real controller.
//! Needs root (CI runs as root).

mod common;
mod interop;
mod nodes;
