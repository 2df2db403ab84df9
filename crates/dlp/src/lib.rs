//! Cordon DLP: finds secrets, personal data and excerpts of protected
//! documents in what agents send, fast enough to sit inline.
//!
//! [`rules`] are TOML (built-in packs `secrets` and `pii`); [`lint`] refuses
//! shapes that would make matching slow; [`engine::Engine`] compiles them
//! (one Aho-Corasick automaton for literals and keywords, each regex
//! confirmed only around its keywords or digit clusters); [`scan`] adds the
//! [`decode`]rs, the rayon batch path, streaming and redaction;
//! [`fingerprint`] winnows protected documents.

pub mod corpus;
pub mod decode;
pub mod engine;
pub mod finding;
pub mod fingerprint;
pub mod hold;
mod lead;
pub mod lint;
pub mod rules;
pub mod scan;
mod swar;
pub mod validate;

pub use engine::Engine;
pub use finding::Finding;
pub use scan::{redact, StreamScanner, StreamStep};
