//! Real nodes in real network namespaces, joined through a real controller.
//! Needs root (CI runs as root).

mod common;
mod controller_faults;
mod discover;
mod interop;
mod nodes;
