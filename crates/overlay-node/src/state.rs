//! The state dir: what a node needs to come back after a restart with the
//! same identity, and to keep forwarding while the controller is away.
//!
//! `private.key`, `node.token` and an agent's `substitute.key` are 0600; `membership.json` and
//! `netmap.json` are written atomically (temporary file, then rename), so a
//! crash never leaves half a file.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use boringtun::x25519::StaticSecret;
use ipnet::Ipv4Net;
use proto::{Name, Netmap};
use serde::{Deserialize, Serialize};

/// Why the state dir could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing a file failed.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    /// A file is not what the node wrote.
    #[error("{0} is corrupt ({1}); remove the state dir and join again with a new token")]
    Corrupt(PathBuf, String),
    /// A secret file is readable by others.
    #[error("{0} is readable by group or others; run chmod 600 on it")]
    Permissions(PathBuf),
    /// There is no membership to resume.
    #[error("{0} holds no membership: run `overlay-node up --token …` first")]
    NotJoined(PathBuf),
}

/// What the node learned when it joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Membership {
    /// Controller API URL.
    pub controller: String,
    /// Pinned CA fingerprint.
    pub ca_sha256: String,
    /// Enclave name.
    pub enclave: Name,
    /// Member name.
    pub member: Name,
    /// Overlay address.
    pub address: Ipv4Net,
    /// Enclave CIDR.
    pub cidr: Ipv4Net,
    /// TUN interface name.
    pub interface: String,
    /// UDP listen port.
    pub listen_port: u16,
    /// Underlay endpoint reported to the controller.
    pub endpoint: Option<String>,
}

/// A state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), StateError> {
    let tmp = path.with_extension("tmp");
    let io = |e| StateError::Io(path.to_path_buf(), e);
    let _ = std::fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

