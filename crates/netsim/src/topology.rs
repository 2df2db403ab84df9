//! The topology file: hosts, enclaves with their options and chambers, the
//! members each host runs (role, sandbox, services) and optional explicit
//! expectations. See `configs/netsim/README.md` for the format.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::Path;

use ipnet::Ipv4Net;
use proto::api::ChamberRule;
use proto::{Name, Role};
use serde::{Deserialize, Serialize};

/// A whole topology.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// What the topology shows (printed before the run).
    #[serde(default)]
    pub description: String,
    /// The enclaves, with their chambers.
    #[serde(default, rename = "enclave")]
    pub enclaves: Vec<EnclaveSpec>,
    /// The hosts, with the members they run.
    #[serde(default, rename = "host")]
    pub hosts: Vec<HostSpec>,
    /// Explicit expectations, checked against the model.
    #[serde(default, rename = "expect")]
    pub expects: Vec<Expect>,
}

/// An enclave and its options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnclaveSpec {
    /// Enclave name.
    pub name: Name,
    /// Its address space (allocated by the controller when absent).
    pub cidr: Option<Ipv4Net>,
    /// Whether its agents may reach each other (default true).
    #[serde(default = "yes")]
    pub agent_to_agent: bool,
    /// Chambers protecting its assets.
    #[serde(default, rename = "chamber")]
    pub chambers: Vec<ChamberSpec>,
}

fn yes() -> bool {
    true
}

/// A chamber: one protected member and who may reach it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChamberSpec {
    /// Chamber name.
    pub name: Name,
    /// The protected member.
    pub asset: Name,
    /// Member names or `role:ROLE`.
    pub allow: Vec<ChamberRule>,
}

/// A machine on the shared underlay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// Host name (also its namespace's suffix).
    pub name: Name,
    /// The memberships this host runs, one node each.
    #[serde(default, rename = "member")]
    pub members: Vec<MemberSpec>,
}

/// One membership: a node on its host.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberSpec {
    /// Member name, unique in the whole topology.
    pub name: Name,
    /// The enclave it joins.
    pub enclave: Name,
    /// Its role.
    pub role: Role,
    /// Runs inside `overlay-node exec` (agents only): its own namespace with
    /// only `lo` and the enclave interface, no capabilities, user `nobody`.
    #[serde(default)]
    pub sandbox: bool,
    /// Services it offers on its overlay address.
    #[serde(default)]
    pub services: Vec<Service>,
}

/// A protocol a probe uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP connect and banner.
    Tcp,
    /// UDP request and response.
    Udp,
    /// ICMP echo.
    Icmp,
}

/// A service: `tcp/PORT`, `udp/PORT` or `icmp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Service {
    /// Protocol.
    pub proto: Proto,
    /// Port (0 for ICMP).
    pub port: u16,
}

impl Service {
    /// ICMP echo.
    pub const ICMP: Service = Service {
        proto: Proto::Icmp,
        port: 0,
    };
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.proto {
            Proto::Tcp => write!(f, "tcp/{}", self.port),
            Proto::Udp => write!(f, "udp/{}", self.port),
            Proto::Icmp => write!(f, "icmp"),
        }
    }
}

impl TryFrom<String> for Service {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s == "icmp" {
            return Ok(Service::ICMP);
        }
        let bad = || format!("service {s:?} is not tcp/PORT, udp/PORT or icmp");
        let (p, port) = s.split_once('/').ok_or_else(bad)?;
        let proto = match p {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            _ => return Err(bad()),
        };
        let port: u16 = port.parse().map_err(|_| bad())?;
        if port == 0 {
            return Err(bad());
        }
        Ok(Service { proto, port })
    }
}

impl From<Service> for String {
    fn from(s: Service) -> String {
        s.to_string()
    }
}

/// An explicit expectation: `from` reaches (or not) `to`'s `service`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Source member.
    pub from: Name,
    /// Destination member.
    pub to: Name,
    /// The service (default `icmp`).
    pub service: Option<Service>,
    /// Whether it must be reachable over the overlay.
    pub reachable: bool,
}

/// Why a topology is refused.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// Not readable.
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    /// Not valid TOML or not the format.
    #[error("{0}: {1}")]
    Parse(String, toml::de::Error),
    /// A consistency rule is broken.
    #[error("{0}")]
    Invalid(String),
}

/// A member with its host, as the rest of netsim sees it.
#[derive(Debug, Clone)]
pub struct Placed<'t> {
    /// Index of the host in [`Topology::hosts`].
    pub host: usize,
    /// The member.
    pub spec: &'t MemberSpec,
}

