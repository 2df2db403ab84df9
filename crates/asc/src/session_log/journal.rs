//! The journal: a file beside the log database where a record is made as
//! durable as a commit (written to the kernel, not synced: SQLite's
//! `synchronous = NORMAL` does not sync a WAL commit either) with one
//! positioned write on the request's path, before a writer commits it to
//! SQLite off the path (see [`super::committer`]).
//!
//! Each process owns its own journal, `<database>.journal-<pid>-<random>`,
//! mode 0600, and holds an exclusive `flock` on it while it lives. A
//! journal nobody holds belongs to a process that ended before its writer
//! caught up: [`orphans`] finds those, and [`super::recover`] folds what
//! they hold into the chain.
//!
//! An entry is `length u32 | crc32 u32 | number u64 | payload`, the
//! payload the record's time and its fields each length-prefixed, the CRC
//! over the number and the payload, so a write torn by a crash is found
//! and ends the journal's readable part. Numbers rise for the life of the
//! journal, also across [`Journal::restart`], so the database can keep the
//! last number it committed in the same transaction as the records
//! ([`super::append`]) and recovery skips what was already committed.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{Record, RecordKind};

/// Bytes before an entry's payload.
const HEADER: usize = 16;

/// The largest payload read back: a record's body is at most the proxy's
/// body limit, far below this; anything larger is a torn length.
const MAX_ENTRY: usize = 1 << 30;

/// This process's journal.
pub struct Journal {
    file: File,
    path: PathBuf,
    name: String,
    end: u64,
    next: u64,
    buf: Vec<u8>,
}

/// A journal left by a process that ended, locked by this one.
pub struct Orphan {
    file: File,
    path: PathBuf,
    /// Its file name, the key of its mark in the database.
    pub name: String,
}

