//! `overlay-node discover`: an inventory of the AI agents on this host,
//! from the process table, matched against the [`catalog`]: coding agents,
//! agent frameworks, MCP servers (linked to the agent that runs them),
//! local models, and unknown processes that hold LLM-API environment names
//! or talk to a local gateway. Each is marked with the enclave whose
//! sandbox it runs in, or as unmanaged.

pub mod catalog;
pub mod command;
pub mod governance;
pub mod procfs;
pub mod render;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proto::inventory::{AgentKind, AgentProcess, Extension, Inventory};

use catalog::{Catalog, Signs};
use governance::Sandboxes;
use procfs::{Process, TcpTable};

/// Where to look.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The proc filesystem (normally `/proc`).
    pub proc_root: PathBuf,
    /// State dirs whose sandboxes count, besides those under
    /// `/var/lib/cordon`.
    pub state_dirs: Vec<PathBuf>,
    /// The password file, for user names and home directories.
    pub passwd: PathBuf,
}

impl Default for Scope {
    fn default() -> Self {
        Self {
            proc_root: "/proc".into(),
            state_dirs: vec![],
            passwd: "/etc/passwd".into(),
        }
    }
}

fn basename(b: &[u8]) -> &[u8] {
    b.rsplit(|&c| c == b'/').next().unwrap_or(b)
}

/// The program names a process shows: `argv[0]`, its executable, `comm`,
/// and the script an interpreter runs.
fn programs(p: &Process, catalog: &Catalog) -> Vec<String> {
    fn push(v: &mut Vec<String>, b: &[u8]) {
        let s = String::from_utf8_lossy(basename(b)).into_owned();
        if !s.is_empty() && !v.contains(&s) {
            v.push(s);
        }
    }
    let mut v: Vec<String> = vec![];
    if let Some(a0) = p.argv.first() {
        push(&mut v, a0);
    }
    if let Some(exe) = &p.exe {
        push(&mut v, exe.as_os_str().as_encoded_bytes());
    }
    push(&mut v, &p.comm);
    let launcher = v.iter().any(|n| catalog.is_interpreter(n));
    // `python3 -u /opt/bin/aider …`, `node /usr/lib/…/cli.js`, `uvx
    // mcp-server-git`: the first argument that is not an option names the
    // program too (not for `-m` and `-c`, whose argument is no script).
    let inline = p
        .argv
        .iter()
        .any(|a| a.as_slice() == b"-m" || a.as_slice() == b"-c");
    if launcher && !inline {
        if let Some(script) = p.argv.iter().skip(1).find(|a| !a.starts_with(b"-")) {
            push(&mut v, script);
        }
    }
    v
}

/// The module of `python -m MODULE`.
fn python_module(p: &Process) -> Option<String> {
    let i = p.argv.iter().position(|a| a.as_slice() == b"-m")?;
    Some(String::from_utf8_lossy(p.argv.get(i + 1)?).into_owned())
}

/// User names and home directories by uid.
fn users(passwd: &Path) -> BTreeMap<u32, (String, PathBuf)> {
    let text = std::fs::read_to_string(passwd).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((
                f.get(2)?.parse().ok()?,
                ((*f.first()?).to_owned(), PathBuf::from(f.get(5)?)),
            ))
        })
        .collect()
}

/// Now, Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The host's name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| command::printable(s.trim().as_bytes(), 253))
        .unwrap_or_else(|_| "unknown".into())
}

/// Scans the host.
pub fn scan(catalog: &Catalog, scope: &Scope, now: i64) -> Inventory {
    let users = users(&scope.passwd);
    let sandboxes = Sandboxes::find(&scope.state_dirs);
    let me = std::process::id();
    let mut unreadable = 0u32;
    let procs: Vec<Process> = procfs::pids(&scope.proc_root)
        .into_iter()
        .filter(|&pid| pid != me)
        .filter_map(|pid| {
            let p = procfs::read(&scope.proc_root, pid);
            if p.is_none() {
                unreadable += 1;
            }
            p
        })
        .collect();
    // One TCP table and one verdict on governance per network namespace.
    let mut tables: BTreeMap<u64, TcpTable> = BTreeMap::new();
    let mut governed: BTreeMap<u64, Option<String>> = BTreeMap::new();
    for p in &procs {
        if let Some(ns) = p.netns {
            tables
                .entry(ns)
                .or_insert_with(|| procfs::tcp_table(&scope.proc_root, p.pid));
            governed.entry(ns).or_insert_with(|| {
                sandboxes.enclave_of(&procfs::interfaces(&scope.proc_root, p.pid))
            });
        }
    }
    let empty = TcpTable::default();
    let mut agents: Vec<AgentProcess> = vec![];
    for p in &procs {
        let table = p.netns.and_then(|n| tables.get(&n)).unwrap_or(&empty);
        let listening: Vec<u16> = p
            .sockets
            .iter()
            .filter_map(|i| table.listening.get(i).copied())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let to_gateway = p.sockets.iter().any(|i| {
            table
                .loopback_peers
                .get(i)
                .is_some_and(|port| catalog.gateway_ports.contains(port))
        });
        let names = programs(p, catalog);
        let cmdline = p
            .argv
            .iter()
            .map(|a| String::from_utf8_lossy(a))
            .collect::<Vec<_>>()
            .join(" ");
        let module = python_module(p);
        let signs = Signs {
            programs: names.iter().map(String::as_str).collect(),
            cmdline: &cmdline,
            python_module: module.as_deref(),
            ports: &listening,
        };
        let env_names: Vec<String> = p
            .env_names
            .iter()
            .filter(|n| catalog.llm_env.contains(n))
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let entry = catalog.match_process(&signs);
        if entry.is_none() && env_names.is_empty() && !to_gateway {
            continue;
        }
        agents.push(AgentProcess {
            pid: p.pid,
            ppid: p.ppid,
            user: users
                .get(&p.uid)
                .map_or_else(|| p.uid.to_string(), |u| u.0.clone()),
            program: command::printable(
                basename(p.argv.first().unwrap_or(&p.comm)),
                command::MAX_PROGRAM,
            ),
            command: command::redacted(&p.argv),
            kind: entry.map_or(AgentKind::Unclassified, |e| e.kind),
            entry: entry.map(|e| e.id.clone()),
            risk: entry.map(|e| e.risk.clone()),
            env_names,
            listening,
            mcp_children: vec![],
            enclave: p.netns.and_then(|n| governed.get(&n).cloned().flatten()),
        });
    }
    link_mcp_children(&mut agents, &procs);
    Inventory {
        host: hostname(),
        scanned_at: now,
        agents,
        extensions: extensions(catalog, &users),
        unreadable,
    }
}

