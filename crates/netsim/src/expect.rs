//! The expected reachability, computed from the topology alone (never from a
//! run): two members reach each other over the overlay iff they are in the
//! same enclave and the enclave's rules let them (chambers first, then
//! roles and `agent_to_agent`); nothing a member offers is reachable over the
//! underlay, and a sandboxed agent reaches no underlay address at all.
//!
//! This restates the rule of DESIGN §3 independently of the controller's
//! implementation, so a controller bug shows up as an unexpected cell.

use proto::api::ChamberRule;
use proto::Role;
use serde::Serialize;

use crate::topology::{Placed, Service, Topology};

/// Which network a probe uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// To the destination member's overlay address.
    Overlay,
    /// To the destination host's underlay address.
    Underlay,
}

/// One probe and its expected outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// Source member (index into [`Topology::members`]).
    pub from: usize,
    /// Destination member (index into [`Topology::members`]); for underlay
    /// probes, a member of the destination host whose service is probed.
    pub to: usize,
    /// The service probed.
    pub service: Service,
    /// The network used.
    pub via: Via,
    /// Whether it must succeed.
    pub expected: bool,
}

fn allows(allow: &[ChamberRule], who: &Placed<'_>) -> bool {
    allow.iter().any(|r| match r {
        ChamberRule::Member(n) => *n == who.spec.name,
        ChamberRule::Role(role) => *role == who.spec.role,
    })
}

/// Whether members `a` and `b` are peers according to the topology.
pub fn peers(t: &Topology, a: &Placed<'_>, b: &Placed<'_>) -> bool {
    if a.spec.name == b.spec.name || a.spec.enclave != b.spec.enclave {
        return false;
    }
    let Some(e) = t.enclave(&a.spec.enclave) else {
        return false;
    };
    let chamber = |m: &Placed<'_>| e.chambers.iter().find(|c| c.asset == m.spec.name);
    let (ca, cb) = (chamber(a), chamber(b));
    if ca.is_some() || cb.is_some() {
        return ca.is_none_or(|c| allows(&c.allow, b)) && cb.is_none_or(|c| allows(&c.allow, a));
    }
    match (a.spec.role, b.spec.role) {
        (Role::Gateway, _) | (_, Role::Gateway) => true,
        (Role::Agent, Role::Asset) | (Role::Asset, Role::Agent) => true,
        (Role::Agent, Role::Agent) => e.agent_to_agent,
        _ => false,
    }
}

/// Whether two members share one network namespace (both unsandboxed on the
/// same host): they are the same machine, so they are not probed.
pub fn same_namespace(a: &Placed<'_>, b: &Placed<'_>) -> bool {
    a.host == b.host && !a.spec.sandbox && !b.spec.sandbox
}

/// Every probe netsim runs on `t`, with its expected outcome.
pub fn probes(t: &Topology) -> Vec<Probe> {
    let members = t.members();
    let mut out = Vec::new();
    for (i, a) in members.iter().enumerate() {
        for (j, b) in members.iter().enumerate() {
            if i == j || same_namespace(a, b) {
                continue;
            }
            let reach = peers(t, a, b);
            for service in std::iter::once(Service::ICMP).chain(b.spec.services.iter().copied()) {
                out.push(Probe {
                    from: i,
                    to: j,
                    service,
                    via: Via::Overlay,
                    expected: reach,
                });
            }
            // Underlay: the destination's services (bound to the overlay
            // address only) from everyone on another host; ICMP to the
            // destination host from sandboxes, which see no underlay at all.
            if a.host != b.host {
                let icmp = a.spec.sandbox.then_some(Service::ICMP);
                for service in icmp.into_iter().chain(b.spec.services.iter().copied()) {
                    out.push(Probe {
                        from: i,
                        to: j,
                        service,
                        via: Via::Underlay,
                        expected: false,
                    });
                }
            }
        }
    }
    out
}

