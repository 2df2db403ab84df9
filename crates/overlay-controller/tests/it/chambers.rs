use anyhow::{Context, Result};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both;
use crate::common::{peers, Db, Harness};

fn reaches(topology: &Value, member: &str) -> Vec<String> {
    topology["members"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == member))
        .and_then(|m| m["peers"].as_array())
        .map(|p| {
            p.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

async fn chambers_limit_who_reaches_an_asset(db: Db) -> Result<()> {
    let h = Harness::start(db).await?;
    h.create_enclave(json!({"name": "e"})).await?;
    // Chamber first, asset later: protected from its first packet.
    h.expect(
        Method::POST,
        "/api/v1/enclaves/e/chambers",
        Some(json!({"name": "design", "asset": "rtl", "allow": ["agent-1", "role:gateway"]})),
        StatusCode::CREATED,
    )
    .await?;
    let a1 = h.joined("e", "agent", "agent-1").await?;
    let a2 = h.joined("e", "agent", "agent-2").await?;
    h.joined("e", "gateway", "gw").await?;
    let rtl = h.joined("e", "asset", "rtl").await?;
    assert_eq!(peers(&rtl["netmap"]), ["agent-1", "gw"]);
    let (_, m2) = h
        .poll(a2["node_token"].as_str().context("t")?, 0, 1)
        .await?;
    assert_eq!(
        peers(&m2),
        ["agent-1", "gw"],
        "agent-2 has no peer entry for rtl"
    );
    let (_, m1) = h
        .poll(a1["node_token"].as_str().context("t")?, 0, 1)
        .await?;
    assert_eq!(peers(&m1), ["agent-2", "gw", "rtl"]);

    // A chamber on an asset that already joined takes it away from others,
    // and wakes their long-polls at once.
    h.joined("e", "asset", "wiki").await?;
    let a2_token = a2["node_token"].as_str().context("t")?.to_owned();
    let (_, before) = h.poll(&a2_token, 0, 1).await?;
    assert_eq!(peers(&before), ["agent-1", "gw", "wiki"]);
    let since = before["version"].as_u64().context("version")?;
    let waiter = {
        let c = h.client(Some(&a2_token))?;
        tokio::spawn(async move {
            c.send(
                Method::GET,
                &format!("/api/v1/node/netmap?since={since}&timeout=30"),
                None,
            )
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    h.expect(
        Method::POST,
        "/api/v1/enclaves/e/chambers",
        Some(json!({"name": "only-one", "asset": "wiki", "allow": ["agent-1"]})),
        StatusCode::CREATED,
    )
    .await?;
    let (s, body) = tokio::time::timeout(std::time::Duration::from_secs(5), waiter).await???;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(peers(&serde_json::from_slice(&body)?), ["agent-1", "gw"]);
    h.joined("e", "asset", "wiki2").await?;
    let topo = h
        .expect(
            Method::GET,
            "/api/v1/enclaves/e/topology",
            None,
            StatusCode::OK,
        )
        .await?;
    assert_eq!(reaches(&topo, "wiki2"), ["agent-1", "agent-2", "gw"]);
    h.expect(
        Method::POST,
        "/api/v1/enclaves/e/chambers",
        Some(json!({"name": "docs", "asset": "wiki2", "allow": ["role:agent"]})),
        StatusCode::CREATED,
    )
    .await?;
    let topo = h
        .expect(
            Method::GET,
            "/api/v1/enclaves/e/topology",
            None,
            StatusCode::OK,
        )
        .await?;
    assert_eq!(reaches(&topo, "wiki2"), ["agent-1", "agent-2"]);
    assert_eq!(reaches(&topo, "gw"), ["agent-1", "agent-2", "rtl"]);

    let list = h
        .expect(
            Method::GET,
            "/api/v1/enclaves/e/chambers",
            None,
            StatusCode::OK,
        )
        .await?;
    assert_eq!(list.as_array().map(Vec::len), Some(3));

    for (body, status) in [
        (
            json!({"name": "design", "asset": "other", "allow": []}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"name": "again", "asset": "rtl", "allow": []}),
            StatusCode::CONFLICT,
        ),
        (
            json!({"name": "bad", "asset": "gw", "allow": []}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "bad", "asset": "x", "allow": ["role:admin"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "bad", "asset": "x", "allow": ["Not A Name"]}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"name": "bad", "asset": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (got, v) = h
            .admin(
                Method::POST,
                "/api/v1/enclaves/e/chambers",
                Some(body.clone()),
            )
            .await?;
        assert_eq!(got, status, "{body}: {v}");
    }
    h.expect(
        Method::POST,
        "/api/v1/enclaves/nope/chambers",
        Some(json!({"name": "c", "asset": "x", "allow": []})),
        StatusCode::NOT_FOUND,
    )
    .await?;
    h.expect(
        Method::GET,
        "/api/v1/enclaves/nope/topology",
        None,
        StatusCode::NOT_FOUND,
    )
    .await?;
    h.stop().await?;
    Ok(())
}
both!(chambers_limit_who_reaches_an_asset);
