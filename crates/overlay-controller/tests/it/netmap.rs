use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hyper::{Method, StatusCode};
use overlay_controller::controller::unix_now;
use overlay_controller::ops;
use serde_json::{json, Value};

use crate::both;
use crate::common::{eventually, peers, Db, Harness};

fn token(v: &Value) -> Result<String> {
    Ok(v["node_token"].as_str().context("node_token")?.to_owned())
}

fn version(v: &Value) -> Result<u64> {
    v["version"].as_u64().context("version")
}

async fn long_poll_wakes_on_change_and_times_out(db: Db) -> Result<()> {
    let h = Harness::start(db).await?;
    h.create_enclave(json!({"name": "e", "agent_to_agent": false}))
        .await?;
    let a1 = h.joined("e", "agent", "a1").await?;
    let a1_token = token(&a1)?;
    let v1 = version(&a1["netmap"])?;

    // Nothing new: 204 after the wait.
    let start = Instant::now();
    let (status, _) = h.poll(&a1_token, v1, 1).await?;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(start.elapsed() >= Duration::from_millis(900));

    // An old version answers at once.
    let (status, map) = h.poll(&a1_token, 0, 30).await?;
    assert_eq!((status, version(&map)?), (StatusCode::OK, v1));

    // A change that does not concern a1 (another agent, no agent-to-agent)
    // does not wake it; one that does (an asset) wakes it at once.
    let waiter = {
        let c = h.client(Some(&a1_token))?;
        tokio::spawn(async move {
            c.send(
                Method::GET,
                &format!("/api/v1/node/netmap?since={v1}&timeout=30"),
                None,
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.joined("e", "agent", "a2").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiter.is_finished(),
        "a2 is not a1's peer: a1 must keep waiting"
    );
    let t0 = Instant::now();
    h.joined("e", "asset", "s1").await?;
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), waiter).await???;
    let woke_in = t0.elapsed();
    assert_eq!(status, StatusCode::OK);
    let map: Value = serde_json::from_slice(&body)?;
    assert_eq!(peers(&map), ["s1"]);
    assert!(version(&map)? > v1);
    assert!(woke_in < Duration::from_secs(1), "woke after {woke_in:?}");

    // Bad node credentials.
    for bad in ["", "cn1.1.wrong", "cn1.x.y", "nope", "cadm_x"] {
        let (status, _) = h.poll(bad, 0, 1).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}");
    }
    let admin_token = std::fs::read_to_string(h.dir.path().join("admin.token"))?;
    let (status, _) = h.poll(admin_token.trim(), 0, 1).await?;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the admin token is not a node token"
    );
    let c = h.client(Some(&a1_token))?;
    let (status, _) = h.call(&c, Method::GET, "/api/v1/enclaves", None).await?;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a node token is not an admin token"
    );
    let (status, _) = h
        .call(&c, Method::GET, "/api/v1/node/netmap?since=abc", None)
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    h.stop().await?;
    Ok(())
}
both!(long_poll_wakes_on_change_and_times_out);

