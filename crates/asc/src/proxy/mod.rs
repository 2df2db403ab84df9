//! The async shell around the pure pipeline: listeners, the exchange
//! handler, the outbound client, the forward proxy's interception.

pub mod body;
pub mod exchange;
pub mod forward;
pub mod listen;
pub mod outbound;
pub mod respond;
pub mod state;
pub mod upstream;

pub use state::State;
