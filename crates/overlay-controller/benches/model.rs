//! Controller CPU per membership change in the in-memory model, at 10,000
//! members: the part of a change that grows with the enclave.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_main, BatchSize, Criterion};
use overlay_controller::model::{EnclaveView, MemberEntry};
use proto::{Name, PublicKey, Role};

const N: i64 = 10_000;

fn member(id: i64, role: Role) -> MemberEntry {
    let mut key = [1u8; 32];
    key[..8].copy_from_slice(&id.to_le_bytes());
    MemberEntry {
        id,
        name: Name::new(format!("m{id}")).unwrap_or_else(|_| unreachable!()),
        role,
        public_key: PublicKey::from_bytes(key),
        address: Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + id as u32),
        endpoint: Some("198.18.0.2:51820".into()),
        expires_at: None,
    }
}

/// A gateway, an asset and `N` agents.
fn enclave(agent_to_agent: bool) -> EnclaveView {
    let cidr = "100.64.0.0/16".parse().unwrap_or_else(|_| unreachable!());
    let mut v = EnclaveView::new(
        1,
        Name::new("e").unwrap_or_else(|_| unreachable!()),
        cidr,
        agent_to_agent,
        [7; 32],
        0,
    );
    v.add_member(member(1, Role::Gateway), 1);
    v.add_member(member(2, Role::Asset), 2);
    for id in 3..N + 3 {
        v.add_member(member(id, Role::Agent), id as u64);
    }
    v
}

fn bench(c: &mut Criterion) {
    let base = enclave(false);
    let mut g = c.benchmark_group("change at 10k members");
    g.bench_function("join agent (no agent-to-agent)", |b| {
        b.iter_batched_ref(
            || base.clone(),
            |v| black_box(v.add_member(member(N + 10, Role::Agent), 1_000_000)),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("remove agent (no agent-to-agent)", |b| {
        b.iter_batched_ref(
            || base.clone(),
            |v| black_box(v.remove_member(500, 1_000_000)),
            BatchSize::LargeInput,
        )
    });
    let full = enclave(true);
    g.bench_function("join agent (agent-to-agent: 10k affected)", |b| {
        b.iter_batched_ref(
            || full.clone(),
            |v| black_box(v.add_member(member(N + 10, Role::Agent), 1_000_000)),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("netmap of an agent", |b| {
        b.iter(|| black_box(base.netmap(500)))
    });
    g.bench_function("netmap of the gateway (10k peers)", |b| {
        b.iter(|| black_box(base.netmap(1)))
    });
    g.finish();
}

#[allow(missing_docs)] // the macro generates an undocumented fn
mod group {
    criterion::criterion_group!(benches, super::bench);
}
criterion_main!(group::benches);