impl StateDir {
    /// The state dir at `path` (created 0700 if missing).
    ///
    /// # Errors
    /// [`StateError::Io`] if it cannot be created.
    pub fn open(path: &Path) -> Result<Self, StateError> {
        std::fs::create_dir_all(path).map_err(|e| StateError::Io(path.to_path_buf(), e))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| StateError::Io(path.to_path_buf(), e))?;
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn read_secret(&self, name: &str) -> Result<String, StateError> {
        let p = self.file(name);
        let meta = std::fs::metadata(&p).map_err(|e| StateError::Io(p.clone(), e))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(StateError::Permissions(p));
        }
        let s = std::fs::read_to_string(&p).map_err(|e| StateError::Io(p.clone(), e))?;
        Ok(s.trim().to_owned())
    }

    /// Whether a membership was saved here.
    pub fn is_joined(&self) -> bool {
        self.file("membership.json").exists()
    }

    /// Saves the identity and membership after a successful join.
    ///
    /// # Errors
    /// [`StateError::Io`].
    pub fn save_join(
        &self,
        key: &StaticSecret,
        node_token: &str,
        m: &Membership,
    ) -> Result<(), StateError> {
        write_atomic(
            &self.file("private.key"),
            STANDARD.encode(key.to_bytes()).as_bytes(),
            0o600,
        )?;
        write_atomic(&self.file("node.token"), node_token.as_bytes(), 0o600)?;
        self.save_membership(m)
    }

    /// Saves the substitute key an agent member got at join (0600).
    ///
    /// # Errors
    /// [`StateError::Io`].
    pub fn save_substitute_key(&self, key: &str) -> Result<(), StateError> {
        write_atomic(&self.file("substitute.key"), key.as_bytes(), 0o600)
    }

    /// The substitute key, if this member is an agent.
    ///
    /// # Errors
    /// [`StateError::Permissions`] when the file is readable by others,
    /// [`StateError::Io`].
    pub fn load_substitute_key(&self) -> Result<Option<String>, StateError> {
        if !self.file("substitute.key").exists() {
            return Ok(None);
        }
        self.read_secret("substitute.key").map(Some)
    }

    /// Saves the membership description.
    ///
    /// # Errors
    /// [`StateError::Io`].
    pub fn save_membership(&self, m: &Membership) -> Result<(), StateError> {
        let json = serde_json::to_vec_pretty(m)
            .map_err(|e| StateError::Corrupt(self.file("membership.json"), e.to_string()))?;
        write_atomic(&self.file("membership.json"), &json, 0o600)
    }

    /// Loads the identity, node token and membership.
    ///
    /// # Errors
    /// [`StateError::NotJoined`], [`StateError::Corrupt`], [`StateError::Permissions`].
    pub fn load(&self) -> Result<(StaticSecret, String, Membership), StateError> {
        if !self.is_joined() {
            return Err(StateError::NotJoined(self.path.clone()));
        }
        let kp = self.file("private.key");
        let key: [u8; 32] = STANDARD
            .decode(self.read_secret("private.key")?)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| StateError::Corrupt(kp, "not base64 of 32 bytes".into()))?;
        let token = self.read_secret("node.token")?;
        if token.is_empty() {
            return Err(StateError::Corrupt(self.file("node.token"), "empty".into()));
        }
        let mp = self.file("membership.json");
        let text = std::fs::read(&mp).map_err(|e| StateError::Io(mp.clone(), e))?;
        let m: Membership =
            serde_json::from_slice(&text).map_err(|e| StateError::Corrupt(mp, e.to_string()))?;
        Ok((StaticSecret::from(key), token, m))
    }

    /// Saves the last netmap.
    ///
    /// # Errors
    /// [`StateError::Io`].
    pub fn save_netmap(&self, n: &Netmap) -> Result<(), StateError> {
        let json = serde_json::to_vec(n)
            .map_err(|e| StateError::Corrupt(self.file("netmap.json"), e.to_string()))?;
        write_atomic(&self.file("netmap.json"), &json, 0o600)
    }

    /// The last netmap saved, if any; a corrupt one is reported, not used.
    ///
    /// # Errors
    /// [`StateError::Corrupt`].
    pub fn load_netmap(&self) -> Result<Option<Netmap>, StateError> {
        let p = self.file("netmap.json");
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| StateError::Corrupt(p, e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StateError::Io(p, e)),
        }
    }

    /// Forgets the membership after the controller revoked it: the node
    /// token and netmap are deleted so nothing can resume it.
    pub fn forget(&self) {
        for f in [
            "node.token",
            "substitute.key",
            "netmap.json",
            "membership.json",
            "private.key",
        ] {
            let _ = std::fs::remove_file(self.file(f));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn membership() -> Membership {
        Membership {
            controller: "https://127.0.0.1:7443".into(),
            ca_sha256: "ab".repeat(32),
            enclave: Name::new("e").unwrap_or_else(|_| unreachable!()),
            member: Name::new("m").unwrap_or_else(|_| unreachable!()),
            address: "100.64.0.1/32".parse().unwrap_or_else(|_| unreachable!()),
            cidr: "100.64.0.0/24".parse().unwrap_or_else(|_| unreachable!()),
            interface: "cn-e".into(),
            listen_port: 51820,
            endpoint: None,
        }
    }

    #[test]
    fn round_trips_with_private_files() -> Result<(), StateError> {
        let dir = tempfile::tempdir().map_err(|e| StateError::Io(PathBuf::new(), e))?;
        let s = StateDir::open(dir.path())?;
        assert!(matches!(s.load(), Err(StateError::NotJoined(_))));
        let key = StaticSecret::random_from_rng(rand::rngs::OsRng);
        s.save_join(&key, "cn1.1.secret", &membership())?;
        let (k2, t, m) = s.load()?;
        assert_eq!(k2.to_bytes(), key.to_bytes());
        assert_eq!((t.as_str(), m), ("cn1.1.secret", membership()));
        for f in ["private.key", "node.token"] {
            let mode = std::fs::metadata(dir.path().join(f))
                .map(|m| m.permissions().mode())
                .unwrap_or(0);
            assert_eq!(mode & 0o777, 0o600, "{f}");
        }
        s.forget();
        assert!(!s.is_joined());
        Ok(())
    }

    #[test]
    fn corruption_is_reported_clearly() -> Result<(), StateError> {
        let dir = tempfile::tempdir().map_err(|e| StateError::Io(PathBuf::new(), e))?;
        let s = StateDir::open(dir.path())?;
        let key = StaticSecret::random_from_rng(rand::rngs::OsRng);
        s.save_join(&key, "cn1.1.secret", &membership())?;
        std::fs::write(dir.path().join("membership.json"), b"{\"controller\": 3")
            .map_err(|e| StateError::Io(PathBuf::new(), e))?;
        let err = s.load().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("corrupt"), "{err}");
        s.save_join(&key, "cn1.1.secret", &membership())?;
        std::fs::set_permissions(
            dir.path().join("node.token"),
            std::fs::Permissions::from_mode(0o644),
        )
        .map_err(|e| StateError::Io(PathBuf::new(), e))?;
        assert!(matches!(s.load(), Err(StateError::Permissions(_))));
        std::fs::write(dir.path().join("netmap.json"), b"garbage")
            .map_err(|e| StateError::Io(PathBuf::new(), e))?;
        assert!(matches!(s.load_netmap(), Err(StateError::Corrupt(..))));
        Ok(())
    }
}
