//! MCP JSON-RPC through the gate, as newline-delimited lines in both
//! directions (what `asc mcp-stdio` relays and `/mcp/<server>` carries):
//! the first byte of each line says who sent it. Whatever arrives, a
//! denied tool is never forwarded to the server in a call nor shown to the
//! client in a list.
#![no_main]

use std::sync::OnceLock;

use asc::inspector::Inspector;
use asc::mcp::gate::{FromClient, FromServer, Gate};
use asc::mcp::pins::Pins;
use asc::policy::{McpServer, Policy};
use serde_json::Value;

fn setup() -> &'static (McpServer, Inspector) {
    static S: OnceLock<(McpServer, Inspector)> = OnceLock::new();
    S.get_or_init(|| {
        let p = Policy::parse(
            "[dlp]\npacks = [\"secrets\"]\naction = \"block\"\n[mcp.servers.s]\nallow = [\"*\"]\ndeny = [\"d*\"]\n\
             prompts = { allow = [\"*\"], deny = [\"d*\"] }\n",
        )
        .expect("policy");
        let i = Inspector::new(&p.dlp).expect("engine");
        (p.mcp.get("s").expect("server").clone(), i)
    })
}

fn denied(name: Option<&str>) -> bool {
    name.is_some_and(|n| n.starts_with('d'))
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (rules, inspector) = setup();
    let mut gate = Gate::new("s", rules.clone(), Pins::default(), inspector.clone());
    for line in data.split(|b| *b == b'\n') {
        let [dir, json @ ..] = line else { continue };
        let Ok(msg) = serde_json::from_slice::<Value>(json) else {
            continue;
        };
        if dir % 2 == 0 {
            if let FromClient::Forward(m) = gate.from_client(msg) {
                if m.get("method").and_then(Value::as_str) == Some("tools/call") {
                    assert!(
                        !denied(m.pointer("/params/name").and_then(Value::as_str)),
                        "a denied tool call was forwarded: {m}"
                    );
                }
            }
        } else if let FromServer::Forward { message, .. } = gate.from_server(msg) {
            for list in ["/result/tools", "/result/prompts"] {
                if let Some(items) = message.pointer(list).and_then(Value::as_array) {
                    for t in items {
                        assert!(
                            !denied(t.get("name").and_then(Value::as_str)),
                            "a denied entry reached the client: {message}"
                        );
                    }
                }
            }
        }
    }
});