/// The explicit `[[expect]]` entries that contradict the model, as messages.
pub fn contradictions(t: &Topology) -> Vec<String> {
    let members = t.members();
    let find = |n: &proto::Name| members.iter().find(|m| m.spec.name == *n);
    t.expects
        .iter()
        .filter_map(|x| {
            let (a, b) = (find(&x.from)?, find(&x.to)?);
            let service = x.service.unwrap_or(Service::ICMP);
            if service != Service::ICMP && !b.spec.services.contains(&service) {
                return Some(format!("expectation {} -> {} {service}: {} offers no {service}", x.from, x.to, x.to));
            }
            let model = peers(t, a, b);
            (model != x.reachable).then(|| {
                format!(
                    "expectation {} -> {} {service} reachable={} contradicts the model (reachable={model})",
                    x.from, x.to, x.reachable
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three enclaves: a chamber with two allowed members, `agent_to_agent`
    /// off in one, a host in two enclaves, a sandboxed agent.
    const T: &str = r#"
        [[enclave]]
        name = "a"
        [[enclave.chamber]]
        name = "vault"
        asset = "db-a"
        allow = ["x1", "gw-a"]
        [[enclave]]
        name = "b"
        agent_to_agent = false
        [[enclave]]
        name = "c"
        [[host]]
        name = "h1"
        [[host.member]]
        name = "x1"
        enclave = "a"
        role = "agent"
        sandbox = true
        [[host.member]]
        name = "y1"
        enclave = "b"
        role = "agent"
        [[host]]
        name = "h2"
        [[host.member]]
        name = "x2"
        enclave = "a"
        role = "agent"
        [[host.member]]
        name = "y2"
        enclave = "b"
        role = "agent"
        [[host]]
        name = "h3"
        [[host.member]]
        name = "db-a"
        enclave = "a"
        role = "asset"
        services = ["tcp/5432"]
        [[host]]
        name = "h6"
        [[host.member]]
        name = "gw-a"
        enclave = "a"
        role = "gateway"
        [[host]]
        name = "h4"
        [[host.member]]
        name = "files-b"
        enclave = "b"
        role = "asset"
        [[host.member]]
        name = "z1"
        enclave = "c"
        role = "agent"
    "#;

    fn topo() -> Topology {
        Topology::parse(T, "t").unwrap_or_else(|e| panic!("{e}"))
    }

    fn reach(t: &Topology, a: &str, b: &str) -> bool {
        let m = t.members();
        let f = |n: &str| {
            m.iter()
                .find(|p| p.spec.name.as_str() == n)
                .unwrap_or_else(|| panic!("{n}"))
                .clone()
        };
        peers(t, &f(a), &f(b))
    }

    #[test]
    fn the_rule_as_designed() {
        let t = topo();
        // Chamber with two allowed members.
        assert!(reach(&t, "x1", "db-a"));
        assert!(reach(&t, "gw-a", "db-a"));
        assert!(
            !reach(&t, "x2", "db-a"),
            "an agent the chamber does not allow"
        );
        // agent_to_agent on in a, off in b.
        assert!(reach(&t, "x1", "x2"));
        assert!(!reach(&t, "y1", "y2"));
        // Roles.
        assert!(reach(&t, "y1", "files-b"));
        assert!(reach(&t, "x2", "gw-a"));
        // Never across enclaves, whatever the roles.
        assert!(!reach(&t, "x1", "files-b"));
        assert!(!reach(&t, "z1", "x1"));
        assert!(!reach(&t, "y1", "gw-a"));
        // Never to itself; symmetric.
        assert!(!reach(&t, "x1", "x1"));
        let m = t.members();
        for a in &m {
            for b in &m {
                assert_eq!(
                    peers(&t, a, b),
                    peers(&t, b, a),
                    "{} {}",
                    a.spec.name,
                    b.spec.name
                );
            }
        }
    }

    #[test]
    fn probes_cover_every_pair_and_service() {
        let t = topo();
        let p = probes(&t);
        let m = t.members();
        let idx = |n: &str| {
            m.iter()
                .position(|x| x.spec.name.as_str() == n)
                .unwrap_or(usize::MAX)
        };
        // Same namespace (y1 is on h1 unsandboxed, x1 is sandboxed): probed.
        assert!(p.iter().any(|q| q.from == idx("x1") && q.to == idx("y1")));
        // files-b and z1 share h4's namespace: not probed.
        assert!(!p
            .iter()
            .any(|q| q.from == idx("files-b") && q.to == idx("z1")));
        // ICMP and tcp/5432 to db-a over the overlay from x1, both expected.
        let to_db: Vec<_> = p
            .iter()
            .filter(|q| q.from == idx("x1") && q.to == idx("db-a"))
            .collect();
        assert!(to_db
            .iter()
            .any(|q| q.via == Via::Overlay && q.service == Service::ICMP && q.expected));
        assert!(to_db
            .iter()
            .any(|q| q.via == Via::Overlay && q.service.port == 5432 && q.expected));
        // Underlay: from the sandbox, ICMP and the service, none expected.
        let under: Vec<_> = to_db.iter().filter(|q| q.via == Via::Underlay).collect();
        assert_eq!(under.len(), 2);
        assert!(under.iter().all(|q| !q.expected));
        // Unsandboxed sources probe only the service on the underlay.
        assert_eq!(
            p.iter()
                .filter(|q| q.from == idx("x2") && q.to == idx("db-a") && q.via == Via::Underlay)
                .count(),
            1
        );
        assert!(p
            .iter()
            .filter(|q| q.via == Via::Underlay)
            .all(|q| !q.expected));
    }

    #[test]
    fn explicit_expectations_are_checked_against_the_model() {
        let ok = format!("{T}\n[[expect]]\nfrom = \"x2\"\nto = \"db-a\"\nservice = \"tcp/5432\"\nreachable = false\n");
        assert!(
            contradictions(&Topology::parse(&ok, "t").unwrap_or_else(|e| panic!("{e}"))).is_empty()
        );
        let wrong = ok.replace("reachable = false", "reachable = true");
        let c = contradictions(&Topology::parse(&wrong, "t").unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(c.len(), 1, "{c:?}");
        assert!(c[0].contains("contradicts the model"));
        let no_such = ok.replace("service = \"tcp/5432\"", "service = \"tcp/1\"");
        let c = contradictions(&Topology::parse(&no_such, "t").unwrap_or_else(|e| panic!("{e}")));
        assert!(c[0].contains("offers no tcp/1"), "{c:?}");
    }
}
