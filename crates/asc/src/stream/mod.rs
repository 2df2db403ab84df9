//! Streamed responses: the two framings (SSE, AWS event stream), what each
//! provider's events mean, and the guard that holds events back until
//! policy has seen them.

pub mod events;
pub mod eventstream;
pub mod guard;
pub mod sse;

pub use guard::{Step, StreamGuard};
