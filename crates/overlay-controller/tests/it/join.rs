use anyhow::{Context, Result};
use hyper::{Method, StatusCode};
use overlay_controller::controller::unix_now;
use overlay_controller::ops;
use proto::api::JoinRequest;
use proto::JoinToken;
use serde_json::json;

use crate::both;
use crate::common::{peers, random_key, Db, Harness};

async fn tokens_carry_url_and_ca(db: Db) -> Result<()> {
    let h = Harness::start(db).await?;
    h.create_enclave(json!({"name": "e"})).await?;
    let v = h
        .expect(
            Method::POST,
            "/api/v1/enclaves/e/tokens",
            Some(json!({"role": "agent"})),
            StatusCode::CREATED,
        )
        .await?;
    let token = JoinToken::decode(v["token"].as_str().context("token")?)?;
    assert_eq!(token.controller, format!("https://{}", h.addr));
    assert_eq!(token.ca_sha256, h.ctl.identity.ca_sha256);
    // A node trusts exactly the CA the token names, without any CA file.
    let pinned = control_client::Client::with_trust(
        &token.controller,
        control_client::Trust::Pinned(token.ca_sha256.clone()),
        None,
    )?;
    let (status, _) = pinned.send(Method::GET, "/healthz", None).await?;
    assert_eq!(status, StatusCode::OK);
    let wrong = control_client::Client::with_trust(
        &token.controller,
        control_client::Trust::Pinned("ab".repeat(32)),
        None,
    )?;
    let err = wrong
        .send(Method::GET, "/healthz", None)
        .await
        .err()
        .context("a wrong pin must fail")?;
    assert!(err.to_string().contains("TLS"), "{err}");
    let expires = v["expires_at"].as_i64().context("expires_at")?;
    assert!(
        (expires - unix_now() - 3600).abs() <= 5,
        "default TTL is one hour"
    );
    for (body, status) in [
        (json!({"role": "admin"}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"role": "agent", "ttl_seconds": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"role": "agent", "uses": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"role": "agent", "uses": 2, "member_name": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"role": "agent", "ttl_seconds": "1h"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"role": "agent", "extra": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (got, v) = h
            .admin(
                Method::POST,
                "/api/v1/enclaves/e/tokens",
                Some(body.clone()),
            )
            .await?;
        assert_eq!(got, status, "{body}: {v}");
    }
    h.expect(
        Method::POST,
        "/api/v1/enclaves/nope/tokens",
        Some(json!({"role": "agent"})),
        StatusCode::NOT_FOUND,
    )
    .await?;
    h.joined("e", "agent", "taken").await?;
    h.expect(
        Method::POST,
        "/api/v1/enclaves/e/tokens",
        Some(json!({"role": "agent", "member_name": "taken"})),
        StatusCode::CONFLICT,
    )
    .await?;
    h.stop().await?;
    Ok(())
}
both!(tokens_carry_url_and_ca);

async fn join_gives_address_token_and_netmap(db: Db) -> Result<()> {
    let h = Harness::start(db).await?;
    h.create_enclave(json!({"name": "e", "cidr": "100.64.4.0/24"}))
        .await?;
    let asset = h.joined("e", "asset", "rtl").await?;
    assert_eq!(asset["address"], "100.64.4.1/32");
    assert_eq!(asset["member"], "rtl");
    assert_eq!(asset["enclave"], "e");
    assert!(asset["node_token"]
        .as_str()
        .is_some_and(|t| t.starts_with("cn1.")));
    let agent = h.joined("e", "agent", "agent-1").await?;
    assert_eq!(agent["address"], "100.64.4.2/32");
    let map = &agent["netmap"];
    assert_eq!(peers(map), ["rtl"]);
    assert_eq!(map["peers"][0]["allowed_ips"], json!(["100.64.4.1/32"]));
    assert_eq!(map["cidr"], "100.64.4.0/24");
    // The PSK is the same from both ends.
    let (status, asset_map) = h
        .poll(asset["node_token"].as_str().context("t")?, 0, 1)
        .await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        asset_map["peers"][0]["preshared_key"],
        map["peers"][0]["preshared_key"]
    );

    // Names: from the host name when the token names none, else role-N.
    let t = h.token("e", json!({"role": "agent", "uses": 3})).await?;
    let c = h.client(None)?;
    let body = |host: Option<&str>| json!({"token": t, "public_key": random_key().to_string(), "hostname": host, "endpoint": "198.18.0.9:51820"});
    let (_, a) = h
        .call(
            &c,
            Method::POST,
            "/api/v1/join",
            Some(body(Some("Build-Box.corp"))),
        )
        .await?;
    assert_eq!(a["member"], "build-box");
    let (_, b) = h
        .call(
            &c,
            Method::POST,
            "/api/v1/join",
            Some(body(Some("build-box"))),
        )
        .await?;
    assert_eq!(
        b["member"], "agent-4",
        "a taken host name falls back to role-N"
    );
    let (_, c3) = h
        .call(&c, Method::POST, "/api/v1/join", Some(body(None)))
        .await?;
    assert_eq!(c3["member"], "agent-5");
    let (status, _) = h
        .call(&c, Method::POST, "/api/v1/join", Some(body(None)))
        .await?;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a 3-use token admits three"
    );
    let members = h
        .expect(
            Method::GET,
            "/api/v1/enclaves/e/members",
            None,
            StatusCode::OK,
        )
        .await?;
    let bb = members
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == "build-box"))
        .context("build-box")?;
    assert_eq!(bb["endpoint"], "198.18.0.9:51820");
    assert_eq!(bb["hostname"], "Build-Box.corp");
    h.stop().await?;
    Ok(())
}
both!(join_gives_address_token_and_netmap);

