//! A test-only hook, compiled into debug builds alone: extra peers read from
//! the JSON file named by `CORDON_NODE_TEST_EXTRA_PEERS` are added to every
//! netmap the node applies.
//!
//! netsim uses it to break isolation on purpose (two nodes of different
//! enclaves given each other as peers) and check that its checker reports
//! the cell as unexpected. Release builds ignore the variable entirely. It
//! grants nothing a host's root could not already do to its own node: the
//! other side must be tampered with as well for any packet to pass.

use proto::{Netmap, Peer};

/// The environment variable naming the extra-peers file.
pub const ENV: &str = "CORDON_NODE_TEST_EXTRA_PEERS";

/// `map` with the hook's extra peers appended (debug builds only).
pub fn with_extra_peers(map: &Netmap) -> Netmap {
    let mut map = map.clone();
    if cfg!(debug_assertions) {
        if let Some(path) = std::env::var_os(ENV) {
            match std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Vec<Peer>>(&b).map_err(|e| e.to_string()))
            {
                Ok(extra) => {
                    tracing::warn!(
                        peers = extra.len(),
                        "TEST HOOK: adding peers the controller did not give"
                    );
                    map.peers.extend(extra);
                }
                Err(e) => tracing::error!(error = %e, "TEST HOOK: cannot read the extra peers"),
            }
        }
    }
    map
}
