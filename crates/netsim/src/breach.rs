//! Breaking isolation on purpose, to prove the checker can fail: two nodes
//! of different enclaves are restarted with each other as extra peers
//! through the node's debug-build test hook (`CORDON_NODE_TEST_EXTRA_PEERS`,
//! see `overlay_node::test_hook`), with routes to each other. A correct
//! checker must then report their cells as unexpected.

use anyhow::{bail, Result};
use base64::Engine as _;
use proto::{Name, Peer, PublicKey};

use crate::run::Running;

/// Gives members `a` and `b` (different enclaves, not sandboxed) each
/// other as peers, behind the controller's back.
///
/// # Errors
/// When they are in one enclave, sandboxed, or a restart fails.
pub async fn breach(run: &mut Running, a: usize, b: usize) -> Result<()> {
    let (ma, mb) = (run.members[a].clone(), run.members[b].clone());
    if ma.enclave == mb.enclave || ma.sandbox_ns.is_some() || mb.sandbox_ns.is_some() {
        bail!("breach needs two unsandboxed members of different enclaves");
    }
    let mut psk = [0u8; 32];
    rand::Rng::fill(&mut rand::thread_rng(), &mut psk);
    let psk = base64::engine::general_purpose::STANDARD.encode(psk);
    let peer_for = |m: &crate::run::MemberRun, key: PublicKey, run: &Running| -> Result<Peer> {
        Ok(Peer {
            name: Name::new(format!("breach-{}", m.name))?,
            role: proto::Role::Asset,
            public_key: key,
            preshared_key: psk.clone(),
            endpoint: Some(format!("{}:{}", run.hosts[m.host].addr, m.port)),
            allowed_ips: vec![format!("{}/32", m.addr).parse()?],
        })
    };
    let ka = run.admin.public_key(&ma.enclave, &ma.name).await?;
    let kb = run.admin.public_key(&mb.enclave, &mb.name).await?;
    for (me, other, key) in [(a, &mb, kb), (b, &ma, ka)] {
        let file = run.lab.dir.join(format!("breach-{me}.json"));
        std::fs::write(
            &file,
            serde_json::to_vec(&vec![peer_for(other, key, run)?])?,
        )?;
        let f = file.display().to_string();
        run.restart_node(me, "TERM", &[("CORDON_NODE_TEST_EXTRA_PEERS", &f)])
            .await?;
    }
    for (me, other) in [(a, &mb), (b, &ma)] {
        let iface = run.members[me].iface.clone();
        run.ip_in(
            me,
            &[
                "route",
                "replace",
                &format!("{}/32", other.addr),
                "dev",
                &iface,
            ],
        )?;
    }
    Ok(())
}
