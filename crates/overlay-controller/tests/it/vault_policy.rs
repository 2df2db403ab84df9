use anyhow::{Context, Result};
use hyper::{Method, StatusCode};
use serde_json::json;

use crate::both;
use crate::common::{Db, Harness};

const SECRET: &str = "sk-live-REAL-KEY-0123456789abcdef";

async fn policies_are_versioned_and_checked(db: Db) -> Result<()> {
    let h = Harness::start(db).await?;
    h.create_enclave(json!({"name": "e"})).await?;
    h.expect(
        Method::GET,
        "/api/v1/enclaves/e/policy",
        None,
        StatusCode::NOT_FOUND,
    )
    .await?;
    let doc = "[models]\nallow = [\"gpt-4o*\"]\n[credentials]\nopenai = \"openai-prod\"\n";
    let p1 = h
        .expect(
            Method::PUT,
            "/api/v1/enclaves/e/policy",
            Some(json!({"content": doc})),
            StatusCode::OK,
        )
        .await?;
    assert_eq!(p1["version"], 1);
    let p2 = h
        .expect(
            Method::PUT,
            "/api/v1/enclaves/e/policy",
            Some(json!({"content": "[tools]\ndeny = [\"delete_*\"]\n"})),
            StatusCode::OK,
        )
        .await?;
    assert_eq!(p2["version"], 2);
    let shown = h
        .expect(
            Method::GET,
            "/api/v1/enclaves/e/policy",
            None,
            StatusCode::OK,
        )
        .await?;
    assert_eq!(shown["version"], 2);
    assert!(shown["content"]
        .as_str()
        .is_some_and(|c| c.contains("delete_*")));
    for bad in [
        "[tool]\ndeny = []",
        "[models",
        "models = 3",
        "[credentials]\nopenai = 5",
    ] {
        let (s, v) = h
            .admin(
                Method::PUT,
                "/api/v1/enclaves/e/policy",
                Some(json!({"content": bad})),
            )
            .await?;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
    }
    let shown = h
        .expect(
            Method::GET,
            "/api/v1/enclaves/e/policy",
            None,
            StatusCode::OK,
        )
        .await?;
    assert_eq!(shown["version"], 2, "refused documents change nothing");
    h.expect(
        Method::PUT,
        "/api/v1/enclaves/nope/policy",
        Some(json!({"content": ""})),
        StatusCode::NOT_FOUND,
    )
    .await?;
    h.stop().await?;
    Ok(())
}
both!(policies_are_versioned_and_checked);

