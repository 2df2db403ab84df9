//! Interoperability with a stock WireGuard peer: Debian's wireguard-go,
//! configured with `wg` from the keys and PSK of a Cordon netmap, exchanges
//! traffic with an overlay-node both ways; and `wg show` reads our UAPI.

use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use base64::Engine;
use overlay_controller::controller::unix_now;
use overlay_controller::ops;
use proto::api::JoinRequest;
use proto::PublicKey;

use crate::common::{eventually, Ctl, Lab};
use crate::nodes::{address_of, up};

fn wg(args: &[&str], input: Option<&str>) -> Result<String> {
    use std::io::Write;
    let mut child = Command::new("wg")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("wg (wireguard-tools) is not installed: run scripts/setup.sh")?;
    if let (Some(mut w), Some(i)) = (child.stdin.take(), input) {
        w.write_all(i.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "wg {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wireguard_go_and_overlay_node_talk_both_ways() -> Result<()> {
    let mut lab = Lab::new()?;
    let ctl = Ctl::start(&lab).await?;
    ctl.enclave("e").await?;
    let a = lab.add_host("a")?;
    let w = lab.add_host("w")?;

    // The overlay-node side.
    let state_a = lab.dir.path().join(format!("{}w{}", lab.prefix, a.k));
    let ta = ctl.token("e", "agent", "cordon").await?;
    up(&mut lab, &a, Some(&ta), &state_a)?;
    let ip_a = address_of(&lab, &state_a).await?;

    // The stock side joins with a key made by `wg`, through the same API.
    let private = wg(&["genkey"], None)?;
    let public = wg(&["pubkey"], Some(&private))?;
    let tw = ctl.token("e", "asset", "stock").await?;
    let req = JoinRequest {
        token: tw,
        public_key: PublicKey::parse(&public).map_err(|e| anyhow::anyhow!("{e}"))?,
        endpoint: Some(format!("{}:51820", w.addr).parse()?),
        hostname: None,
    };
    let joined = ops::join::join(&ctl.ctl, req, unix_now()).await?;
    let peer = joined
        .netmap
        .peers
        .first()
        .context("the stock peer's netmap lists the node")?;
    let ip_w = joined.address.addr().to_string();
    let dir = lab.dir.path();
    std::fs::write(dir.join("wg.key"), &private)?;
    let psk = base64::engine::general_purpose::STANDARD.decode(&peer.preshared_key)?;
    std::fs::write(
        dir.join("wg.psk"),
        base64::engine::general_purpose::STANDARD.encode(psk),
    )?;
    let iface = format!("{}g", lab.prefix);
    let wg_go = Command::new("ip")
        .args([
            "netns",
            "exec",
            &w.ns,
            "env",
            "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD=1",
            "wireguard-go",
            "-f",
            &iface,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("wireguard-go is not installed: run scripts/setup.sh")?;
    let _guard = KillOnDrop(wg_go);
    let sock = format!("/var/run/wireguard/{iface}.sock");
    eventually(Duration::from_secs(5), || {
        Ok(std::path::Path::new(&sock).exists())
    })
    .await?;
    let key_file = dir.join("wg.key").to_string_lossy().into_owned();
    let psk_file = dir.join("wg.psk").to_string_lossy().into_owned();
    let endpoint = peer
        .endpoint
        .clone()
        .context("the node reported its endpoint")?;
    let allowed = peer.allowed_ips[0].to_string();
    let peer_key = peer.public_key.to_string();
    wg(
        &[
            "set",
            &iface,
            "private-key",
            &key_file,
            "listen-port",
            "51820",
            "peer",
            &peer_key,
            "preshared-key",
            &psk_file,
            "endpoint",
            &endpoint,
            "allowed-ips",
            &allowed,
        ],
        None,
    )?;
    lab.exec(
        &w,
        &["ip", "addr", "add", &format!("{ip_w}/24"), "dev", &iface],
    )?;
    lab.exec(&w, &["ip", "link", "set", &iface, "up"])?;

    // Both directions, each starting the handshake once.
    eventually(Duration::from_secs(15), || lab.ping(&w, &ip_a))
        .await
        .with_context(|| lab.logs())?;
    assert!(lab.ping(&a, &ip_w)?, "overlay-node → wireguard-go");

    // `wg show` reads the overlay-node's UAPI: the peer, its endpoint, a
    // recent handshake (not "56 years ago"; `wg` says "1 second ago" in the
    // singular) and traffic.
    let node_iface = format!("{}w{}", lab.prefix, a.k);
    let show = wg(&["show", &node_iface], None)?;
    assert!(show.contains(&format!("peer: {public}")), "{show}");
    assert!(
        show.contains(&format!("endpoint: {}:51820", w.addr)),
        "{show}"
    );
    let handshake = show
        .lines()
        .find(|l| l.contains("latest handshake:"))
        .unwrap_or_default();
    assert!(
        handshake.ends_with("Now")
            || handshake.ends_with(" second ago")
            || handshake.ends_with(" seconds ago"),
        "{show}"
    );
    assert!(show.contains("transfer:"), "{show}");
    let dump = wg(&["show", &node_iface, "dump"], None)?;
    assert!(dump.contains(&public), "{dump}");
    // And refuses to be reconfigured through it.
    assert!(wg(&["set", &node_iface, "listen-port", "1"], None).is_err());
    Ok(())
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}
