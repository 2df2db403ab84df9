//! Pinned tool definitions: the first time the gateway lists a tool it
//! records a hash of its name, description and input schema; a later list
//! or call with a different definition is refused until an admin approves
//! the new one (a "rug pull" changes what an approved tool does).
//!
//! Pins live in the session-log database (table `mcp_pins`), so they
//! survive restarts and are shared by `asc serve` and every `asc
//! mcp-stdio` on the same file. The gate reads and updates an in-memory
//! copy synchronously; the transports call [`Pins::sync`] and
//! [`Pins::refresh`] around it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::SqlitePool;

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

/// What the pins say about a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinState {
    /// Never listed through the gateway: its definition is unknown.
    Unpinned,
    /// The last listed definition is the approved one.
    Same,
    /// The last listed definition differs from the approved one.
    Changed,
}

/// One pin as stored and listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pin {
    /// The MCP server's name in the policy.
    pub server: String,
    /// The tool.
    pub tool: String,
    /// The approved definition's hash.
    pub approved: String,
    /// The last listed definition's hash.
    pub seen: String,
}

impl Pin {
    fn state(&self) -> PinState {
        if self.approved == self.seen {
            PinState::Same
        } else {
            PinState::Changed
        }
    }
}

type Key = (String, String);

#[derive(Debug, Default)]
struct Cache {
    pins: BTreeMap<Key, Pin>,
    /// Changed in memory, not yet written.
    dirty: BTreeSet<Key>,
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS mcp_pins (
    server TEXT NOT NULL,
    tool TEXT NOT NULL,
    approved TEXT NOT NULL,
    seen TEXT NOT NULL,
    PRIMARY KEY (server, tool)
)";

/// Pins by (server, tool), shared by every conversation.
#[derive(Debug, Clone, Default)]
pub struct Pins {
    cache: Arc<Mutex<Cache>>,
    store: Option<SqlitePool>,
}

fn key(server: &str, tool: &str) -> Key {
    (server.to_owned(), tool.to_owned())
}

fn row(r: (String, String, String, String)) -> Pin {
    Pin {
        server: r.0,
        tool: r.1,
        approved: r.2,
        seen: r.3,
    }
}

impl Pins {
    /// Pins kept in `pool` (the session-log database), loaded now.
    ///
    /// # Errors
    /// When the table cannot be created or read.
    pub async fn open(pool: SqlitePool) -> Result<Self, sqlx::Error> {
        sqlx::query(SCHEMA).execute(&pool).await?;
        let pins = Self {
            cache: Arc::default(),
            store: Some(pool),
        };
        pins.sync().await?;
        Ok(pins)
    }

    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that the tool is listed with definition `hash`: pins it if
    /// new; returns the resulting state.
    pub fn check(&self, server: &str, tool: &str, hash: &str) -> PinState {
        let mut c = self.lock();
        let k = key(server, tool);
        let pin = c.pins.entry(k.clone()).or_insert_with(|| Pin {
            server: server.to_owned(),
            tool: tool.to_owned(),
            approved: hash.to_owned(),
            seen: String::new(),
        });
        let moved = pin.seen != hash;
        pin.seen = hash.to_owned();
        let state = pin.state();
        if moved {
            c.dirty.insert(k);
        }
        state
    }

    /// The tool's state as last known here.
    pub fn state(&self, server: &str, tool: &str) -> PinState {
        self.lock()
            .pins
            .get(&key(server, tool))
            .map_or(PinState::Unpinned, Pin::state)
    }