impl Topology {
    /// Reads and validates a topology file.
    ///
    /// # Errors
    /// [`TopologyError`].
    pub fn load(path: &Path) -> Result<Self, TopologyError> {
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|e| TopologyError::Read(shown.clone(), e))?;
        Self::parse(&text, &shown)
    }

    /// Parses and validates topology text (`origin` names it in errors).
    ///
    /// # Errors
    /// [`TopologyError`].
    pub fn parse(text: &str, origin: &str) -> Result<Self, TopologyError> {
        let t: Topology =
            toml::from_str(text).map_err(|e| TopologyError::Parse(origin.to_owned(), e))?;
        t.validate()?;
        Ok(t)
    }

    /// Every member with its host, in file order.
    pub fn members(&self) -> Vec<Placed<'_>> {
        self.hosts
            .iter()
            .enumerate()
            .flat_map(|(h, host)| {
                host.members
                    .iter()
                    .map(move |spec| Placed { host: h, spec })
            })
            .collect()
    }

    /// The enclave named `name`.
    pub fn enclave(&self, name: &Name) -> Option<&EnclaveSpec> {
        self.enclaves.iter().find(|e| &e.name == name)
    }

    fn validate(&self) -> Result<(), TopologyError> {
        let bad = |m: String| Err(TopologyError::Invalid(m));
        if self.hosts.is_empty() {
            return bad("the topology has no [[host]]".into());
        }
        if self.hosts.len() > 200 {
            return bad(format!(
                "{} hosts: netsim supports at most 200",
                self.hosts.len()
            ));
        }
        let mut enclaves = HashSet::new();
        for e in &self.enclaves {
            if !enclaves.insert(&e.name) {
                return bad(format!("enclave {} is defined twice", e.name));
            }
        }
        let mut hosts = HashSet::new();
        let mut members: HashMap<&Name, &MemberSpec> = HashMap::new();
        for h in &self.hosts {
            if !hosts.insert(&h.name) {
                return bad(format!("host {} is defined twice", h.name));
            }
            let mut on_host = HashSet::new();
            for m in &h.members {
                if members.insert(&m.name, m).is_some() {
                    return bad(format!("member {} is defined twice", m.name));
                }
                if !enclaves.contains(&m.enclave) {
                    return bad(format!(
                        "member {} joins unknown enclave {}",
                        m.name, m.enclave
                    ));
                }
                if !m.sandbox && !on_host.insert(&m.enclave) {
                    return bad(format!(
                        "host {} has two unsandboxed members in enclave {}: their routes would clash",
                        h.name, m.enclave
                    ));
                }
                if m.sandbox && m.role != Role::Agent {
                    return bad(format!("member {}: only agents run in a sandbox", m.name));
                }
                if m.services.contains(&Service::ICMP) {
                    return bad(format!(
                        "member {}: icmp is always probed, do not list it as a service",
                        m.name
                    ));
                }
            }
        }
        for e in &self.enclaves {
            let mut chambered = HashSet::new();
            for c in &e.chambers {
                if !chambered.insert(&c.asset) {
                    return bad(format!("{} is protected by two chambers", c.asset));
                }
                match members.get(&c.asset) {
                    Some(m) if m.enclave == e.name => {}
                    _ => {
                        return bad(format!(
                            "chamber {}: asset {} is not a member of enclave {}",
                            c.name, c.asset, e.name
                        ))
                    }
                }
            }
        }
        for x in &self.expects {
            for n in [&x.from, &x.to] {
                if !members.contains_key(n) {
                    return bad(format!("expectation names unknown member {n}"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
        description = "two agents"
        [[enclave]]
        name = "a"
        agent_to_agent = false
        [[enclave.chamber]]
        name = "design"
        asset = "rtl"
        allow = ["x1", "role:gateway"]
        [[host]]
        name = "h1"
        [[host.member]]
        name = "x1"
        enclave = "a"
        role = "agent"
        sandbox = true
        services = ["tcp/22", "udp/53"]
        [[host]]
        name = "h2"
        [[host.member]]
        name = "rtl"
        enclave = "a"
        role = "asset"
        [[expect]]
        from = "x1"
        to = "rtl"
        service = "tcp/22"
        reachable = true
    "#;

    #[test]
    fn parses_the_documented_shape() {
        let t = Topology::parse(OK, "t").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(t.enclaves[0].chambers[0].allow.len(), 2);
        assert!(!t.enclaves[0].agent_to_agent);
        let m = t.members();
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].host, 1);
        assert_eq!(
            m[0].spec.services,
            vec![
                Service {
                    proto: Proto::Tcp,
                    port: 22
                },
                Service {
                    proto: Proto::Udp,
                    port: 53
                }
            ]
        );
    }

    fn refused(text: &str, needle: &str) {
        match Topology::parse(text, "t") {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => assert!(e.to_string().contains(needle), "{e} lacks {needle}"),
        }
    }

    #[test]
    fn refuses_inconsistent_topologies() {
        refused(
            &OK.replace("agent_to_agent", "agent_to_agnet"),
            "unknown field",
        );
        refused(&OK.replace("tcp/22", "tcp/0"), "not tcp/PORT");
        refused(&OK.replace("\"udp/53\"", "\"icmp\""), "always probed");
        refused(
            &OK.replace(
                "enclave = \"a\"\n        role = \"asset\"",
                "enclave = \"b\"\n        role = \"asset\"",
            ),
            "unknown enclave",
        );
        refused(
            &OK.replace("name = \"rtl\"", "name = \"x1\""),
            "defined twice",
        );
        refused(
            &OK.replace("asset = \"rtl\"", "asset = \"nobody\""),
            "not a member",
        );
        refused(
            &OK.replace("to = \"rtl\"", "to = \"ghost\""),
            "unknown member",
        );
        refused(
            &OK.replace(
                "role = \"asset\"",
                "role = \"asset\"\n        sandbox = true",
            ),
            "only agents",
        );
        refused("", "no [[host]]");
        refused(
            &OK.replace("name = \"h2\"", "name = \"h1\""),
            "host h1 is defined twice",
        );
    }
}
