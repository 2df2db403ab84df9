//! Nodes joined through a controller reach their enclave only; removal,
//! restart and the exec sandbox.

use std::time::{Duration, Instant};

use crate::common::{eventually, Ctl, Host, Lab, NODE};
use anyhow::{Context, Result};
use overlay_controller::controller::unix_now;
use overlay_controller::ops;
use proto::Name;

/// The overlay address a node joined with, once its state dir has it.
pub async fn address_of(lab: &Lab, state: &std::path::Path) -> Result<String> {
    let file = state.join("membership.json");
    eventually(Duration::from_secs(15), || Ok(file.exists()))
        .await
        .with_context(|| lab.logs())?;
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&file)?)?;
    let cidr = m["address"].as_str().context("address")?;
    Ok(cidr.trim_end_matches("/32").to_owned())
}

pub fn up(
    lab: &mut Lab,
    host: &Host,
    token: Option<&str>,
    state: &std::path::Path,
) -> Result<usize> {
    let iface = format!("{}w{}", lab.prefix, host.k);
    let endpoint = format!("{}:51820", host.addr);
    let state = state.to_string_lossy().into_owned();
    let mut args = vec![
        NODE,
        "up",
        "--state-dir",
        &state,
        "--interface",
        &iface,
        "--endpoint",
        &endpoint,
    ];
    if let Some(t) = token {
        args.extend(["--token", t]);
    }
    lab.spawn(host, &args)
}

