use anyhow::Result;
use hyper::{Method, StatusCode};
use overlay_controller::audit::{self, Verdict};
use serde_json::json;

use crate::both;
use crate::common::{Db, Harness};

async fn verdict(h: &Harness) -> Result<Verdict> {
    let mut conn = h.ctl.store.pool().acquire().await?;
    Ok(audit::verify(&mut conn).await?)
}

async fn every_action_is_chained_and_tampering_is_found(db: Db) -> Result<()> {
    let h = Harness::start(db).await?;
    h.create_enclave(json!({"name": "e"})).await?;
    h.joined("e", "agent", "a").await?;
    h.expect(
        Method::POST,
        "/api/v1/enclaves/e/chambers",
        Some(json!({"name": "c", "asset": "s", "allow": []})),
        StatusCode::CREATED,
    )
    .await?;
    h.expect(
        Method::PUT,
        "/api/v1/enclaves/e/policy",
        Some(json!({"content": ""})),
        StatusCode::OK,
    )
    .await?;
    h.expect(
        Method::PUT,
        "/api/v1/credentials/k",
        Some(json!({"provider": "gemini", "secret": "g"})),
        StatusCode::OK,
    )
    .await?;
    h.expect(
        Method::DELETE,
        "/api/v1/enclaves/e/members/a",
        None,
        StatusCode::NO_CONTENT,
    )
    .await?;
    h.expect(
        Method::DELETE,
        "/api/v1/enclaves/e",
        None,
        StatusCode::NO_CONTENT,
    )
    .await?;
    // Refused requests leave no record.
    h.admin(
        Method::POST,
        "/api/v1/enclaves",
        Some(json!({"name": "BAD"})),
    )
    .await?;

    let log = h
        .expect(Method::GET, "/api/v1/audit", None, StatusCode::OK)
        .await?;
    let actions: Vec<&str> = log
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["action"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        actions,
        [
            "enclave.create",
            "token.create",
            "member.join",
            "chamber.create",
            "policy.set",
            "credential.set",
            "member.remove",
            "enclave.delete"
        ]
    );
    assert_eq!(log[2]["actor"], "node:e/a");
    let page = h
        .expect(
            Method::GET,
            "/api/v1/audit?after=6&limit=1",
            None,
            StatusCode::OK,
        )
        .await?;
    assert_eq!(page[0]["seq"], 7);
    h.expect(
        Method::GET,
        "/api/v1/audit?after=x",
        None,
        StatusCode::BAD_REQUEST,
    )
    .await?;
    assert_eq!(verdict(&h).await?, Verdict::Intact { records: 8 });

    let pool = h.ctl.store.pool();
    // Edit a record.
    sqlx::query("UPDATE audit SET target = 'other' WHERE seq = 3")
        .execute(pool)
        .await?;
    assert!(matches!(verdict(&h).await?, Verdict::Broken { seq: 3, .. }));
    sqlx::query("UPDATE audit SET target = 'e/a' WHERE seq = 3")
        .execute(pool)
        .await?;
    assert_eq!(verdict(&h).await?, Verdict::Intact { records: 8 });
    // Delete one in the middle.
    let row: (i64, String, String, String, String, String, String, String) =
        sqlx::query_as("SELECT seq, CAST(at AS TEXT), actor, action, target, detail, prev_hash, hash FROM audit WHERE seq = 5")
            .fetch_one(pool)
            .await?;
    sqlx::query("DELETE FROM audit WHERE seq = 5")
        .execute(pool)
        .await?;
    assert!(matches!(verdict(&h).await?, Verdict::Broken { seq: 5, .. }));
    // Reorder: give record 6 number 5.
    sqlx::query("UPDATE audit SET seq = 5 WHERE seq = 6")
        .execute(pool)
        .await?;
    assert!(matches!(verdict(&h).await?, Verdict::Broken { .. }));
    sqlx::query("UPDATE audit SET seq = 6 WHERE seq = 5")
        .execute(pool)
        .await?;
    let at: i64 = row.1.parse()?;
    sqlx::query("INSERT INTO audit (seq, at, actor, action, target, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
        .bind(row.0).bind(at).bind(row.2).bind(row.3).bind(row.4).bind(row.5).bind(row.6).bind(row.7)
        .execute(pool)
        .await?;
    assert_eq!(verdict(&h).await?, Verdict::Intact { records: 8 });
    // Cut the tail.
    sqlx::query("DELETE FROM audit WHERE seq = 8")
        .execute(pool)
        .await?;
    assert!(matches!(verdict(&h).await?, Verdict::Broken { seq: 8, .. }));
    h.stop().await?;
    Ok(())
}
both!(every_action_is_chained_and_tampering_is_found);
