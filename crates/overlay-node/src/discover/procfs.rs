//! Reading what Linux shows about processes under `/proc`, defensively:
//! a process may exit between two reads, a file may be unreadable (another
//! user's, without root), a command line may be huge, a name may hold
//! control characters or invalid UTF-8. Every read is bounded; nothing here
//! panics on what a process chose to put in its own name or arguments.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// At most this much of a command line is read.
pub const MAX_CMDLINE: u64 = 64 << 10;
/// At most this much of an environment is read (names are kept, values
/// dropped as they are read).
pub const MAX_ENVIRON: u64 = 1 << 20;

/// One process as read.
#[derive(Debug, Clone, Default)]
pub struct Process {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Real user id.
    pub uid: u32,
    /// `comm`, raw.
    pub comm: Vec<u8>,
    /// The executable, if readable.
    pub exe: Option<PathBuf>,
    /// Arguments, raw.
    pub argv: Vec<Vec<u8>>,
    /// Environment variable names (values are never kept).
    pub env_names: Vec<String>,
    /// Network namespace inode, if readable.
    pub netns: Option<u64>,
    /// Socket inodes among its open files, if readable.
    pub sockets: Vec<u64>,
}

fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    std::fs::File::open(path)?.take(max).read_to_end(&mut out)?;
    Ok(out)
}

/// The number in a `kind:[N]` link such as `net:[4026531992]`.
fn link_inode(link: &Path, kind: &str) -> Option<u64> {
    let t = std::fs::read_link(link).ok()?;
    let t = t.to_str()?;
    t.strip_prefix(kind)?
        .strip_prefix(":[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The ppid from `/proc/PID/stat` (the name in parentheses may contain
/// anything, so the fields are read after its last `)`).
fn parse_ppid(stat: &[u8]) -> Option<u32> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    rest.split_ascii_whitespace().nth(1)?.parse().ok()
}

fn parse_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Names from a NUL-separated `NAME=value` block; values are dropped here.
pub fn env_names(environ: &[u8]) -> Vec<String> {
    environ
        .split(|&b| b == 0)
        .filter_map(|kv| {
            let eq = kv.iter().position(|&b| b == b'=')?;
            let name = std::str::from_utf8(&kv[..eq]).ok()?;
            proto::inventory::is_env_name(name).then(|| name.to_owned())
        })
        .collect()
}

/// Reads one process from `root` (normally `/proc`). `None` when it is gone
/// or its basic facts cannot be read.
pub fn read(root: &Path, pid: u32) -> Option<Process> {
    let dir = root.join(pid.to_string());
    let stat = read_bounded(&dir.join("stat"), 4096).ok()?;
    let status =
        String::from_utf8_lossy(&read_bounded(&dir.join("status"), 16 << 10).ok()?).into_owned();
    let mut comm = read_bounded(&dir.join("comm"), 64).unwrap_or_default();
    if comm.last() == Some(&b'\n') {
        comm.pop();
    }
    let argv = read_bounded(&dir.join("cmdline"), MAX_CMDLINE)
        .unwrap_or_default()
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let sockets = std::fs::read_dir(dir.join("fd"))
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| link_inode(&e.path(), "socket"))
                .collect()
        })
        .unwrap_or_default();
    Some(Process {
        pid,
        ppid: parse_ppid(&stat)?,
        uid: parse_uid(&status)?,
        comm,
        exe: std::fs::read_link(dir.join("exe")).ok(),
        argv,
        env_names: read_bounded(&dir.join("environ"), MAX_ENVIRON)
            .map(|e| env_names(&e))
            .unwrap_or_default(),
        netns: link_inode(&dir.join("ns/net"), "net"),
        sockets,
    })
}

/// The pids under `root`.
pub fn pids(root: &Path) -> Vec<u32> {
    let mut v: Vec<u32> = std::fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort_unstable();
    v
}