/// The peers a node's UAPI socket reports (public keys, hex).
fn uapi_peers(lab: &Lab, host: &Host) -> Vec<String> {
    let iface = format!("{}w{}", lab.prefix, host.k);
    let out = std::process::Command::new(NODE)
        .args(["status", "--json", "--state-dir"])
        .arg(lab.dir.path().join(&iface))
        .output();
    out.ok()
        .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
        .and_then(|v| {
            v["peers"].as_array().map(|a| {
                a.iter()
                    .filter_map(|p| p["name"].as_str().map(str::to_owned))
                    .collect()
            })
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_reach_their_enclave_only_and_removal_cuts_off() -> Result<()> {
    let mut lab = Lab::new()?;
    let ctl = Ctl::start(&lab).await?;
    ctl.enclave("e").await?;
    ctl.enclave("other").await?;
    let a = lab.add_host("a")?;
    let b = lab.add_host("b")?;
    let x = lab.add_host("x")?;
    let states: Vec<_> = [&a, &b, &x]
        .iter()
        .map(|h| lab.dir.path().join(format!("{}w{}", lab.prefix, h.k)))
        .collect();
    let ta = ctl.token("e", "agent", "a1").await?;
    let tb = ctl.token("e", "asset", "s1").await?;
    let tx = ctl.token("other", "agent", "x1").await?;
    let node_a = up(&mut lab, &a, Some(&ta), &states[0])?;
    up(&mut lab, &b, Some(&tb), &states[1])?;
    up(&mut lab, &x, Some(&tx), &states[2])?;
    let (ip_a, ip_b, ip_x) = (
        address_of(&lab, &states[0]).await?,
        address_of(&lab, &states[1]).await?,
        address_of(&lab, &states[2]).await?,
    );
    assert!(
        ip_a != ip_b && ip_x.starts_with("100.64.1."),
        "{ip_a} {ip_b} {ip_x}"
    );
    // A ping to a node's own address proves nothing: check each one is not local.
    let local = lab.exec(&a, &["ip", "-o", "addr"])?;
    assert!(!String::from_utf8_lossy(&local.stdout).contains(&format!(" {ip_b}/")));

    let res = eventually(Duration::from_secs(15), || lab.ping(&a, &ip_b)).await;
    res.with_context(|| lab.logs())?;
    assert!(lab.ping(&b, &ip_a)?, "both ways");
    assert!(
        !lab.ping(&x, &ip_a)? && !lab.ping(&x, &ip_b)?,
        "another enclave's node reaches nothing in e"
    );
    assert!(!lab.ping(&a, &ip_x)?, "nor the other way");
    assert_eq!(
        uapi_peers(&lab, &a),
        ["s1"],
        "wg-style status names the peer"
    );

    // The sandbox: a command run with `exec` sees only lo and the enclave,
    // reaches the asset over the overlay but not the underlay, and cannot
    // touch the node.
    lab.spawn(
        &b,
        &["python3", "-m", "http.server", "8000", "--bind", "0.0.0.0"],
    )?;
    let probe = |addr: &str| {
        format!("python3 -c \"import socket; socket.create_connection(('{addr}', 8000), timeout=2)\" && echo reached-{addr} || echo blocked-{addr}")
    };
    let iface = format!("{}w{}", lab.prefix, a.k);
    let script = format!(
        "ip -o link | awk -F': ' '{{print $2}}' | sed 's/@.*//' | tr '\\n' ' '; echo; {}; {}; cat {}/private.key 2>/dev/null && echo read-key || echo no-key; ip link set {iface} netns 1 2>/dev/null && echo moved || echo cannot-move",
        probe(&ip_b),
        probe(&b.addr),
        states[0].display(),
    );
    let http_up = eventually(Duration::from_secs(10), || {
        Ok(lab
            .exec(
                &b,
                &[
                    "python3",
                    "-c",
                    "import socket; socket.create_connection(('127.0.0.1', 8000), timeout=1)",
                ],
            )?
            .status
            .success())
    })
    .await;
    http_up.with_context(|| lab.logs())?;
    let connect = format!("import socket; socket.create_connection(('{ip_b}', 8000), timeout=2)");
    let direct = lab.exec(&a, &["python3", "-c", &connect])?;
    assert!(
        direct.status.success(),
        "from a's namespace over the overlay: {}",
        String::from_utf8_lossy(&direct.stderr)
    );
    let state_a = states[0].to_string_lossy().into_owned();
    let out = lab.exec(
        &a,
        &[
            NODE,
            "exec",
            "--state-dir",
            &state_a,
            "--",
            "sh",
            "-c",
            &script,
        ],
    )?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{text}{err}");
    let mut links: Vec<&str> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    links.sort();
    let mut want = vec!["lo", iface.as_str()];
    want.sort();
    assert_eq!(links, want, "{text}{err}");
    assert!(text.contains(&format!("reached-{ip_b}")), "{text}{err}");
    assert!(
        text.contains(&format!("blocked-{}", b.addr)),
        "the underlay is out of reach: {text}{err}"
    );
    assert!(
        text.contains("no-key") && text.contains("cannot-move"),
        "{text}{err}"
    );
    // The interface is back on the host and the node still forwards.
    assert!(
        lab.ping(&a, &ip_b)?,
        "after exec the node carries traffic again"
    );

    // Removal: a's peer entry for s1 is gone within a second.
    let t0 = Instant::now();
    ops::member::remove(&ctl.ctl, &Name::new("e")?, &Name::new("s1")?, unix_now()).await?;
    eventually(Duration::from_secs(1), || {
        Ok(uapi_peers(&lab, &a).is_empty())
    })
    .await
    .context("s1 still in a's peers after 1 s")?;
    let cut_off = t0.elapsed();
    assert!(!lab.ping(&a, &ip_b)?);
    // The removed node tears down and forgets its membership.
    eventually(Duration::from_secs(5), || {
        Ok(!states[1].join("node.token").exists())
    })
    .await?;

    // A node killed hard comes back from its state dir with the same address.
    let tc = ctl.token("e", "asset", "s2").await?;
    let c = lab.add_host("c")?;
    let state_c = lab.dir.path().join(format!("{}w{}", lab.prefix, c.k));
    let node_c = up(&mut lab, &c, Some(&tc), &state_c)?;
    let ip_c = address_of(&lab, &state_c).await?;
    eventually(Duration::from_secs(15), || lab.ping(&a, &ip_c))
        .await
        .with_context(|| lab.logs())?;
    lab.signal(node_a, "-KILL")?;
    up(&mut lab, &a, None, &states[0])?;
    let t1 = Instant::now();
    eventually(Duration::from_secs(15), || lab.ping(&a, &ip_c))
        .await
        .with_context(|| lab.logs())?;
    let back_in = t1.elapsed();
    assert_eq!(
        address_of(&lab, &states[0]).await?,
        ip_a,
        "same address after the restart"
    );
    // SIGTERM: the node exits cleanly, its interface and UAPI socket are gone.
    let c_iface = format!("{}w{}", lab.prefix, c.k);
    assert!(lab
        .exec(&c, &["ip", "link", "show", &c_iface])?
        .status
        .success());
    lab.signal(node_c, "-TERM")?;
    assert!(
        !lab.exec(&c, &["ip", "link", "show", &c_iface])?
            .status
            .success(),
        "interface removed"
    );
    assert!(
        !std::path::Path::new(&format!("/var/run/wireguard/{c_iface}.sock")).exists(),
        "UAPI socket removed"
    );
    assert!(!state_c.join("node.pid").exists());
    assert!(
        state_c.join("membership.json").exists(),
        "a clean stop keeps the membership for the next start"
    );
    eprintln!("removal reached the peer in {cut_off:?}; restart resumed traffic in {back_in:?}");
    Ok(())
}
