//! Host inventories: nodes report, admins list (all or unmanaged only),
//! the newest report per host wins, values never get in, and a removed
//! member's report goes with it.

use anyhow::Result;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use crate::both;
use crate::common::{Db, Harness};

fn agent(pid: u32, kind: &str, entry: Option<&str>, enclave: Option<&str>) -> Value {
    json!({"pid": pid, "ppid": 1, "user": "dev", "program": "p", "command": "p --model x",
           "kind": kind, "entry": entry, "risk": null, "env_names": ["OPENAI_API_KEY"],
           "listening": [], "mcp_children": [], "enclave": enclave})
}

fn inventory(host: &str, agents: Vec<Value>) -> Value {
    json!({"host": host, "scanned_at": 1, "agents": agents, "extensions": [], "unreadable": 0})
}

async fn report(
    h: &Harness,
    c: &control_client::Client,
    body: Value,
) -> Result<(StatusCode, Value)> {
    h.call(c, Method::POST, "/api/v1/node/inventory", Some(body))
        .await
}

async fn nodes_report_and_admins_list(db: Db) -> Result<()> {
    let h = Harness::start(db).await?;
    h.create_enclave(json!({"name": "e"})).await?;
    let a = h.joined("e", "agent", "a").await?;
    let b = h.joined("e", "asset", "b").await?;
    let ca = h.client(a["node_token"].as_str())?;
    let cb = h.client(b["node_token"].as_str())?;
    let (s, v) = report(
        &h,
        &ca,
        inventory(
            "ws-1",
            vec![
                agent(10, "coding-agent", Some("claude-code"), None),
                agent(11, "coding-agent", Some("aider"), Some("e")),
            ],
        ),
    )
    .await?;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (s, _) = report(
        &h,
        &cb,
        inventory("ws-2", vec![agent(20, "unclassified", None, Some("e"))]),
    )
    .await?;
    assert_eq!(s, StatusCode::NO_CONTENT);

    let all = h
        .expect(Method::GET, "/api/v1/inventory", None, StatusCode::OK)
        .await?;
    let hosts: Vec<&str> = all
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|x| x["inventory"]["host"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(hosts, ["ws-1", "ws-2"], "{all}");
    let un = h
        .expect(
            Method::GET,
            "/api/v1/inventory?unmanaged=true",
            None,
            StatusCode::OK,
        )
        .await?;
    assert_eq!(
        un.as_array().map(Vec::len),
        Some(1),
        "ws-2 has nothing unmanaged: {un}"
    );
    assert_eq!(
        un[0]["inventory"]["agents"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(un[0]["inventory"]["agents"][0]["entry"], "claude-code");
    assert_eq!(un[0]["member"], "a");

    // A newer report replaces the older one.
    report(
        &h,
        &ca,
        inventory(
            "ws-1",
            vec![agent(12, "mcp-server", Some("mcp-server"), None)],
        ),
    )
    .await?;
    let all = h
        .expect(Method::GET, "/api/v1/inventory", None, StatusCode::OK)
        .await?;
    assert_eq!(all[0]["inventory"]["agents"][0]["pid"], 12);

    // Values, unknown fields, bad tokens and garbage are refused.
    let mut leaky = agent(13, "unclassified", None, None);
    leaky["env_names"] = json!(["OPENAI_API_KEY=sk-live-0123456789"]);
    let (s, v) = report(&h, &ca, inventory("ws-1", vec![leaky])).await?;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let mut extra = inventory("ws-1", vec![]);
    extra["environ"] = json!({"OPENAI_API_KEY": "sk-live-0123456789"});
    let (s, _) = report(&h, &ca, extra).await?;
    assert!(s.is_client_error(), "{s}");
    let (s, _) = report(&h, &ca, json!("garbage")).await?;
    assert!(s.is_client_error(), "{s}");
    let forged = h.client(Some("cn1.1.forged"))?;
    let (s, _) = report(&h, &forged, inventory("ws-9", vec![])).await?;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = h.call(&ca, Method::GET, "/api/v1/inventory", None).await?;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "a node token is not an admin token"
    );
    let all = h
        .expect(Method::GET, "/api/v1/inventory", None, StatusCode::OK)
        .await?;
    assert!(!all.to_string().contains("sk-live"), "{all}");
    assert_eq!(
        all[0]["inventory"]["agents"][0]["pid"], 12,
        "refused reports change nothing"
    );

    // Removing the member removes its report.
    h.expect(
        Method::DELETE,
        "/api/v1/enclaves/e/members/a",
        None,
        StatusCode::NO_CONTENT,
    )
    .await?;
    let all = h
        .expect(Method::GET, "/api/v1/inventory", None, StatusCode::OK)
        .await?;
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");
    Ok(())
}

both!(nodes_report_and_admins_list);