    /// Writes what changed here and reads back every pin (another process
    /// may have pinned or approved meanwhile). Without a store: nothing.
    ///
    /// # Errors
    /// When the database fails; the in-memory pins stay as they were.
    pub async fn sync(&self) -> Result<(), sqlx::Error> {
        let Some(pool) = &self.store else {
            return Ok(());
        };
        let dirty: Vec<Pin> = {
            let c = self.lock();
            c.dirty
                .iter()
                .filter_map(|k| c.pins.get(k).cloned())
                .collect()
        };
        if !dirty.is_empty() {
            let mut tx = pool.begin().await?;
            for p in &dirty {
                // A pin another process made first wins; only what was
                // seen is updated.
                sqlx::query(
                    "INSERT INTO mcp_pins (server, tool, approved, seen) VALUES (?, ?, ?, ?)
                     ON CONFLICT (server, tool) DO UPDATE SET seen = excluded.seen",
                )
                .bind(&p.server)
                .bind(&p.tool)
                .bind(&p.approved)
                .bind(&p.seen)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        }
        let rows: Vec<(String, String, String, String)> =
            sqlx::query_as("SELECT server, tool, approved, seen FROM mcp_pins")
                .fetch_all(pool)
                .await?;
        let mut c = self.lock();
        for p in &dirty {
            c.dirty.remove(&key(&p.server, &p.tool));
        }
        for r in rows {
            let p = row(r);
            let k = key(&p.server, &p.tool);
            if !c.dirty.contains(&k) {
                c.pins.insert(k, p);
            }
        }
        Ok(())
    }

    /// Re-reads one tool's pin (a call is about to be judged).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn refresh(&self, server: &str, tool: &str) -> Result<(), sqlx::Error> {
        let Some(pool) = &self.store else {
            return Ok(());
        };
        let r: Option<(String, String, String, String)> = sqlx::query_as(
            "SELECT server, tool, approved, seen FROM mcp_pins WHERE server = ? AND tool = ?",
        )
        .bind(server)
        .bind(tool)
        .fetch_optional(pool)
        .await?;
        let mut c = self.lock();
        let k = key(server, tool);
        if let (Some(r), false) = (r, c.dirty.contains(&k)) {
            c.pins.insert(k, row(r));
        }
        Ok(())
    }

    /// Every pin, after a [`Pins::sync`].
    ///
    /// # Errors
    /// When the database fails.
    pub async fn list(&self) -> Result<Vec<Pin>, sqlx::Error> {
        self.sync().await?;
        Ok(self.lock().pins.values().cloned().collect())
    }

    /// An admin approves the tool's last listed definition. Returns the
    /// pin as it was before, or `None` when the tool was never listed.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn approve(&self, server: &str, tool: &str) -> Result<Option<Pin>, sqlx::Error> {
        self.sync().await?;
        let Some(before) = self.lock().pins.get(&key(server, tool)).cloned() else {
            return Ok(None);
        };
        if let Some(pool) = &self.store {
            sqlx::query("UPDATE mcp_pins SET approved = seen WHERE server = ? AND tool = ?")
                .bind(server)
                .bind(tool)
                .execute(pool)
                .await?;
        }
        if let Some(p) = self.lock().pins.get_mut(&key(server, tool)) {
            p.approved = p.seen.clone();
        }
        Ok(Some(before))
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
        assert_eq!(p.state("s", "get"), PinState::Unpinned);
        assert_eq!(p.check("s", "get", &h1), PinState::Same);
        assert_eq!(p.check("s", "get", &h1), PinState::Same);
        let h2 = definition_hash(&t2);
        assert_eq!(p.check("s", "get", &h2), PinState::Changed);
        assert_eq!(p.state("s", "get"), PinState::Changed);
        // Back to the approved definition: fine again.
        assert_eq!(p.check("s", "get", &h1), PinState::Same);
        // Key order does not change the hash.
        let a = json!({"name": "x", "inputSchema": {"a": 1, "b": 2}});
        let b = json!({"inputSchema": {"b": 2, "a": 1}, "name": "x"});
        assert_eq!(definition_hash(&a), definition_hash(&b));
    }

    async fn pool(path: &std::path::Path) -> SqlitePool {
        crate::session_log::SessionLog::open(path)
            .await
            .expect("log")
            .pool()
            .clone()
    }

    #[tokio::test]
    async fn pins_persist_and_are_shared_between_processes() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("log.db");
        let a = Pins::open(pool(&path).await).await.expect("a");
        let b = Pins::open(pool(&path).await).await.expect("b");
        assert_eq!(a.check("s", "get", "h1"), PinState::Same);
        a.sync().await.expect("sync");
        // B pins a different definition later: A's pin, first, wins.
        assert_eq!(b.check("s", "get", "h2"), PinState::Same);
        b.sync().await.expect("sync");
        assert_eq!(b.state("s", "get"), PinState::Changed);
        // A learns of the change on its next refresh.
        a.refresh("s", "get").await.expect("refresh");
        assert_eq!(a.state("s", "get"), PinState::Changed);
        // An admin approves through B; A sees it, and so does a restart.
        let before = b.approve("s", "get").await.expect("approve");
        assert_eq!(before.map(|p| p.approved).as_deref(), Some("h1"));
        a.refresh("s", "get").await.expect("refresh");
        assert_eq!(a.state("s", "get"), PinState::Same);
        let c = Pins::open(pool(&path).await).await.expect("c");
        assert_eq!(c.state("s", "get"), PinState::Same);
        assert_eq!(c.check("s", "get", "h1"), PinState::Changed);
        assert_eq!(
            b.approve("s", "nope").await.expect("approve"),
            None,
            "a tool never listed cannot be approved"
        );
    }
}
