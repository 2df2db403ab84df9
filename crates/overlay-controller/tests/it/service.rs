//! Restarts, the OpenAPI document and metrics.

use anyhow::{Context, Result};
use hyper::{Method, StatusCode};
use serde_json::json;

use crate::both;
use crate::common::{peers, Db, Harness};

async fn restart_keeps_everything(db: Db) -> Result<()> {
    let h = Harness::start(db).await?;
    h.create_enclave(json!({"name": "e"})).await?;
    h.expect(
        Method::POST,
        "/api/v1/enclaves/e/chambers",
        Some(json!({"name": "c", "asset": "s", "allow": ["a"]})),
        StatusCode::CREATED,
    )
    .await?;
    let a = h.joined("e", "agent", "a").await?;
    h.joined("e", "asset", "s").await?;
    let spare = h.token("e", json!({"role": "agent", "uses": 2})).await?;
    let token_before = std::fs::read_to_string(h.dir.path().join("admin.token"))?;
    let (_, before) = h.poll(a["node_token"].as_str().context("t")?, 0, 1).await?;
    let audit_before = h
        .expect(Method::GET, "/api/v1/audit", None, StatusCode::OK)
        .await?;
    let (dir, pg) = h.stop().await?;

    let h = Harness::start_on(db, dir, pg).await?;
    assert_eq!(
        std::fs::read_to_string(h.dir.path().join("admin.token"))?,
        token_before,
        "the admin token survives"
    );
    let (s, after) = h.poll(a["node_token"].as_str().context("t")?, 0, 1).await?;
    assert_eq!(s, StatusCode::OK, "node tokens survive");
    assert_eq!(peers(&after), peers(&before));
    assert!(
        after["version"].as_u64() >= before["version"].as_u64(),
        "versions never go back"
    );
    assert_eq!(after["address"], before["address"]);
    let (s, _) = h.join(&spare).await?;
    assert_eq!(s, StatusCode::OK, "unspent tokens survive");
    let audit_after = h
        .expect(Method::GET, "/api/v1/audit", None, StatusCode::OK)
        .await?;
    assert_eq!(
        audit_after.as_array().map(Vec::len),
        audit_before.as_array().map(|a| a.len() + 1)
    );
    let mut conn = h.ctl.store.pool().acquire().await?;
    assert!(matches!(
        overlay_controller::audit::verify(&mut conn).await?,
        overlay_controller::audit::Verdict::Intact { .. }
    ));
    drop(conn);
    h.stop().await?;
    Ok(())
}
both!(restart_keeps_everything);

async fn openapi_and_metrics(db: Db) -> Result<()> {
    let h = Harness::start(db).await?;
    let c = h.client(None)?;
    let (s, body) = c.send(Method::GET, "/healthz", None).await?;
    assert_eq!((s, &body[..]), (StatusCode::OK, &b"ok\n"[..]));
    let (s, doc) = h.call(&c, Method::GET, "/openapi.json", None).await?;
    assert_eq!(s, StatusCode::OK);
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let paths = doc["paths"].as_object().context("paths")?;
    for (path, method) in [
        ("/healthz", "get"),
        ("/api/v1/enclaves", "post"),
        ("/api/v1/enclaves", "get"),
        ("/api/v1/enclaves/{name}", "get"),
        ("/api/v1/enclaves/{name}", "delete"),
        ("/api/v1/enclaves/{name}/tokens", "post"),
        ("/api/v1/enclaves/{name}/members", "get"),
        ("/api/v1/enclaves/{name}/members/{member}", "delete"),
        ("/api/v1/enclaves/{name}/chambers", "post"),
        ("/api/v1/enclaves/{name}/topology", "get"),
        ("/api/v1/enclaves/{name}/policy", "put"),
        ("/api/v1/enclaves/{name}/policy", "get"),
        ("/api/v1/credentials/{name}", "put"),
        ("/api/v1/audit", "get"),
        ("/api/v1/join", "post"),
        ("/api/v1/node/netmap", "get"),
        ("/api/v1/node/gateway-config", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "OpenAPI lacks {method} {path}"
        );
    }
    assert!(doc["components"]["schemas"]["Netmap"].is_object());

    h.create_enclave(json!({"name": "e"})).await?;
    h.joined("e", "agent", "a").await?;
    let addr = h.metrics.context("metrics listener")?;
    let mut tcp = tokio::net::TcpStream::connect(addr).await?;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await?;
    let mut text = String::new();
    tcp.read_to_string(&mut text).await?;
    assert!(text.contains("cordon_controller_joins_total 1"), "{text}");
    assert!(text.contains("cordon_controller_members 1"), "{text}");
    assert!(text.contains("route=\"/api/v1/enclaves\""), "{text}");
    h.stop().await?;
    Ok(())
}
both!(openapi_and_metrics);
