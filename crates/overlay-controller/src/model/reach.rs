//! The reachability rule: whether two members of one enclave are peers.
//!
//! - A chambered asset and another member are peers only if the other
//!   member matches the chamber's allow list (by name or by role). When both
//!   are chambered, each must allow the other.
//! - Otherwise by role: a gateway is everyone's peer; agents reach assets;
//!   agents reach agents only with the enclave's `agent_to_agent` option;
//!   assets do not reach assets.
//!
//! The rule is symmetric, so netmaps are too: A lists B iff B lists A.

use proto::api::ChamberRule;
use proto::{Name, Role};

/// What the rule needs to know about a member.
pub trait Subject {
    /// Member name.
    fn name(&self) -> &Name;
    /// Member role.
    fn role(&self) -> Role;
}

/// Whether `who` matches any rule of an allow list.
pub fn allows(allow: &[ChamberRule], who: &impl Subject) -> bool {
    allow.iter().any(|r| match r {
        ChamberRule::Member(n) => n == who.name(),
        ChamberRule::Role(role) => *role == who.role(),
    })
}

/// Whether `a` and `b` (distinct members of one enclave) are peers.
/// `chamber_of(name)` gives the allow list of the chamber protecting that
/// member, if any.
pub fn peers<'c, S: Subject>(
    a: &S,
    b: &S,
    agent_to_agent: bool,
    chamber_of: impl Fn(&Name) -> Option<&'c [ChamberRule]>,
) -> bool {
    if a.name() == b.name() {
        return false;
    }
    let ca = chamber_of(a.name());
    let cb = chamber_of(b.name());
    if ca.is_some() || cb.is_some() {
        return ca.is_none_or(|allow| allows(allow, b)) && cb.is_none_or(|allow| allows(allow, a));
    }
    roles_reach(a.role(), b.role(), agent_to_agent)
}

/// The role rule alone (no chambers involved).
pub fn roles_reach(a: Role, b: Role, agent_to_agent: bool) -> bool {
    match (a, b) {
        (Role::Gateway, _) | (_, Role::Gateway) => true,
        (Role::Agent, Role::Asset) | (Role::Asset, Role::Agent) => true,
        (Role::Agent, Role::Agent) => agent_to_agent,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct M(Name, Role);
    impl Subject for M {
        fn name(&self) -> &Name {
            &self.0
        }
        fn role(&self) -> Role {
            self.1
        }
    }
    fn m(n: &str, r: Role) -> M {
        M(
            Name::new(n).unwrap_or_else(|_| panic!("bad test name {n}")),
            r,
        )
    }
    fn none(_: &Name) -> Option<&'static [ChamberRule]> {
        None
    }

    #[test]
    fn role_rule() {
        let (a1, a2) = (m("a1", Role::Agent), m("a2", Role::Agent));
        let (s1, s2) = (m("s1", Role::Asset), m("s2", Role::Asset));
        let g = m("g", Role::Gateway);
        assert!(peers(&a1, &a2, true, none));
        assert!(!peers(&a1, &a2, false, none));
        assert!(peers(&a1, &s1, false, none));
        assert!(!peers(&s1, &s2, true, none));
        assert!(peers(&g, &s1, false, none) && peers(&a1, &g, false, none));
        assert!(!peers(&a1, &a1, true, none));
    }

    #[test]
    fn chamber_rule() {
        let a1 = m("a1", Role::Agent);
        let a2 = m("a2", Role::Agent);
        let g = m("g", Role::Gateway);
        let rtl = m("rtl", Role::Asset);
        let allow = vec![ChamberRule::Member(a1.0.clone())];
        let chamber = |n: &Name| (n.as_str() == "rtl").then_some(allow.as_slice());
        assert!(peers(&a1, &rtl, false, chamber));
        assert!(peers(&rtl, &a1, false, chamber));
        assert!(!peers(&a2, &rtl, false, chamber));
        assert!(
            !peers(&g, &rtl, false, chamber),
            "a chamber overrides the gateway rule"
        );
        let by_role = vec![ChamberRule::Role(Role::Gateway)];
        let chamber = |n: &Name| (n.as_str() == "rtl").then_some(by_role.as_slice());
        assert!(peers(&g, &rtl, false, chamber));
        assert!(!peers(&a1, &rtl, false, chamber));
    }
}