async fn bad_tokens_get_401_and_change_nothing(db: Db) -> Result<()> {
    let h = Harness::start(db).await?;
    h.create_enclave(json!({"name": "e"})).await?;
    let good = h.token("e", json!({"role": "agent"})).await?;
    let parsed = JoinToken::decode(&good)?;
    let wrong_secret = JoinToken {
        secret: "x".repeat(32),
        ..parsed.clone()
    }
    .encode();
    let unknown_id = JoinToken {
        id: "nope".into(),
        ..parsed.clone()
    }
    .encode();
    let other_ca = JoinToken {
        ca_sha256: "0".repeat(64),
        ..parsed.clone()
    }
    .encode();
    for bad in [
        wrong_secret.as_str(),
        &unknown_id,
        &other_ca,
        "cordon1.garbage",
        "",
        &good[..good.len() - 3],
    ] {
        let (status, v) = h.join(bad).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad}: {v}");
        assert_eq!(
            v["error"]["message"], "missing or invalid credentials",
            "no hint which part was wrong"
        );
    }
    // The good token still works once, then is spent.
    let (status, _) = h.join(&good).await?;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = h.join(&good).await?;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Expired: redeem with the clock moved past the TTL (time is injected).
    let t = h
        .token("e", json!({"role": "agent", "ttl_seconds": 60}))
        .await?;
    let req = JoinRequest {
        token: t.clone(),
        public_key: random_key(),
        endpoint: None,
        hostname: None,
    };
    let late = ops::join::join(&h.ctl, req.clone(), unix_now() + 61).await;
    assert!(
        matches!(late, Err(overlay_controller::error::Error::Unauthorized)),
        "{late:?}"
    );
    assert!(
        ops::join::join(&h.ctl, req, unix_now()).await.is_ok(),
        "the failed attempt did not spend it"
    );

    // The same key cannot join twice.
    let key = random_key();
    let t1 = h.token("e", json!({"role": "agent"})).await?;
    let t2 = h.token("e", json!({"role": "agent"})).await?;
    let c = h.client(None)?;
    let (s1, _) = h
        .call(
            &c,
            Method::POST,
            "/api/v1/join",
            Some(json!({"token": t1, "public_key": key.to_string()})),
        )
        .await?;
    let (s2, v2) = h
        .call(
            &c,
            Method::POST,
            "/api/v1/join",
            Some(json!({"token": t2, "public_key": key.to_string()})),
        )
        .await?;
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::CONFLICT), "{v2}");
    // ... and that refusal did not spend t2.
    let (s3, _) = h.join(&t2).await?;
    assert_eq!(s3, StatusCode::OK);

    // Bad join bodies.
    for body in [
        json!({"token": good, "public_key": "AAAA"}),
        json!({"token": good, "public_key": random_key().to_string(), "endpoint": "nowhere"}),
        json!({"token": good, "public_key": random_key().to_string(), "hostname": ""}),
        json!({"token": good}),
    ] {
        let (status, v) = h
            .call(&c, Method::POST, "/api/v1/join", Some(body.clone()))
            .await?;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
    }
    h.stop().await?;
    Ok(())
}
both!(bad_tokens_get_401_and_change_nothing);

async fn racing_joins_exactly_one_wins(db: Db) -> Result<()> {
    let h = Harness::start(db).await?;
    h.create_enclave(json!({"name": "e"})).await?;
    let token = h.token("e", json!({"role": "agent"})).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let c = h.client(None)?;
        let body = json!({"token": token, "public_key": random_key().to_string()});
        tasks.spawn(async move {
            c.send(
                Method::POST,
                "/api/v1/join",
                Some(serde_json::to_vec(&body)?),
            )
            .await
            .map(|(s, _)| s)
            .map_err(anyhow::Error::from)
        });
    }
    let mut ok = 0;
    let mut unauthorized = 0;
    while let Some(r) = tasks.join_next().await {
        match r?? {
            StatusCode::OK => ok += 1,
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            other => anyhow::bail!("unexpected {other}"),
        }
    }
    assert_eq!((ok, unauthorized), (1, 11));
    let members = h
        .expect(
            Method::GET,
            "/api/v1/enclaves/e/members",
            None,
            StatusCode::OK,
        )
        .await?;
    assert_eq!(members.as_array().map(Vec::len), Some(1));
    h.stop().await?;
    Ok(())
}
both!(racing_joins_exactly_one_wins);