/// The prefix of the journals of the database at `db`.
fn prefix(db: &Path) -> String {
    let base = db.file_name().map_or_else(
        || "session-log".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    format!("{base}.journal-")
}

fn dir_of(db: &Path) -> &Path {
    match db.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

impl Journal {
    /// Creates this process's journal beside the database at `db`,
    /// mode 0600, locked.
    ///
    /// # Errors
    /// When the file cannot be created or locked.
    pub fn create(db: &Path) -> io::Result<Self> {
        let name = format!(
            "{}{}-{}",
            prefix(db),
            std::process::id(),
            hex::encode(rand::random::<[u8; 4]>())
        );
        let path = dir_of(db).join(&name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        file.try_lock().map_err(io::Error::from)?;
        Ok(Self {
            file,
            path,
            name,
            end: 0,
            next: 1,
            buf: Vec::new(),
        })
    }

    /// The journal's file name, the key of its mark in the database.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writes `r` as the next entry; returns its number.
    ///
    /// # Errors
    /// When the write fails (nothing counts as written then).
    pub fn write(&mut self, r: &Record) -> io::Result<u64> {
        let number = self.next;
        encode(&mut self.buf, number, r);
        self.file.write_all_at(&self.buf, self.end)?;
        self.end += self.buf.len() as u64;
        self.next += 1;
        Ok(number)
    }

    /// Bytes in the file: entries written since the last restart, and
    /// those it kept.
    pub fn len(&self) -> u64 {
        self.end
    }

    /// Starts the file over with only `keep`, the entries not yet
    /// committed, under their own numbers; numbers go on. They are written
    /// over the start of the file before it is cut to their length, so a
    /// crash in between leaves them readable, followed by a torn entry or
    /// by entries the mark says were committed.
    ///
    /// # Errors
    /// When the file cannot be written or truncated.
    pub fn restart(&mut self, keep: &[(Record, u64)]) -> io::Result<()> {
        let mut kept = Vec::new();
        for (r, number) in keep {
            encode(&mut self.buf, *number, r);
            kept.extend_from_slice(&self.buf);
        }
        self.file.write_all_at(&kept, 0)?;
        self.file.set_len(kept.len() as u64)?;
        self.end = kept.len() as u64;
        Ok(())
    }

    /// Deletes the file once everything in it is committed.
    ///
    /// # Errors
    /// When it cannot be removed.
    pub fn remove(self) -> io::Result<()> {
        std::fs::remove_file(&self.path)
    }
}

/// Whether any journal of `db` exists, held or not (a directory scan
/// without opening anything).
///
/// # Errors
/// When the directory cannot be read.
pub fn has_any(db: &Path) -> io::Result<bool> {
    let prefix = prefix(db);
    for entry in std::fs::read_dir(dir_of(db))? {
        if entry?.file_name().to_string_lossy().starts_with(&prefix) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The journals beside `db` that no live process holds, each locked by
/// this process until dropped or removed.
///
/// # Errors
/// When the directory cannot be read.
pub fn orphans(db: &Path) -> io::Result<Vec<Orphan>> {
    let prefix = prefix(db);
    let mut found = vec![];
    for entry in std::fs::read_dir(dir_of(db))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&prefix) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = OpenOptions::new().read(true).write(true).open(&path) else {
            continue;
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(e)) => return Err(e),
        }
        // Another recovery removed it between our open and our lock.
        if file.metadata()?.nlink() == 0 {
            continue;
        }
        found.push(Orphan { file, path, name });
    }
    Ok(found)
}

impl Orphan {
    /// Its entries in order, up to the first torn or damaged one.
    ///
    /// # Errors
    /// When the file cannot be read.
    pub fn entries(&self) -> io::Result<Vec<(u64, Record)>> {
        let mut data = vec![];
        (&self.file).read_to_end(&mut data)?;
        Ok(decode_all(&data))
    }

    /// Deletes the file (still locked, so no other recovery reads it).
    ///
    /// # Errors
    /// When it cannot be removed.
    pub fn remove(self) -> io::Result<()> {
        std::fs::remove_file(&self.path)
    }
}

/// Encodes entry `number` holding `r` into `buf` (cleared first).
fn encode(buf: &mut Vec<u8>, number: u64, r: &Record) {
    buf.clear();
    buf.resize(8, 0);
    buf.extend_from_slice(&number.to_le_bytes());
    buf.extend_from_slice(&r.at_ms.to_le_bytes());
    let detail = r.detail.to_string();
    for f in r.fields(&detail) {
        buf.extend_from_slice(&(f.len() as u32).to_le_bytes());
        buf.extend_from_slice(f);
    }
    let payload = (buf.len() - HEADER) as u32;
    let crc = crc32fast::hash(&buf[8..]);
    buf[..4].copy_from_slice(&payload.to_le_bytes());
    buf[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// A cursor over one entry's payload.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn field(&mut self) -> Option<&'a [u8]> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        self.take(n)
    }

    fn text(&mut self) -> Option<String> {
        String::from_utf8(self.field()?.to_vec()).ok()
    }
}

/// One entry's payload back into a record.
fn decode(payload: &[u8]) -> Option<Record> {
    let mut f = Fields(payload);
    let at_ms = f.u64()? as i64;
    let exchange = f.text()?;
    let kind = match f.field()? {
        b"request" => RecordKind::Request,
        b"response" => RecordKind::Response,
        _ => return None,
    };
    let (agent, enclave) = (f.text()?, f.text()?);
    let (provider, operation, model, decision) = (f.text()?, f.text()?, f.text()?, f.text()?);
    let body = Bytes::copy_from_slice(f.field()?);
    let detail = serde_json::from_slice(f.field()?).ok()?;
    f.0.is_empty().then_some(Record {
        exchange,
        kind,
        at_ms,
        agent,
        enclave,
        provider,
        operation,
        model,
        decision,
        body,
        detail,
    })
}

/// The entries of a journal's bytes, up to the first torn or damaged one.
fn decode_all(mut data: &[u8]) -> Vec<(u64, Record)> {
    let mut out = vec![];
    while data.len() >= HEADER {
        let len = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let crc = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
        if len > MAX_ENTRY || data.len() < HEADER + len {
            break;
        }
        let entry = &data[8..HEADER + len];
        if crc32fast::hash(entry) != crc {
            break;
        }
        let number = u64::from_le_bytes([
            entry[0], entry[1], entry[2], entry[3], entry[4], entry[5], entry[6], entry[7],
        ]);
        let Some(r) = decode(&entry[8..]) else {
            break;
        };
        out.push((number, r));
        data = &data[HEADER + len..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session_log::tests::rec;

    fn same(a: &Record, b: &Record) -> bool {
        serde_json::to_value(a).ok() == serde_json::to_value(b).ok() && a.body == b.body
    }

    #[test]
    fn entries_read_back_as_written_across_a_restart() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("log.db");
        let mut j = Journal::create(&db).expect("create");
        let mut binary = rec(1);
        binary.body = Bytes::from_static(&[0xff, 0x00, 0xc3, b'x']);
        assert_eq!(j.write(&rec(0)).expect("write"), 1);
        assert_eq!(j.write(&rec(5)).expect("write"), 2);
        // Entry 1 committed, entry 2 not: only 2 is kept, as number 2.
        j.restart(&[(rec(5), 2)]).expect("restart");
        assert_eq!(j.write(&binary).expect("write"), 3);
        assert_eq!(j.write(&rec(2)).expect("write"), 4);
        let bytes = std::fs::read(dir.path().join(j.name())).expect("read");
        assert_eq!(bytes.len() as u64, j.len());
        let back = decode_all(&bytes);
        assert_eq!(back.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [2, 3, 4]);
        assert!(same(&back[0].1, &rec(5)));
        assert!(same(&back[1].1, &binary) && same(&back[2].1, &rec(2)));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(j.name()))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_torn_or_damaged_entry_ends_the_readable_part() {
        let mut data = vec![];
        let mut buf = vec![];
        for i in 0..3 {
            encode(&mut buf, i + 1, &rec(i as usize));
            data.extend_from_slice(&buf);
        }
        let whole = decode_all(&data).len();
        assert_eq!(whole, 3);
        // Every cut inside the last entry leaves the first two.
        let last = data.len() - buf.len();
        for cut in last..data.len() {
            assert_eq!(decode_all(&data[..cut]).len(), 2, "cut at {cut}");
        }
        // A flipped bit anywhere in the second entry ends the journal at it.
        let first = buf.len();
        for at in first..last {
            let mut bad = data.clone();
            bad[at] ^= 0x10;
            assert_eq!(decode_all(&bad).len(), 1, "bit flipped at {at}");
        }
        // A huge length is not trusted.
        let mut huge = data.clone();
        huge[first..first + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_all(&huge).len(), 1);
    }

    #[test]
    fn a_journal_is_an_orphan_only_once_its_owner_let_go() {
        let dir = tempfile::tempdir().expect("dir");
        let db = dir.path().join("log.db");
        let live = Journal::create(&db).expect("create");
        std::fs::write(dir.path().join("other.db.journal-1-00"), b"").expect("other");
        assert!(orphans(&db).expect("scan").is_empty(), "a held journal");
        let name = live.name().to_owned();
        drop(live);
        let found = orphans(&db).expect("scan");
        assert_eq!(
            found.iter().map(|o| o.name.clone()).collect::<Vec<_>>(),
            [name]
        );
        // Held by the first finder: a second scan does not take it too.
        assert!(orphans(&db).expect("scan").is_empty());
        for o in found {
            o.remove().expect("remove");
        }
        assert!(orphans(&db).expect("scan").is_empty());
    }
}
