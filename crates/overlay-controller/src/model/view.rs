//! One enclave's members and chambers, the netmaps computed from them, and
//! the set of members each change affects.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ipnet::Ipv4Net;
use proto::api::{Chamber, ChamberRule, TopologyEntry};
use proto::{Name, Netmap, Peer, PublicKey, Role};

use super::alloc::HostAllocator;
use super::psk;
use super::reach::{self, Subject};

/// A member as the model holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberEntry {
    /// Storage id (unique across enclaves).
    pub id: i64,
    /// Member name.
    pub name: Name,
    /// Role.
    pub role: Role,
    /// WireGuard public key.
    pub public_key: PublicKey,
    /// Overlay address.
    pub address: Ipv4Addr,
    /// Underlay endpoint, if reported.
    pub endpoint: Option<String>,
    /// Just-in-time expiry, Unix seconds.
    pub expires_at: Option<i64>,
}

impl Subject for MemberEntry {
    fn name(&self) -> &Name {
        &self.name
    }
    fn role(&self) -> Role {
        self.role
    }
}

/// One enclave.
#[derive(Debug, Clone)]
pub struct EnclaveView {
    /// Storage id.
    pub id: i64,
    /// Name.
    pub name: Name,
    /// Address space.
    pub cidr: Ipv4Net,
    /// Whether agents reach agents.
    pub agent_to_agent: bool,
    /// Current enclave version (the last change applied).
    pub version: u64,
    psk: psk::Deriver,
    members: HashMap<i64, MemberEntry>,
    /// Netmap version per member id.
    versions: HashMap<i64, u64>,
    by_name: HashMap<Name, i64>,
    /// Member ids by role: a change looks only at members whose role can
    /// make them peers, so its cost follows the members it affects.
    by_role: HashMap<Role, HashSet<i64>>,
    /// Chambers keyed by the asset they protect.
    chambers: HashMap<Name, Chamber>,
    hosts: HostAllocator,
}

