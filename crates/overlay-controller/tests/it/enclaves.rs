use anyhow::Result;
use hyper::{Method, StatusCode};
use serde_json::json;

use crate::both;
use crate::common::{Db, Harness};

async fn create_list_show_delete(db: Db) -> Result<()> {
    let h = Harness::start(db).await?;
    let a = h.create_enclave(json!({"name": "project-a"})).await?;
    assert_eq!(a["cidr"], "100.64.0.0/24");
    assert_eq!(a["agent_to_agent"], true);
    let b = h
        .create_enclave(json!({"name": "project-b", "agent_to_agent": false}))
        .await?;
    assert_eq!(
        b["cidr"], "100.64.1.0/24",
        "pool allocation skips taken blocks"
    );
    let c = h
        .create_enclave(json!({"name": "big", "cidr": "100.65.0.0/16"}))
        .await?;
    assert_eq!(c["cidr"], "100.65.0.0/16");
    let d = h.create_enclave(json!({"name": "next"})).await?;
    assert_eq!(d["cidr"], "100.64.2.0/24");

    let list = h
        .expect(Method::GET, "/api/v1/enclaves", None, StatusCode::OK)
        .await?;
    let names: Vec<&str> = list
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["big", "next", "project-a", "project-b"]);

    let shown = h
        .expect(
            Method::GET,
            "/api/v1/enclaves/project-b",
            None,
            StatusCode::OK,
        )
        .await?;
    assert_eq!(shown["agent_to_agent"], false);
    assert_eq!(shown["members"], 0);

    h.joined("project-a", "agent", "agent-1").await?;
    let shown = h
        .expect(
            Method::GET,
            "/api/v1/enclaves/project-a",
            None,
            StatusCode::OK,
        )
        .await?;
    assert_eq!(shown["members"], 1);

    h.expect(
        Method::DELETE,
        "/api/v1/enclaves/project-a",
        None,
        StatusCode::NO_CONTENT,
    )
    .await?;
    h.expect(
        Method::GET,
        "/api/v1/enclaves/project-a",
        None,
        StatusCode::NOT_FOUND,
    )
    .await?;
    h.expect(
        Method::DELETE,
        "/api/v1/enclaves/project-a",
        None,
        StatusCode::NOT_FOUND,
    )
    .await?;
    // The freed block is handed out again.
    let again = h.create_enclave(json!({"name": "project-c"})).await?;
    assert_eq!(again["cidr"], "100.64.0.0/24");
    h.stop().await?;
    Ok(())
}
both!(create_list_show_delete);

async fn refuses_bad_enclaves(db: Db) -> Result<()> {
    let h = Harness::start(db).await?;
    h.create_enclave(json!({"name": "a", "cidr": "100.64.8.0/24"}))
        .await?;
    let cases = [
        (json!({"name": "a"}), StatusCode::CONFLICT, "already exists"),
        (
            json!({"name": "b", "cidr": "100.64.8.128/25"}),
            StatusCode::CONFLICT,
            "overlaps",
        ),
        (
            json!({"name": "b", "cidr": "100.64.0.0/16"}),
            StatusCode::CONFLICT,
            "overlaps",
        ),
        (
            json!({"name": "b", "cidr": "100.64.9.0/31"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "too small",
        ),
        (
            json!({"name": "b", "cidr": "100.64.9.7/24"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "host bits",
        ),
        (
            json!({"name": "b", "cidr": "198.18.0.0/24"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "outside",
        ),
        (
            json!({"name": "b", "cidr": "not-a-cidr"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            json!({"name": "Bad_Name"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "lower-case",
        ),
        (
            json!({"name": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty",
        ),
        (
            json!({"name": "b", "agent_to_agnet": false}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown field",
        ),
        (
            json!({"name": 7}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid type",
        ),
    ];
    for (body, status, text) in cases {
        let (got, v) = h
            .admin(Method::POST, "/api/v1/enclaves", Some(body.clone()))
            .await?;
        assert_eq!(got, status, "{body}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(text), "{body}: message {msg:?} lacks {text:?}");
        assert!(v["error"]["code"].is_string());
    }
    let list = h
        .expect(Method::GET, "/api/v1/enclaves", None, StatusCode::OK)
        .await?;
    assert_eq!(
        list.as_array().map(Vec::len),
        Some(1),
        "nothing was created by bad requests"
    );
    h.expect(
        Method::GET,
        "/api/v1/enclaves/Bad",
        None,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await?;
    h.stop().await?;
    Ok(())
}
both!(refuses_bad_enclaves);
