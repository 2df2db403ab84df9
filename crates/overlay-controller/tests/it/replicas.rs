//! Two controller replicas on one PostgreSQL database.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{peers, random_key, Db, Harness};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_state_and_wake_each_other() -> Result<()> {
    let a = Harness::start(Db::Postgres).await?;
    let b = a.replica().await?;
    assert!(b.ctl.identity.ca_sha256 == a.ctl.identity.ca_sha256);

    // Written through A, read through B.
    a.create_enclave(json!({"name": "e"})).await?;
    b.expect(Method::GET, "/api/v1/enclaves/e", None, StatusCode::OK)
        .await?;
    let gw = a.joined("e", "gateway", "gw").await?;
    let gw_token = gw["node_token"].as_str().context("token")?.to_owned();
    let v = gw["netmap"]["version"].as_u64().context("version")?;

    // The gateway long-polls B; an agent joins and is removed through A.
    let wait_on_b = |since: u64| {
        let c = b.client(Some(&gw_token));
        async move {
            let c = c?;
            let (s, body) = c
                .send(
                    Method::GET,
                    &format!("/api/v1/node/netmap?since={since}&timeout=30"),
                    None,
                )
                .await?;
            anyhow::Ok((s, serde_json::from_slice::<Value>(&body)?))
        }
    };
    let waiter = tokio::spawn(wait_on_b(v));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = Instant::now();
    a.joined("e", "agent", "a1").await?;
    let (s, map) = tokio::time::timeout(Duration::from_secs(5), waiter).await???;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(peers(&map), ["a1"]);
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "B woke after {:?}",
        t0.elapsed()
    );

    let waiter = tokio::spawn(wait_on_b(map["version"].as_u64().context("v")?));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let t0 = Instant::now();
    a.expect(
        Method::DELETE,
        "/api/v1/enclaves/e/members/a1",
        None,
        StatusCode::NO_CONTENT,
    )
    .await?;
    let (s, map) = tokio::time::timeout(Duration::from_secs(5), waiter).await???;
    assert_eq!(s, StatusCode::OK);
    assert!(peers(&map).is_empty());
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "B saw the removal after {:?}",
        t0.elapsed()
    );

    // One single-use token raced through both replicas: exactly one join.
    for _ in 0..3 {
        let t = a.token("e", json!({"role": "agent"})).await?;
        let body = json!({"token": t, "public_key": random_key().to_string()});
        let body2 = json!({"token": t, "public_key": random_key().to_string()});
        let (ca, cb) = (a.client(None)?, b.client(None)?);
        let (ra, rb) = tokio::join!(
            ca.send(
                Method::POST,
                "/api/v1/join",
                Some(serde_json::to_vec(&body)?)
            ),
            cb.send(
                Method::POST,
                "/api/v1/join",
                Some(serde_json::to_vec(&body2)?)
            ),
        );
        let mut got = [ra?.0, rb?.0];
        got.sort();
        assert_eq!(got, [StatusCode::OK, StatusCode::UNAUTHORIZED]);
    }
    // Addresses allocated by both replicas never collide.
    let members = b
        .expect(
            Method::GET,
            "/api/v1/enclaves/e/members",
            None,
            StatusCode::OK,
        )
        .await?;
    let mut addrs: Vec<String> = members
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|x| x["address"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let n = addrs.len();
    addrs.sort();
    addrs.dedup();
    assert_eq!((n, addrs.len()), (4, 4));
    b.stop().await?;
    a.stop().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_another_ca_is_refused() -> Result<()> {
    let a = Harness::start(Db::Postgres).await?;
    let other_dir = std::sync::Arc::new(tempfile::tempdir()?);
    let res = Harness::start_on(Db::Postgres, other_dir, a.pg.clone()).await;
    let err = res
        .err()
        .context("a controller with a fresh CA must not attach to the database")?;
    assert!(err.to_string().contains("another CA"), "{err}");
    a.stop().await?;
    Ok(())
}