impl EnclaveView {
    /// An enclave with no members at `version`.
    pub fn new(
        id: i64,
        name: Name,
        cidr: Ipv4Net,
        agent_to_agent: bool,
        secret: [u8; 32],
        version: u64,
    ) -> Self {
        Self {
            id,
            name,
            cidr,
            agent_to_agent,
            version,
            psk: psk::Deriver::new(&secret),
            members: HashMap::new(),
            versions: HashMap::new(),
            by_name: HashMap::new(),
            by_role: HashMap::new(),
            chambers: HashMap::new(),
            hosts: HostAllocator::new(cidr),
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the enclave has no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The member with this name.
    pub fn member_by_name(&self, name: &Name) -> Option<&MemberEntry> {
        self.by_name.get(name).and_then(|id| self.members.get(id))
    }

    /// The next free overlay address.
    pub fn next_address(&self) -> Option<Ipv4Addr> {
        self.hosts.next_free()
    }

    /// The netmap version of a member, or `None` if it is not a member.
    pub fn netmap_version(&self, id: i64) -> Option<u64> {
        self.versions.get(&id).copied()
    }

    fn are_peers(&self, a: &MemberEntry, b: &MemberEntry) -> bool {
        reach::peers(a, b, self.agent_to_agent, |n| {
            self.chambers.get(n).map(|c| c.allow.as_slice())
        })
    }

    /// Members that could be `m`'s peers: those of roles the role rule lets
    /// it reach, then those only a chamber can make its peers (named in its
    /// own chamber, or assets whose chambers allow it). A superset of its
    /// peers without repeats; [`Self::peers_of`] filters it.
    fn candidates<'a>(&'a self, m: &'a MemberEntry) -> impl Iterator<Item = i64> + 'a {
        let role_ids = move |r: Role| self.by_role.get(&r).into_iter().flatten().copied();
        let by_role = Role::ALL
            .into_iter()
            .filter(move |r| reach::roles_reach(m.role, *r, self.agent_to_agent))
            .flat_map(role_ids);
        // Chamber-only candidates are few; collect them to drop repeats and
        // those the role pass already yields.
        let mut extra: HashSet<i64> = HashSet::new();
        if let Some(own) = self.chambers.get(&m.name) {
            for rule in &own.allow {
                match rule {
                    ChamberRule::Member(n) => extra.extend(self.by_name.get(n).copied()),
                    ChamberRule::Role(r) => extra.extend(role_ids(*r)),
                }
            }
        }
        for c in self.chambers.values() {
            if reach::allows(&c.allow, m) {
                extra.extend(self.by_name.get(&c.asset).copied());
            }
        }
        extra.retain(|id| {
            self.members
                .get(id)
                .is_some_and(|p| !reach::roles_reach(m.role, p.role, self.agent_to_agent))
        });
        by_role.chain(extra).filter(move |id| *id != m.id)
    }

    fn peers_of<'a>(&'a self, m: &'a MemberEntry) -> impl Iterator<Item = &'a MemberEntry> + 'a {
        self.candidates(m)
            .filter_map(|id| self.members.get(&id))
            .filter(move |p| self.are_peers(m, p))
    }

    fn bump(&mut self, version: u64, ids: &[i64]) {
        self.version = self.version.max(version);
        for id in ids {
            if let Some(v) = self.versions.get_mut(id) {
                *v = version;
            }
        }
    }

    /// Adds a member at `version`; returns the ids whose netmap changed
    /// (the member and its new peers).
    pub fn add_member(&mut self, m: MemberEntry, version: u64) -> Vec<i64> {
        if self.members.contains_key(&m.id) {
            return Vec::new();
        }
        let mut affected: Vec<i64> = self.peers_of(&m).map(|p| p.id).collect();
        affected.push(m.id);
        self.hosts.mark(m.address);
        self.by_name.insert(m.name.clone(), m.id);
        self.by_role.entry(m.role).or_default().insert(m.id);
        self.versions.insert(m.id, version);
        self.members.insert(m.id, m);
        self.bump(version, &affected);
        affected
    }

    /// Removes a member at `version`; returns the ids whose netmap changed
    /// (its former peers and the member itself, whose waiters must learn it
    /// is gone).
    pub fn remove_member(&mut self, id: i64, version: u64) -> Vec<i64> {
        let Some(m) = self.members.get(&id) else {
            self.version = self.version.max(version);
            return Vec::new();
        };
        let mut affected: Vec<i64> = self.peers_of(m).map(|p| p.id).collect();
        affected.push(id);
        self.bump(version, &affected);
        if let Some(m) = self.members.remove(&id) {
            self.hosts.release(m.address);
            self.by_name.remove(&m.name);
            if let Some(ids) = self.by_role.get_mut(&m.role) {
                ids.remove(&m.id);
            }
        }
        self.versions.remove(&id);
        affected
    }

    /// Adds a chamber at `version`; returns the ids whose netmap changed (the
    /// asset and every member whose access to it changed).
    pub fn add_chamber(&mut self, chamber: Chamber, version: u64) -> Vec<i64> {
        let asset = self.member_by_name(&chamber.asset).cloned();
        let before: BTreeSet<i64> = asset
            .as_ref()
            .map(|a| self.peers_of(a).map(|p| p.id).collect())
            .unwrap_or_default();
        self.chambers.insert(chamber.asset.clone(), chamber);
        let Some(asset) = asset else {
            self.version = self.version.max(version);
            return Vec::new();
        };
        let after: BTreeSet<i64> = self.peers_of(&asset).map(|p| p.id).collect();
        let mut affected: Vec<i64> = before.symmetric_difference(&after).copied().collect();
        if !affected.is_empty() {
            affected.push(asset.id);
        }
        self.bump(version, &affected);
        affected
    }

    /// The enclave's gateway configuration changed at `version` (a new
    /// policy): the gateways get a new netmap version, which is what their
    /// ASC follows to refetch its configuration. Returns their ids.
    pub fn touch_gateways(&mut self, version: u64) -> Vec<i64> {
        let gateways: Vec<i64> = self
            .members
            .values()
            .filter(|m| m.role == Role::Gateway)
            .map(|m| m.id)
            .collect();
        self.bump(version, &gateways);
        gateways
    }

    /// Every member id (for enclave deletion).
    pub fn member_ids(&self) -> Vec<i64> {
        self.members.keys().copied().collect()
    }

    /// The netmap of member `id`, or `None` if it is not a member.
    pub fn netmap(&self, id: i64) -> Option<Netmap> {
        let me = self.members.get(&id)?;
        let mut peers: Vec<Peer> = self
            .peers_of(me)
            .map(|p| Peer {
                name: p.name.clone(),
                role: p.role,
                public_key: p.public_key,
                preshared_key: STANDARD.encode(self.psk.derive(&me.public_key, &p.public_key)),
                endpoint: p.endpoint.clone(),
                allowed_ips: vec![Ipv4Net::from(p.address)],
            })
            .collect();
        peers.sort_by(|a, b| a.name.cmp(&b.name));
        Some(Netmap {
            version: self.versions.get(&id).copied().unwrap_or(self.version),
            enclave: self.name.clone(),
            member: me.name.clone(),
            address: Ipv4Net::from(me.address),
            cidr: self.cidr,
            peers,
        })
    }

    /// Every member with the names of its peers (admin topology view).
    pub fn topology(&self) -> Vec<TopologyEntry> {
        let mut out: Vec<TopologyEntry> = self
            .members
            .values()
            .map(|m| {
                let mut peers: Vec<Name> = self.peers_of(m).map(|p| p.name.clone()).collect();
                peers.sort();
                TopologyEntry {
                    name: m.name.clone(),
                    role: m.role,
                    address: Ipv4Net::from(m.address),
                    peers,
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proto::api::ChamberRule;

    fn name(s: &str) -> Name {
        Name::new(s).unwrap_or_else(|_| panic!("bad test name {s}"))
    }

    fn member(id: i64, role: Role) -> MemberEntry {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&id.to_le_bytes());
        key[31] = 1;
        MemberEntry {
            id,
            name: name(&format!("m{id}")),
            role,
            public_key: PublicKey::from_bytes(key),
            address: Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + id as u32),
            endpoint: None,
            expires_at: None,
        }
    }

    fn view(a2a: bool) -> EnclaveView {
        let cidr: Ipv4Net = "100.64.0.0/16".parse().unwrap_or_else(|_| panic!("cidr"));
        EnclaveView::new(1, name("e"), cidr, a2a, [5; 32], 0)
    }

    fn peer_names(v: &EnclaveView, id: i64) -> Vec<String> {
        v.netmap(id)
            .map(|n| n.peers.iter().map(|p| p.name.to_string()).collect())
            .unwrap_or_default()
    }

    #[test]
    fn join_affects_only_new_peers() {
        let mut v = view(false);
        v.add_member(member(1, Role::Agent), 1);
        v.add_member(member(2, Role::Agent), 2);
        let affected = v.add_member(member(3, Role::Asset), 3);
        assert_eq!(
            affected.iter().copied().collect::<BTreeSet<_>>(),
            [1, 2, 3].into()
        );
        assert_eq!(v.netmap_version(1), Some(3));
        let affected = v.add_member(member(4, Role::Agent), 4);
        assert_eq!(
            affected.iter().copied().collect::<BTreeSet<_>>(),
            [3, 4].into()
        );
        assert_eq!(
            v.netmap_version(1),
            Some(3),
            "agent 1 is not agent 4's peer"
        );
        assert_eq!(peer_names(&v, 1), vec!["m3"]);
    }

    #[test]
    fn chamber_limits_asset_and_reports_changes() {
        let mut v = view(true);
        for (id, r) in [
            (1, Role::Agent),
            (2, Role::Agent),
            (3, Role::Asset),
            (4, Role::Gateway),
        ] {
            v.add_member(member(id, r), id as u64);
        }
        assert_eq!(peer_names(&v, 3), vec!["m1", "m2", "m4"]);
        let affected = v.add_chamber(
            Chamber {
                name: name("design"),
                asset: name("m3"),
                allow: vec![ChamberRule::Member(name("m1"))],
            },
            5,
        );
        assert_eq!(
            affected.iter().copied().collect::<BTreeSet<_>>(),
            [2, 3, 4].into()
        );
        assert_eq!(peer_names(&v, 3), vec!["m1"]);
        assert_eq!(peer_names(&v, 2), vec!["m1", "m4"]);
        assert_eq!(v.netmap_version(1), Some(4), "m1's access did not change");
    }

    #[test]
    fn chamber_before_join_protects_from_the_start() {
        let mut v = view(true);
        v.add_member(member(1, Role::Agent), 1);
        let affected = v.add_chamber(
            Chamber {
                name: name("c"),
                asset: name("m2"),
                allow: vec![ChamberRule::Role(Role::Gateway)],
            },
            2,
        );
        assert!(affected.is_empty());
        let affected = v.add_member(member(2, Role::Asset), 3);
        assert_eq!(affected, vec![2]);
        assert!(peer_names(&v, 1).is_empty());
    }

    #[test]
    fn removal_affects_former_peers_and_self() {
        let mut v = view(false);
        for (id, r) in [(1, Role::Agent), (2, Role::Agent), (3, Role::Gateway)] {
            v.add_member(member(id, r), id as u64);
        }
        let affected: BTreeSet<i64> = v.remove_member(3, 4).into_iter().collect();
        assert_eq!(affected, [1, 2, 3].into());
        assert!(v.netmap(3).is_none());
        assert_eq!(v.netmap_version(1), Some(4));
        assert!(v.remove_member(3, 5).is_empty());
    }

    #[test]
    fn psk_is_the_same_from_both_ends() {
        let mut v = view(true);
        v.add_member(member(1, Role::Agent), 1);
        v.add_member(member(2, Role::Agent), 2);
        let a = v.netmap(1).map(|n| n.peers[0].preshared_key.clone());
        let b = v.netmap(2).map(|n| n.peers[0].preshared_key.clone());
        assert!(a.is_some());
        assert_eq!(a, b);
    }

    fn arb_role() -> impl Strategy<Value = Role> {
        prop_oneof![Just(Role::Agent), Just(Role::Asset), Just(Role::Gateway)]
    }

    proptest! {
        /// The acceptance property: in a random enclave with random chambers,
        /// A lists B iff B lists A, and no netmap names a member of another
        /// enclave; and the affected sets reported by changes are exactly the
        /// members whose netmap changed.
        #[test]
        fn netmaps_are_symmetric_and_enclosed(
            roles in proptest::collection::vec(arb_role(), 1..25),
            other in proptest::collection::vec(arb_role(), 1..8),
            a2a in any::<bool>(),
            chambers in proptest::collection::vec(
                (0usize..25, proptest::collection::vec((any::<bool>(), 0usize..25, arb_role()), 0..4)), 0..5),
        ) {
            let mut v = view(a2a);
            let mut w = EnclaveView::new(2, name("other"), "100.65.0.0/16".parse().unwrap_or_else(|_| panic!("cidr")), true, [6; 32], 0);
            for (i, r) in other.iter().enumerate() {
                w.add_member(member(1000 + i as i64, *r), 1);
            }
            let n = roles.len();
            let mut version = 0;
            for (i, r) in roles.iter().enumerate() {
                version += 1;
                let before: Vec<Option<Netmap>> = (0..n as i64).map(|id| v.netmap(id)).collect();
                let affected: BTreeSet<i64> = v.add_member(member(i as i64, *r), version).into_iter().collect();
                for id in 0..n as i64 {
                    let changed = before[id as usize].as_ref().map(|m| &m.peers) != v.netmap(id).as_ref().map(|m| &m.peers);
                    prop_assert_eq!(changed, affected.contains(&id), "member {} affected set wrong on join", id);
                }
            }
            for (c, (asset, allow)) in chambers.into_iter().enumerate() {
                version += 1;
                let allow = allow.into_iter().map(|(by_name, who, role)| if by_name {
                    ChamberRule::Member(name(&format!("m{}", who % n)))
                } else {
                    ChamberRule::Role(role)
                }).collect();
                let before: Vec<Option<Netmap>> = (0..n as i64).map(|id| v.netmap(id)).collect();
                let affected: BTreeSet<i64> = v.add_chamber(Chamber { name: name(&format!("c{c}")), asset: name(&format!("m{}", asset % n)), allow }, version).into_iter().collect();
                for id in 0..n as i64 {
                    let changed = before[id as usize].as_ref().map(|m| &m.peers) != v.netmap(id).as_ref().map(|m| &m.peers);
                    prop_assert!(!changed || affected.contains(&id), "member {} changed but was not woken", id);
                }
            }
            let names: BTreeSet<String> = (0..n).map(|i| format!("m{i}")).collect();
            for a in 0..n as i64 {
                let map = v.netmap(a).unwrap_or_else(|| panic!("member {a} has no netmap"));
                for p in &map.peers {
                    prop_assert!(names.contains(p.name.as_str()), "foreign peer {}", p.name);
                    prop_assert!(v.cidr.contains(&p.allowed_ips[0].addr()));
                    let b = v.member_by_name(&p.name).map(|m| m.id).unwrap_or(-1);
                    prop_assert!(peer_names(&v, b).contains(&format!("m{a}")), "m{} lists {} but not back", a, p.name);
                }
            }
        }
    }
}
