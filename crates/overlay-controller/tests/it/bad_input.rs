use std::time::{Duration, Instant};

use anyhow::Result;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::both;
use crate::common::{Db, Harness};

async fn raw(
    h: &Harness,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> Result<(StatusCode, Value)> {
    let c = h.client(token)?;
    let (s, b) = c.send(method, path, Some(body)).await?;
    Ok((s, serde_json::from_slice(&b).unwrap_or(Value::Null)))
}

async fn every_bad_request_gets_a_json_error(db: Db) -> Result<()> {
    let h = Harness::start(db).await?;
    h.create_enclave(json!({"name": "e"})).await?;
    let token = std::fs::read_to_string(h.dir.path().join("admin.token"))?;
    let admin = Some(token.trim());
    let routes = [
        (Method::POST, "/api/v1/enclaves"),
        (Method::POST, "/api/v1/enclaves/e/tokens"),
        (Method::POST, "/api/v1/enclaves/e/chambers"),
        (Method::PUT, "/api/v1/enclaves/e/policy"),
        (Method::PUT, "/api/v1/credentials/k"),
        (Method::POST, "/api/v1/join"),
    ];
    for (m, path) in &routes {
        for (body, want) in [
            (b"{".to_vec(), StatusCode::BAD_REQUEST),
            (b"not json".to_vec(), StatusCode::BAD_REQUEST),
            (b"[]".to_vec(), StatusCode::UNPROCESSABLE_ENTITY),
            (
                b"{\"unknown\": 1}".to_vec(),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (vec![b' '; 1024 * 1024 + 1], StatusCode::PAYLOAD_TOO_LARGE),
        ] {
            let len = body.len();
            let (s, v) = raw(&h, admin, m.clone(), path, body).await?;
            assert_eq!(s, want, "{m} {path} with {len} bytes: {v}");
            assert!(
                v["error"]["code"].is_string() && v["error"]["message"].is_string(),
                "{m} {path}: {v}"
            );
        }
    }
    // Missing or wrong admin token: 401 with no hint, and nothing changes.
    for t in [None, Some("wrong"), Some("cadm_wrong"), Some("")] {
        let (s, v) = raw(
            &h,
            t,
            Method::POST,
            "/api/v1/enclaves",
            br#"{"name":"sneaky"}"#.to_vec(),
        )
        .await?;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{t:?}");
        assert_eq!(v["error"]["message"], "missing or invalid credentials");
    }
    for (m, path) in [
        (Method::GET, "/api/v1/enclaves"),
        (Method::GET, "/api/v1/audit"),
        (Method::DELETE, "/api/v1/enclaves/e"),
        (Method::GET, "/api/v1/node/netmap"),
    ] {
        let (s, _) = raw(&h, None, m.clone(), path, vec![]).await?;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{m} {path}");
    }
    let list = h
        .expect(Method::GET, "/api/v1/enclaves", None, StatusCode::OK)
        .await?;
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let (s, v) = raw(&h, admin, Method::GET, "/api/v1/nowhere", vec![]).await?;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(v["error"]["code"], "not_found");
    h.stop().await?;
    Ok(())
}
both!(every_bad_request_gets_a_json_error);

/// Sends headers promising 100 bytes, then only 10, and reads the reply.
async fn stalled_body(h: &Harness) -> Result<String> {
    use std::sync::Arc;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut &h.ca[..]) {
        roots.add(c?)?;
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(h.addr).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1")?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await?;
    let token = std::fs::read_to_string(h.dir.path().join("admin.token"))?;
    let head = format!(
        "POST /api/v1/enclaves HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\": \"",
        token.trim()
    );
    tls.write_all(head.as_bytes()).await?;
    tls.flush().await?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf)).await? {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                reply.extend_from_slice(&buf[..n]);
                if reply.windows(4).any(|w| w == b"\r\n\r\n") && reply.ends_with(b"}") {
                    break;
                }
            }
        }
    }
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

async fn slow_and_silent_clients_are_cut_off(db: Db) -> Result<()> {
    let h = Harness::start(db).await?;
    // A client that connects and never starts TLS is dropped after the
    // client timeout (2 s in tests) instead of holding a slot forever.
    let mut silent = tokio::net::TcpStream::connect(h.addr).await?;
    let t0 = Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buf)).await??;
    assert_eq!(n, 0, "the server closed the connection");
    assert!(t0.elapsed() >= Duration::from_millis(1500) && t0.elapsed() < Duration::from_secs(8));

    // A body that never finishes: 400 after the client timeout, and the
    // request changes nothing.
    let t0 = Instant::now();
    let reply = stalled_body(&h).await?;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(reply.contains("not received in time"), "{reply}");
    assert!(t0.elapsed() < Duration::from_secs(8));
    let list = h
        .expect(Method::GET, "/api/v1/enclaves", None, StatusCode::OK)
        .await?;
    assert_eq!(list, json!([]));

    // Garbage instead of a TLS hello: closed, and the server still serves.
    let mut junk = tokio::net::TcpStream::connect(h.addr).await?;
    junk.write_all(b"GET / HTTP/1.1\r\n\r\n").await?;
    let _ = tokio::time::timeout(Duration::from_secs(10), junk.read(&mut buf)).await?;
    h.expect(Method::GET, "/api/v1/enclaves", None, StatusCode::OK)
        .await?;
    h.stop().await?;
    Ok(())
}
both!(slow_and_silent_clients_are_cut_off);
