//! Whether a process runs inside a Cordon sandbox, and whose: the network
//! namespace `overlay-node exec` makes holds exactly `lo` and the enclave
//! interface of a membership found in a state dir — no route out but the
//! enclave. A namespace that also holds anything else (the host's own, or
//! one with a veth back to the host) governs nothing.
//!
//! The namespace is recognised by what it holds, not by its name under
//! `/var/run/netns`: that bind mount may live in another mount namespace
//! (a node started under `ip netns exec` makes it there).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::state::Membership;

/// Where state dirs live by default.
pub const STATE_ROOT: &str = "/var/lib/cordon";

/// The enclave interfaces of this host's memberships.
#[derive(Debug, Default)]
pub struct Sandboxes {
    /// Interface name → enclave.
    by_interface: BTreeMap<String, String>,
}

impl Sandboxes {
    /// The memberships in `state_dirs` and under [`STATE_ROOT`].
    pub fn find(state_dirs: &[PathBuf]) -> Self {
        let mut dirs: Vec<PathBuf> = state_dirs.to_vec();
        if let Ok(rd) = std::fs::read_dir(STATE_ROOT) {
            dirs.extend(rd.filter_map(Result::ok).map(|e| e.path()));
        }
        let by_interface = dirs
            .iter()
            .filter_map(|d| std::fs::read(d.join("membership.json")).ok())
            .filter_map(|b| serde_json::from_slice::<Membership>(&b).ok())
            .map(|m| (m.interface, m.enclave.to_string()))
            .collect();
        Self { by_interface }
    }

    /// The enclave governing a namespace whose interfaces are `ifaces`.
    pub fn enclave_of(&self, ifaces: &[String]) -> Option<String> {
        let [a, b] = ifaces else { return None };
        let iface = match (a.as_str(), b.as_str()) {
            ("lo", other) | (other, "lo") => other,
            _ => return None,
        };
        self.by_interface.get(iface).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lo_and_the_enclave_interface_count() {
        let s = Sandboxes {
            by_interface: [("cn-e".to_owned(), "e".to_owned())].into(),
        };
        let v = |l: &[&str]| l.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(s.enclave_of(&v(&["lo", "cn-e"])).as_deref(), Some("e"));
        assert_eq!(s.enclave_of(&v(&["cn-e", "lo"])).as_deref(), Some("e"));
        assert_eq!(
            s.enclave_of(&v(&["lo", "cn-e", "veth0"])),
            None,
            "a way out"
        );
        assert_eq!(s.enclave_of(&v(&["lo", "cn-other"])), None, "unknown");
        assert_eq!(s.enclave_of(&v(&["lo"])), None);
    }
}