/// TCP sockets of one network namespace, by inode.
#[derive(Debug, Default)]
pub struct TcpTable {
    /// Listening sockets: inode → port.
    pub listening: BTreeMap<u64, u16>,
    /// Established connections to loopback: inode → remote port.
    pub loopback_peers: BTreeMap<u64, u16>,
}

/// Parses `/proc/PID/net/tcp` or `tcp6` text into `t`.
pub fn parse_tcp(text: &str, t: &mut TcpTable) {
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        let (Some(local), Some(remote), Some(state), Some(inode)) =
            (f.get(1), f.get(2), f.get(3), f.get(9))
        else {
            continue;
        };
        let Ok(inode) = inode.parse::<u64>() else {
            continue;
        };
        let port = |a: &str| {
            a.rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok())
        };
        match *state {
            "0A" => {
                if let Some(p) = port(local) {
                    t.listening.insert(inode, p);
                }
            }
            "01" => {
                let host = remote.split_once(':').map(|(h, _)| h).unwrap_or_default();
                // 127.x.x.x (little-endian hex ends in 7F) or ::1 / ::ffff:127.x.
                let loopback = (host.len() == 8 && host.ends_with("7F"))
                    || host == "00000000000000000000000001000000"
                    || (host.len() == 32
                        && host.starts_with("0000000000000000FFFF0000")
                        && host.ends_with("7F"));
                if let (true, Some(p)) = (loopback, port(remote)) {
                    t.loopback_peers.insert(inode, p);
                }
            }
            _ => {}
        }
    }
}

/// The TCP table of the namespace `pid` is in.
pub fn tcp_table(root: &Path, pid: u32) -> TcpTable {
    let mut t = TcpTable::default();
    for f in ["tcp", "tcp6"] {
        if let Ok(b) = read_bounded(&root.join(format!("{pid}/net/{f}")), 16 << 20) {
            parse_tcp(&String::from_utf8_lossy(&b), &mut t);
        }
    }
    t
}

/// The interface names of the namespace `pid` is in.
pub fn interfaces(root: &Path, pid: u32) -> Vec<String> {
    read_bounded(&root.join(format!("{pid}/net/dev")), 1 << 20)
        .map(|b| {
            String::from_utf8_lossy(&b)
                .lines()
                .skip(2)
                .filter_map(|l| Some(l.split_once(':')?.0.trim().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_a_hostile_name() {
        // A name with spaces and a `)` must not shift the fields.
        let stat = b"4242 (evil) name) S 17 4242 4242 0 -1 4194560 0 0";
        assert_eq!(parse_ppid(stat), Some(17));
        assert_eq!(parse_ppid(b"garbage"), None);
        assert_eq!(
            parse_uid("Name:\tx\nUid:\t1000\t1000\t1000\t1000\n"),
            Some(1000)
        );
    }

    #[test]
    fn environment_values_are_never_kept() {
        let env =
            b"OPENAI_API_KEY=sk-live-123\0PATH=/bin\0=weird\0NOEQUALS\0BAD NAME=x\0\xff\xfe=1\0";
        assert_eq!(env_names(env), ["OPENAI_API_KEY", "PATH"]);
    }

    #[test]
    fn tcp_tables() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:2CAB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0\n   1: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0 20 4 30 10 -1\n   2: 0A00000A:D431 0B00000A:1F90 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0 20 4 30 10 -1\n garbage line\n";
        let mut t = TcpTable::default();
        parse_tcp(text, &mut t);
        assert_eq!(t.listening.get(&111), Some(&11435));
        assert_eq!(t.loopback_peers.get(&222), Some(&8080));
        assert!(!t.loopback_peers.contains_key(&333), "not loopback");
    }

    #[test]
    fn this_process_reads() {
        let me = read(Path::new("/proc"), std::process::id()).expect("self");
        assert!(!me.argv.is_empty() && me.netns.is_some());
        assert!(read(Path::new("/proc"), u32::MAX).is_none());
    }
}
