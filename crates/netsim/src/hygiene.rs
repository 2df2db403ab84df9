//! Secrets hygiene: after a run, every token and private key it created is
//! looked for in every file the run wrote — process logs, the controller's
//! data dir and database, the nodes' state dirs, the session log — and in
//! the admin API's answers (saved into the run's files first, see
//! [`save_api_responses`]). A secret may only sit in its own key file, and
//! that file must be mode 0600; the controller keeps hashes of tokens and
//! its vault is encrypted.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::questions::Check;
use crate::run::Running;

/// Files bigger than this are not searched (the agent binary's copy).
const MAX_FILE: u64 = 16 * 1024 * 1024;

/// One secret the run created.
#[derive(Debug, Clone)]
pub struct Secret {
    /// What it is, for the report (never the value).
    pub label: String,
    /// Its value.
    pub value: String,
    /// The files allowed to hold it (each 0600): its key file, and copies
    /// a deployment makes on purpose (a replica's data dir).
    pub homes: Vec<PathBuf>,
}

/// What [`scan`] found.
#[derive(Debug, Default)]
pub struct Findings {
    /// Secrets searched for.
    pub secrets: usize,
    /// Files searched.
    pub files: usize,
    /// Each place a secret was found, or a key file with a wider mode.
    pub found: Vec<String>,
}

impl Findings {
    /// As a check line.
    pub fn check(&self, min_secrets: usize) -> Check {
        Check::new(
            "no token or private key of the run appears outside its 0600 key file",
            self.found.is_empty() && self.secrets >= min_secrets,
            format!(
                "{} secrets searched for in {} files of the run: {}",
                self.secrets,
                self.files,
                if self.found.is_empty() {
                    "none found outside their key files".to_owned()
                } else {
                    self.found.join("; ")
                }
            ),
        )
    }
}

/// The secrets every run has: the join tokens it spent, each member's node
/// token, WireGuard private key and substitute key (0600 in its state
/// dir), and the controller's admin token (0600 in its data dir).
pub fn secrets_of(run: &Running) -> Vec<Secret> {
    let mut v: Vec<Secret> = run
        .spent_tokens
        .iter()
        .enumerate()
        .map(|(i, t)| Secret {
            label: format!("join token #{i}"),
            value: t.clone(),
            homes: vec![],
        })
        .collect();
    for m in &run.members {
        for f in ["node.token", "private.key", "substitute.key"] {
            v.extend(from_file(
                &format!("{}'s {f}", m.name),
                &m.state_dir.join(f),
            ));
        }
    }
    if let Some(mut admin) = from_file(
        "the controller admin token",
        &run.lab.dir.join("controller").join("admin.token"),
    ) {
        // A second replica starts on a copy of the first one's data dir.
        let standby = run.lab.dir.join("controller-standby").join("admin.token");
        if standby.exists() {
            admin.homes.push(standby);
        }
        v.push(admin);
    }
    v
}

/// The secret held in `path`, if the file exists.
pub fn from_file(label: &str, path: &Path) -> Option<Secret> {
    let value = std::fs::read_to_string(path).ok()?.trim().to_owned();
    (!value.is_empty()).then(|| Secret {
        label: label.to_owned(),
        value,
        homes: vec![path.to_path_buf()],
    })
}

/// Saves the admin API's answers about everything the run made (enclaves,
/// members, topologies, policies, the audit log) into `api-responses.txt`
/// in the run's directory, so [`scan`] searches them too. Returns how many
/// answers were saved.
///
/// # Errors
/// When the controller does not answer.
pub async fn save_api_responses(run: &Running) -> anyhow::Result<usize> {
    let mut paths = vec!["/api/v1/enclaves".to_owned(), "/api/v1/audit".to_owned()];
    for e in run.admin.enclaves().await? {
        for tail in ["", "/members", "/topology", "/policy"] {
            paths.push(format!("/api/v1/enclaves/{}{tail}", e.name));
        }
    }
    let mut out = String::new();
    for p in &paths {
        let (status, body) = run.admin.get_raw(p).await?;
        out.push_str(&format!("GET {p} -> {status}\n{body}\n\n"));
    }
    std::fs::write(run.lab.dir.join("api-responses.txt"), out)?;
    Ok(paths.len())
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(std::result::Result::ok) {
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() {
            files_under(&e.path(), out);
        } else if t.is_file() {
            out.push(e.path());
        }
    }
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() || hay.len() < needle.len() {
        return 0;
    }
    let first = needle[0];
    (0..=hay.len() - needle.len())
        .filter(|&i| hay[i] == first && &hay[i..i + needle.len()] == needle)
        .count()
}

/// Searches every file under `root` (but those named in `skip`) for each
/// secret; its home files must be 0600 and are not findings.
pub fn scan(root: &Path, secrets: &[Secret], skip: &[&str]) -> Findings {
    let mut files = vec![];
    files_under(root, &mut files);
    files.retain(|f| {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        !skip.contains(&name) && std::fs::metadata(f).is_ok_and(|m| m.len() <= MAX_FILE)
    });
    let mut found = vec![];
    for s in secrets {
        for home in &s.homes {
            let mode = std::fs::metadata(home).map_or(0, |m| m.permissions().mode() & 0o777);
            if mode != 0o600 {
                found.push(format!("{}'s file is mode {mode:o}, not 600", s.label));
            }
        }
    }
    for f in &files {
        let Ok(bytes) = std::fs::read(f) else {
            continue;
        };
        for s in secrets {
            if s.homes.iter().any(|h| h == f) {
                continue;
            }
            let n = count(&bytes, s.value.as_bytes());
            if n > 0 {
                let rel = f.strip_prefix(root).unwrap_or(f);
                found.push(format!("{} in {} ({n}x)", s.label, rel.display()));
            }
        }
    }
    Findings {
        secrets: secrets.len(),
        files: files.len(),
        found,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_secrets_outside_their_home_and_loose_modes() -> std::io::Result<()> {
        let d = tempfile::tempdir()?;
        let home = d.path().join("node.token");
        std::fs::write(&home, "tok-123\n")?;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o600))?;
        std::fs::create_dir(d.path().join("logs"))?;
        std::fs::write(d.path().join("logs/a.log"), "joined; nothing secret")?;
        std::fs::write(d.path().join("skipped.log"), "tok-123")?;
        let mut secrets = vec![from_file("the node token", &home).expect("home")];
        let clean = scan(d.path(), &secrets, &["skipped.log"]);
        assert!(clean.found.is_empty(), "{:?}", clean.found);
        assert_eq!((clean.secrets, clean.files), (1, 2));

        std::fs::write(d.path().join("logs/b.log"), "bearer tok-123 and tok-123")?;
        secrets.push(Secret {
            label: "a join token".into(),
            value: "join-9".into(),
            homes: vec![],
        });
        std::fs::write(d.path().join("db"), "xxjoin-9")?;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o644))?;
        let dirty = scan(d.path(), &secrets, &[]);
        let mut found = dirty.found.clone();
        found.sort();
        assert_eq!(
            found,
            vec![
                "a join token in db (1x)",
                "the node token in logs/b.log (2x)",
                "the node token in skipped.log (1x)",
                "the node token's file is mode 644, not 600",
            ]
        );
        assert!(!dirty.check(2).pass);
        assert!(clean.check(1).pass && !clean.check(2).pass);
        Ok(())
    }
}
