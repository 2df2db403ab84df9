//! The inventory as a table for people.

use std::fmt::Write;

use proto::inventory::{AgentKind, Inventory};

/// The inventory as text: one line per agent (its MCP servers indented
/// under it), then extensions and a summary.
pub fn table(inv: &Inventory) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<8} {:<10} {:<13} {:<16} {:<14} COMMAND",
        "PID", "USER", "KIND", "ENTRY", "ENCLAVE"
    );
    let children: Vec<u32> = inv
        .agents
        .iter()
        .flat_map(|a| a.mcp_children.iter().copied())
        .collect();
    let line = |out: &mut String, a: &proto::inventory::AgentProcess, indent: &str| {
        let enclave = a.enclave.as_deref().unwrap_or("UNMANAGED");
        let mut cmd = a.command.clone();
        if !a.env_names.is_empty() {
            let _ = write!(cmd, "  [env: {}]", a.env_names.join(", "));
        }
        if !a.listening.is_empty() {
            let ports: Vec<String> = a.listening.iter().map(u16::to_string).collect();
            let _ = write!(cmd, "  [listens: {}]", ports.join(", "));
        }
        let _ = writeln!(
            out,
            "{indent}{:<w$} {:<10} {:<13} {:<16} {:<14} {cmd}",
            a.pid,
            a.user,
            a.kind.as_str(),
            a.entry.as_deref().unwrap_or("-"),
            enclave,
            w = 8 - indent.chars().count().min(8),
        );
    };
    for a in inv.agents.iter().filter(|a| !children.contains(&a.pid)) {
        line(&mut out, a, "");
        for c in &a.mcp_children {
            if let Some(child) = inv.agents.iter().find(|x| x.pid == *c) {
                line(&mut out, child, "└ ");
            }
        }
    }
    for e in &inv.extensions {
        let _ = writeln!(out, "extension  {:<10} {:<16} {}", e.user, e.entry, e.id);
    }
    let governed = inv.agents.iter().filter(|a| a.enclave.is_some()).count();
    let unclassified = inv
        .agents
        .iter()
        .filter(|a| a.kind == AgentKind::Unclassified)
        .count();
    let _ = writeln!(
        out,
        "{} agent processes on {}: {} in an enclave, {} unmanaged ({} unclassified agent-like); {} processes unreadable",
        inv.agents.len(),
        inv.host,
        governed,
        inv.agents.len() - governed,
        unclassified,
        inv.unreadable
    );
    out
}