async fn removal_is_one_step(db: Db) -> Result<()> {
    let h = Harness::start(db).await?;
    h.create_enclave(json!({"name": "e"})).await?;
    let gw = h.joined("e", "gateway", "gw").await?;
    let a1 = h.joined("e", "agent", "a1").await?;
    let a2 = h.joined("e", "agent", "a2").await?;
    let (gw_t, a1_t, a2_t) = (token(&gw)?, token(&a1)?, token(&a2)?);
    let (_, gw_map) = h.poll(&gw_t, 0, 1).await?;
    assert_eq!(peers(&gw_map), ["a1", "a2"]);

    // a2 waits; a1 is removed; gateway and a2 see it at once, a1 gets 401
    // while waiting and on every later call.
    let (_, a2_map) = h.poll(&a2_t, 0, 1).await?;
    let a2_wait = {
        let c = h.client(Some(&a2_t))?;
        let v = version(&a2_map)?;
        tokio::spawn(async move {
            c.send(
                Method::GET,
                &format!("/api/v1/node/netmap?since={v}&timeout=30"),
                None,
            )
            .await
        })
    };
    let (_, a1_map) = h.poll(&a1_t, 0, 1).await?;
    let a1_wait = {
        let c = h.client(Some(&a1_t))?;
        let v = version(&a1_map)?;
        tokio::spawn(async move {
            c.send(
                Method::GET,
                &format!("/api/v1/node/netmap?since={v}&timeout=30"),
                None,
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = Instant::now();
    h.expect(
        Method::DELETE,
        "/api/v1/enclaves/e/members/a1",
        None,
        StatusCode::NO_CONTENT,
    )
    .await?;
    let (s2, b2) = tokio::time::timeout(Duration::from_secs(5), a2_wait).await???;
    let (s1, _) = tokio::time::timeout(Duration::from_secs(5), a1_wait).await???;
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_eq!(s2, StatusCode::OK);
    assert_eq!(peers(&serde_json::from_slice(&b2)?), ["gw"]);
    assert_eq!(
        s1,
        StatusCode::UNAUTHORIZED,
        "the removed member's waiting poll is refused"
    );
    let (s, _) = h.poll(&a1_t, 0, 1).await?;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, gw_map) = h.poll(&gw_t, 0, 1).await?;
    assert_eq!(peers(&gw_map), ["a2"]);
    h.expect(
        Method::DELETE,
        "/api/v1/enclaves/e/members/a1",
        None,
        StatusCode::NOT_FOUND,
    )
    .await?;
    h.expect(
        Method::DELETE,
        "/api/v1/enclaves/nope/members/a1",
        None,
        StatusCode::NOT_FOUND,
    )
    .await?;

    // Deleting the enclave revokes everyone.
    h.expect(
        Method::DELETE,
        "/api/v1/enclaves/e",
        None,
        StatusCode::NO_CONTENT,
    )
    .await?;
    for t in [&gw_t, &a2_t] {
        let (s, _) = h.poll(t, 0, 1).await?;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    h.stop().await?;
    Ok(())
}
both!(removal_is_one_step);

async fn just_in_time_members_expire(db: Db) -> Result<()> {
    let h = Harness::start(db).await?;
    h.create_enclave(json!({"name": "e"})).await?;
    let s = h.joined("e", "asset", "s").await?;
    // Injected clock: expiry at now+3600 removes exactly the due member.
    let t = h
        .token(
            "e",
            json!({"role": "agent", "member_name": "temp", "member_ttl_seconds": 3600}),
        )
        .await?;
    let (status, temp) = h.join(&t).await?;
    assert_eq!(status, StatusCode::OK);
    assert!(temp["netmap"]["peers"]
        .as_array()
        .is_some_and(|p| p.len() == 1));
    assert_eq!(ops::member::expire(&h.ctl, unix_now() + 10).await?, 0);
    assert_eq!(ops::member::expire(&h.ctl, unix_now() + 3601).await?, 1);
    let (st, _) = h.poll(&token(&temp)?, 0, 1).await?;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (_, smap) = h.poll(&token(&s)?, 0, 1).await?;
    assert!(peers(&smap).is_empty());

    // And on the wall clock: the controller's own expiry task removes a
    // one-second membership without anyone asking.
    let t = h
        .token(
            "e",
            json!({"role": "agent", "member_name": "blink", "member_ttl_seconds": 1}),
        )
        .await?;
    let (status, _) = h.join(&t).await?;
    assert_eq!(status, StatusCode::OK);
    eventually(Duration::from_secs(5), || async {
        let m = h
            .expect(
                Method::GET,
                "/api/v1/enclaves/e/members",
                None,
                StatusCode::OK,
            )
            .await?;
        Ok(!m.to_string().contains("blink"))
    })
    .await?;
    let audit = h
        .expect(Method::GET, "/api/v1/audit", None, StatusCode::OK)
        .await?;
    assert!(audit.to_string().contains("member.expire"));
    h.stop().await?;
    Ok(())
}
both!(just_in_time_members_expire);

async fn enclaves_never_see_each_other(db: Db) -> Result<()> {
    let h = Harness::start(db).await?;
    h.create_enclave(json!({"name": "a"})).await?;
    h.create_enclave(json!({"name": "b"})).await?;
    let mut tokens = Vec::new();
    for (e, role, n) in [
        ("a", "agent", "a-agent"),
        ("a", "gateway", "a-gw"),
        ("b", "agent", "b-agent"),
        ("b", "asset", "b-asset"),
    ] {
        tokens.push((e, token(&h.joined(e, role, n).await?)?));
    }
    for (e, t) in &tokens {
        let (_, map) = h.poll(t, 0, 1).await?;
        for p in peers(&map) {
            assert!(p.starts_with(&format!("{e}-")), "{e} member sees {p}");
        }
    }
    h.stop().await?;
    Ok(())
}
both!(enclaves_never_see_each_other);
