//! The ready-made demonstrations.

use crate::topology::{Topology, TopologyError};

/// The isolation demo's topology (`configs/netsim/demo-isolation.toml`).
pub const ISOLATION: &str = include_str!("../../../configs/netsim/demo-isolation.toml");

/// The isolation demo, parsed.
///
/// # Errors
/// Never for the shipped file (a test checks it).
pub fn isolation() -> Result<Topology, TopologyError> {
    Topology::parse(ISOLATION, "demo-isolation.toml")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expect;

    #[test]
    fn the_shipped_topologies_parse_and_agree_with_the_model() {
        let t = isolation().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            expect::contradictions(&t).is_empty(),
            "{:?}",
            expect::contradictions(&t)
        );
        assert!(!t.description.is_empty());
        let three = Topology::parse(
            include_str!("../../../configs/netsim/three-enclaves.toml"),
            "three-enclaves.toml",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(three.enclaves.len(), 3);
        assert!(expect::contradictions(&three).is_empty());
    }
}
