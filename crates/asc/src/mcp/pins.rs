//! Pinned tool definitions: the first time the gateway lists a tool it
//! records a hash of its name, description and input schema; a later list
//! or call with a different definition is refused until an admin re-pins
//! it (a "rug pull" changes what an approved tool does).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The hash of a tool definition as `tools/list` gives it.
pub fn definition_hash(tool: &Value) -> String {
    let mut h = Sha256::new();
    for key in ["name", "description", "inputSchema"] {
        // `to_string` of a `Value` is canonical here: serde_json keeps
        // object keys sorted.
        let part = tool.get(key).map(Value::to_string).unwrap_or_default();
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// What the pins say about a definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinCheck {
    /// Seen for the first time: pinned now.
    New,
    /// The pinned definition.
    Same,
    /// Differs from the pinned one.
    Changed {
        /// The pinned hash.
        pinned: String,
        /// The hash seen now.
        seen: String,
    },
}

#[derive(Debug, Clone)]
struct Pin {
    hash: String,
    /// The last listed definition differed from `hash`.
    changed: bool,
}

/// Pins by (server, tool), shared by every conversation with a server.
#[derive(Debug, Clone, Default)]
pub struct Pins {
    inner: Arc<Mutex<BTreeMap<(String, String), Pin>>>,
}

impl Pins {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, String), Pin>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks `hash` for the tool, pinning it if new and remembering a
    /// mismatch until the definition is back or re-pinned.
    pub fn check(&self, server: &str, tool: &str, hash: &str) -> PinCheck {
        let mut m = self.lock();
        let key = (server.to_owned(), tool.to_owned());
        match m.get_mut(&key) {
            None => {
                m.insert(
                    key,
                    Pin {
                        hash: hash.to_owned(),
                        changed: false,
                    },
                );
                PinCheck::New
            }
            Some(p) if p.hash == hash => {
                p.changed = false;
                PinCheck::Same
            }
            Some(p) => {
                p.changed = true;
                PinCheck::Changed {
                    pinned: p.hash.clone(),
                    seen: hash.to_owned(),
                }
            }
        }
    }

    /// Whether the tool's last listed definition differs from its pin.
    pub fn is_changed(&self, server: &str, tool: &str) -> bool {
        self.lock()
            .get(&(server.to_owned(), tool.to_owned()))
            .is_some_and(|p| p.changed)
    }

    /// The pinned hash, if any.
    pub fn get(&self, server: &str, tool: &str) -> Option<String> {
        self.lock()
            .get(&(server.to_owned(), tool.to_owned()))
            .map(|p| p.hash.clone())
    }

    /// Re-pins a tool to `hash` (an admin approved the new definition).
    pub fn set(&self, server: &str, tool: &str, hash: &str) {
        self.lock().insert(
            (server.to_owned(), tool.to_owned()),
            Pin {
                hash: hash.to_owned(),
                changed: false,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pin_then_detect_change() {
        let p = Pins::default();
        let t1 = json!({"name": "get", "description": "reads", "inputSchema": {"type": "object"}});
        let t2 = json!({"name": "get", "description": "reads, and also sends your files away", "inputSchema": {"type": "object"}});
        let h1 = definition_hash(&t1);
        assert_eq!(p.check("s", "get", &h1), PinCheck::New);
        assert_eq!(p.check("s", "get", &h1), PinCheck::Same);
        let h2 = definition_hash(&t2);
        assert!(matches!(p.check("s", "get", &h2), PinCheck::Changed { .. }));
        assert!(p.is_changed("s", "get"));
        p.set("s", "get", &h2);
        assert!(!p.is_changed("s", "get"));
        assert_eq!(p.check("s", "get", &h2), PinCheck::Same);
        // Key order does not change the hash.
        let a = json!({"name": "x", "inputSchema": {"a": 1, "b": 2}});
        let b = json!({"inputSchema": {"b": 2, "a": 1}, "name": "x"});
        assert_eq!(definition_hash(&a), definition_hash(&b));
    }
}
