//! The reachability report: the matrix as a table, as JSON, and the summary
//! line.

use std::fmt::Write as _;

use serde::Serialize;

use crate::expect::{Probe, Via};
use crate::run::MemberRun;
use crate::topology::Topology;

/// One probe's result.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The probe and its expectation.
    #[serde(flatten)]
    pub probe: Probe,
    /// Whether the destination answered.
    pub reachable: bool,
    /// What happened.
    pub detail: String,
}

impl Outcome {
    /// Whether the result matches the model.
    pub fn as_expected(&self) -> bool {
        self.reachable == self.probe.expected
    }
}

/// A member as the report lists it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberLine {
    /// Member name.
    pub name: String,
    /// Enclave.
    pub enclave: String,
    /// Role.
    pub role: String,
    /// Host.
    pub host: String,
    /// Overlay address.
    pub address: String,
    /// Runs in a sandbox.
    pub sandbox: bool,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The members, in matrix order.
    pub members: Vec<MemberLine>,
    /// Every probe.
    pub probes: Vec<Outcome>,
    /// Totals.
    pub summary: Summary,
}

/// Totals.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Summary {
    /// Probes run.
    pub pairs: usize,
    /// Probes whose result matched the model.
    pub as_expected: usize,
    /// Probes whose result did not.
    pub unexpected: usize,
}

impl Report {
    /// Builds the report.
    pub fn new(topo: &Topology, members: &[MemberRun], probes: Vec<Outcome>) -> Self {
        let placed = topo.members();
        let members = placed
            .iter()
            .zip(members)
            .map(|(p, m)| MemberLine {
                name: m.name.to_string(),
                enclave: m.enclave.to_string(),
                role: p.spec.role.to_string(),
                host: topo.hosts[p.host].name.to_string(),
                address: m.addr.to_string(),
                sandbox: p.spec.sandbox,
            })
            .collect();
        let unexpected = probes.iter().filter(|o| !o.as_expected()).count();
        Self {
            members,
            summary: Summary {
                pairs: probes.len(),
                as_expected: probes.len() - unexpected,
                unexpected,
            },
            probes,
        }
    }

    /// The summary line.
    pub fn summary_line(&self) -> String {
        format!(
            "reachability: {} pairs, {} as expected, {} unexpected",
            self.summary.pairs, self.summary.as_expected, self.summary.unexpected
        )
    }

    /// The overlay matrix (rows sources, columns destinations, numbered),
    /// the underlay totals and every unexpected probe.
    pub fn table(&self) -> String {
        let n = self.members.len();
        let mut cells = vec![vec![Cell::NotProbed; n]; n];
        for o in self.probes.iter().filter(|o| o.probe.via == Via::Overlay) {
            let c = &mut cells[o.probe.from][o.probe.to];
            *c = c.add(o);
        }
        let name_w = self
            .members
            .iter()
            .map(|m| m.name.len() + m.enclave.len() + 3)
            .max()
            .unwrap_or(4);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "overlay reachability (row reaches column; ok = reachable, -- = blocked, \
             !! = NOT as the model expects, == same host):"
        );
        let _ = write!(s, "{:>4} {:<name_w$} ", "", "");
        for j in 0..n {
            let _ = write!(s, "{:>3}", j + 1);
        }
        s.push('\n');
        for (i, m) in self.members.iter().enumerate() {
            let label = format!("{} ({})", m.name, m.enclave);
            let _ = write!(s, "{:>4} {label:<name_w$} ", i + 1);
            for (j, cell) in cells[i].iter().enumerate() {
                let g = if i == j { " \\" } else { cell.glyph() };
                let _ = write!(s, "{g:>3}");
            }
            s.push('\n');
        }
        let under: Vec<&Outcome> = self
            .probes
            .iter()
            .filter(|o| o.probe.via == Via::Underlay)
            .collect();
        let under_bad = under.iter().filter(|o| !o.as_expected()).count();
        let _ = writeln!(
            s,
            "underlay: {} probes of members' services and, from sandboxes, ICMP to other hosts; {} blocked as expected, {} unexpected",
            under.len(),
            under.len() - under_bad,
            under_bad
        );
        for o in self.probes.iter().filter(|o| !o.as_expected()) {
            let _ = writeln!(
                s,
                "UNEXPECTED: {} -> {} {} over the {:?}: expected {}, got {} ({})",
                self.members[o.probe.from].name,
                self.members[o.probe.to].name,
                o.probe.service,
                o.probe.via,
                if o.probe.expected {
                    "reachable"
                } else {
                    "blocked"
                },
                if o.reachable { "reachable" } else { "blocked" },
                o.detail
            );
        }
        s
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cell {
    NotProbed,
    Reachable,
    Blocked,
    Unexpected,
}

impl Cell {
    fn add(self, o: &Outcome) -> Cell {
        let this = match (o.as_expected(), o.reachable) {
            (false, _) => Cell::Unexpected,
            (true, true) => Cell::Reachable,
            (true, false) => Cell::Blocked,
        };
        match (self, this) {
            (Cell::NotProbed, x) => x,
            (Cell::Unexpected, _) | (_, Cell::Unexpected) => Cell::Unexpected,
            (a, b) if a == b => a,
            // Mixed results that each match the model cannot happen: the
            // model gives one verdict per pair. Show it as unexpected.
            _ => Cell::Unexpected,
        }
    }

    fn glyph(self) -> &'static str {
        match self {
            Cell::NotProbed => "==",
            Cell::Reachable => "ok",
            Cell::Blocked => "--",
            Cell::Unexpected => "!!",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::Service;

    fn outcome(from: usize, to: usize, expected: bool, reachable: bool) -> Outcome {
        Outcome {
            probe: Probe {
                from,
                to,
                service: Service::ICMP,
                via: Via::Overlay,
                expected,
            },
            reachable,
            detail: String::new(),
        }
    }

    fn report(probes: Vec<Outcome>) -> Report {
        let m = |n: &str| MemberLine {
            name: n.into(),
            enclave: "e".into(),
            role: "agent".into(),
            host: "h".into(),
            address: "100.64.0.1".into(),
            sandbox: false,
        };
        let unexpected = probes.iter().filter(|o| !o.as_expected()).count();
        Report {
            members: vec![m("a"), m("b")],
            summary: Summary {
                pairs: probes.len(),
                as_expected: probes.len() - unexpected,
                unexpected,
            },
            probes,
        }
    }

    #[test]
    fn an_unexpected_probe_marks_its_cell_and_is_listed() {
        let r = report(vec![
            outcome(0, 1, false, true),
            outcome(1, 0, false, false),
        ]);
        let t = r.table();
        assert!(t.contains("!!"), "{t}");
        assert!(t.contains("--"), "{t}");
        assert!(t.contains("UNEXPECTED: a -> b icmp"), "{t}");
        assert_eq!(
            r.summary_line(),
            "reachability: 2 pairs, 1 as expected, 1 unexpected"
        );
    }

    #[test]
    fn a_blocked_probe_the_model_expected_to_pass_is_unexpected() {
        let r = report(vec![outcome(0, 1, true, false)]);
        assert_eq!(r.summary.unexpected, 1);
        let ok = report(vec![outcome(0, 1, true, true), outcome(1, 0, true, true)]);
        assert_eq!(ok.summary.unexpected, 0);
        assert!(ok.table().contains("ok"));
    }
}