/// Links each MCP server to the nearest listed agent above it that is not
/// an MCP server itself (a stdio server is its agent's child, perhaps
/// through a shell or `npx`).
fn link_mcp_children(agents: &mut [AgentProcess], procs: &[Process]) {
    let parent: BTreeMap<u32, u32> = procs.iter().map(|p| (p.pid, p.ppid)).collect();
    let owner: BTreeMap<u32, usize> = agents
        .iter()
        .enumerate()
        .filter(|(_, a)| a.kind != AgentKind::McpServer)
        .map(|(i, a)| (a.pid, i))
        .collect();
    let servers: Vec<u32> = agents
        .iter()
        .filter(|a| a.kind == AgentKind::McpServer)
        .map(|a| a.pid)
        .collect();
    for s in servers {
        let mut at = s;
        for _ in 0..16 {
            let Some(&up) = parent.get(&at) else { break };
            if let Some(&i) = owner.get(&up) {
                agents[i].mcp_children.push(s);
                break;
            }
            at = up;
        }
    }
}

/// AI assistant extensions in the editors' extension directories of every
/// home directory this process can read.
fn extensions(catalog: &Catalog, users: &BTreeMap<u32, (String, PathBuf)>) -> Vec<Extension> {
    let mut out = vec![];
    let homes: BTreeSet<(&String, &PathBuf)> = users.values().map(|(n, h)| (n, h)).collect();
    for (user, home) in homes {
        for rel in &catalog.extension_dirs {
            let Ok(rd) = std::fs::read_dir(home.join(rel)) else {
                continue;
            };
            for e in rd.filter_map(Result::ok).take(10_000) {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(entry) = catalog.match_extension(&name) {
                    out.push(Extension {
                        user: user.clone(),
                        id: command::printable(name.as_bytes(), 200),
                        entry: entry.id.clone(),
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc_(pid: u32, ppid: u32, argv: &[&str]) -> Process {
        Process {
            pid,
            ppid,
            argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
            comm: argv[0].as_bytes().to_vec(),
            ..Process::default()
        }
    }

    #[test]
    fn launchers_name_their_script() {
        let c = Catalog::load(&[] as &[&Path]).expect("catalog");
        let p = proc_(
            1,
            0,
            &["python3", "-u", "/opt/venv/bin/aider", "--model", "x"],
        );
        assert!(programs(&p, &c).contains(&"aider".to_owned()));
        let p = proc_(1, 0, &["python3", "-m", "mcp_server_time"]);
        assert_eq!(python_module(&p).as_deref(), Some("mcp_server_time"));
        assert!(!programs(&p, &c).contains(&"mcp_server_time".to_owned()));
        let p = proc_(1, 0, &["sleep", "aider"]);
        assert!(
            !programs(&p, &c).contains(&"aider".to_owned()),
            "not a launcher"
        );
    }

    #[test]
    fn mcp_servers_link_to_their_agent_through_a_shell() {
        let procs = vec![
            proc_(10, 1, &["aider"]),
            proc_(11, 10, &["sh", "-c", "npx x"]),
            proc_(12, 11, &["mcp-server-git"]),
        ];
        let a = |pid, kind| AgentProcess {
            pid,
            ppid: 0,
            user: String::new(),
            program: String::new(),
            command: String::new(),
            kind,
            entry: None,
            risk: None,
            env_names: vec![],
            listening: vec![],
            mcp_children: vec![],
            enclave: None,
        };
        let mut agents = vec![a(10, AgentKind::CodingAgent), a(12, AgentKind::McpServer)];
        link_mcp_children(&mut agents, &procs);
        assert_eq!(agents[0].mcp_children, [12]);
    }
}