async fn vault_hands_keys_only_to_its_gateway(db: Db) -> Result<()> {
    let h = Harness::start(db).await?;
    h.create_enclave(json!({"name": "e"})).await?;
    h.create_enclave(json!({"name": "other"})).await?;
    let info = h
        .expect(
            Method::PUT,
            "/api/v1/credentials/openai-prod",
            Some(json!({"provider": "openai", "secret": SECRET})),
            StatusCode::OK,
        )
        .await?;
    assert!(
        !info.to_string().contains(SECRET),
        "the secret is never returned"
    );
    h.expect(
        Method::PUT,
        "/api/v1/credentials/claude",
        Some(json!({"provider": "anthropic", "secret": "sk-ant-x"})),
        StatusCode::OK,
    )
    .await?;
    for (body, status) in [
        (
            json!({"provider": "openai", "secret": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"provider": "openai", "secret": "a\nb"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"provider": "azure", "secret": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({"provider": "openai"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (s, v) = h
            .admin(Method::PUT, "/api/v1/credentials/x", Some(body.clone()))
            .await?;
        assert_eq!(s, status, "{body}: {v}");
    }
    h.expect(
        Method::PUT,
        "/api/v1/credentials/Bad_Name",
        Some(json!({"provider": "openai", "secret": "x"})),
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await?;
    // No route returns it.
    h.expect(
        Method::GET,
        "/api/v1/credentials/openai-prod",
        None,
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await?;

    // The policy names which credentials the enclave's gateway gets; one of
    // the wrong provider is not handed out.
    let doc = "[credentials]\nopenai = \"openai-prod\"\nanthropic = \"openai-prod\"\n";
    h.expect(
        Method::PUT,
        "/api/v1/enclaves/e/policy",
        Some(json!({"content": doc})),
        StatusCode::OK,
    )
    .await?;
    let gw = h.joined("e", "gateway", "gw").await?;
    let agent = h.joined("e", "agent", "a").await?;
    let other_gw = h.joined("other", "gateway", "gw").await?;
    let c = h.client(gw["node_token"].as_str())?;
    let (s, cfg) = h
        .call(&c, Method::GET, "/api/v1/node/gateway-config", None)
        .await?;
    assert_eq!(s, StatusCode::OK, "{cfg}");
    assert_eq!(cfg["enclave"], "e");
    assert_eq!(
        cfg["credentials"],
        json!([{"name": "openai-prod", "provider": "openai", "secret": SECRET}])
    );
    assert!(cfg["policy"]["content"]
        .as_str()
        .is_some_and(|p| p.contains("openai-prod")));
    let c = h.client(agent["node_token"].as_str())?;
    let (s, v) = h
        .call(&c, Method::GET, "/api/v1/node/gateway-config", None)
        .await?;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    assert!(!v.to_string().contains(SECRET));
    let c = h.client(other_gw["node_token"].as_str())?;
    let (s, v) = h
        .call(&c, Method::GET, "/api/v1/node/gateway-config", None)
        .await?;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["credentials"],
        json!([]),
        "another enclave's gateway gets none of e's keys"
    );
    let c = h.client(Some("cn1.1.forged"))?;
    let (s, _) = h
        .call(&c, Method::GET, "/api/v1/node/gateway-config", None)
        .await?;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // At rest: not in the database in plain text, not in the audit log.
    let audit = h
        .expect(Method::GET, "/api/v1/audit", None, StatusCode::OK)
        .await?;
    assert!(!audit.to_string().contains(SECRET));
    assert!(
        audit.to_string().contains("gateway.config"),
        "secret access is audited"
    );
    let sealed: Vec<u8> =
        sqlx::query_scalar("SELECT sealed FROM credentials WHERE name = 'openai-prod'")
            .fetch_one(h.ctl.store.pool())
            .await?;
    assert!(!sealed.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()));
    if db == Db::Sqlite {
        for f in ["controller.db", "controller.db-wal"] {
            let p = h.dir.path().join(f);
            if p.exists() {
                let bytes = std::fs::read(&p)?;
                assert!(
                    !bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
                    "{f} holds the secret"
                );
            }
        }
    }
    let admin_token =
        std::fs::read_to_string(h.dir.path().join("admin.token")).context("admin.token")?;
    assert!(!audit.to_string().contains(admin_token.trim()));
    h.stop().await?;
    Ok(())
}
both!(vault_hands_keys_only_to_its_gateway);

/// Agents get a substitute key at join, shown once; the gateway learns only
/// its digest and the agent's address; removing the agent takes it off the
/// gateway's list; a new policy wakes the gateway's netmap long-poll.
async fn substitute_keys_live_and_die_with_their_agent(db: Db) -> Result<()> {
    use sha2::{Digest, Sha256};
    let h = Harness::start(db).await?;
    h.create_enclave(json!({"name": "e"})).await?;
    let gw = h.joined("e", "gateway", "gw").await?;
    let asset = h.joined("e", "asset", "files").await?;
    let agent = h.joined("e", "agent", "a").await?;
    assert!(gw.get("substitute_key").is_none(), "{gw}");
    assert!(asset.get("substitute_key").is_none(), "{asset}");
    let key = agent["substitute_key"]
        .as_str()
        .context("an agent's join response carries its substitute key")?;
    assert!(key.starts_with("sub-") && key.len() > 40, "{key}");
    let other = h.joined("e", "agent", "b").await?;
    assert_ne!(
        other["substitute_key"].as_str(),
        Some(key),
        "keys are unique"
    );

    let gw_token = gw["node_token"].as_str().context("node token")?;
    let c = h.client(Some(gw_token))?;
    let (s, cfg) = h
        .call(&c, Method::GET, "/api/v1/node/gateway-config", None)
        .await?;
    assert_eq!(s, StatusCode::OK, "{cfg}");
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    let address = agent["address"]
        .as_str()
        .and_then(|a| a.split('/').next())
        .context("address")?;
    assert_eq!(cfg["agents"][0]["name"], "a");
    assert_eq!(cfg["agents"][0]["address"], address);
    assert_eq!(cfg["agents"][0]["substitute_sha256"], digest.as_str());
    assert_eq!(cfg["agents"].as_array().map(Vec::len), Some(2));
    assert!(
        !cfg.to_string().contains(key),
        "the key itself never leaves"
    );
    let stored: Option<String> =
        sqlx::query_scalar("SELECT substitute_sha256 FROM members WHERE name = 'a'")
            .fetch_one(h.ctl.store.pool())
            .await?;
    assert_eq!(stored.as_deref(), Some(digest.as_str()), "stored hashed");
    let audit = h
        .expect(Method::GET, "/api/v1/audit", None, StatusCode::OK)
        .await?;
    assert!(!audit.to_string().contains(key));

    // A new policy bumps the gateway's netmap, not the agent's.
    let (_, map) = h.poll(gw_token, 0, 0).await?;
    let gw_version = map["version"].as_u64().context("version")?;
    let a_token = agent["node_token"].as_str().context("node token")?;
    let (_, amap) = h.poll(a_token, 0, 0).await?;
    let a_version = amap["version"].as_u64().context("version")?;
    h.expect(
        Method::PUT,
        "/api/v1/enclaves/e/policy",
        Some(json!({"content": "[models]\nallow = []\n"})),
        StatusCode::OK,
    )
    .await?;
    let (s, map) = h.poll(gw_token, gw_version, 5).await?;
    assert_eq!(s, StatusCode::OK, "the gateway's long-poll wakes up: {map}");
    assert!(map["version"].as_u64() > Some(gw_version));
    let (s, _) = h.poll(a_token, a_version, 1).await?;
    assert_eq!(
        s,
        StatusCode::NO_CONTENT,
        "the agent's netmap did not change"
    );
    // So does a rotated vault key.
    let gw_version = map["version"].as_u64().context("version")?;
    h.expect(
        Method::PUT,
        "/api/v1/credentials/openai-prod",
        Some(json!({"provider": "openai", "secret": SECRET})),
        StatusCode::OK,
    )
    .await?;
    let (s, map) = h.poll(gw_token, gw_version, 5).await?;
    assert_eq!(s, StatusCode::OK, "a key rotation wakes the gateway: {map}");

    h.expect(
        Method::DELETE,
        "/api/v1/enclaves/e/members/a",
        None,
        StatusCode::NO_CONTENT,
    )
    .await?;
    let (_, cfg) = h
        .call(&c, Method::GET, "/api/v1/node/gateway-config", None)
        .await?;
    assert_eq!(cfg["agents"].as_array().map(Vec::len), Some(1));
    assert_eq!(cfg["agents"][0]["name"], "b", "the removed agent is gone");
    h.stop().await?;
    Ok(())
}
both!(substitute_keys_live_and_die_with_their_agent);
