//! Provider request and response bodies through the ASC's adapters and
//! policy pipeline, for every operation; SigV4 header parsing.
#![no_main]

use std::sync::OnceLock;

use asc::adapter::Route;
use asc::inspector::Inspector;
use asc::pipeline::{inspect_request, inspect_response};
use asc::policy::Policy;

const PATHS: [&str; 8] = [
    "/openai/v1/chat/completions",
    "/openai/v1/responses",
    "/anthropic/v1/messages",
    "/gemini/v1beta/models/gemini-x:generateContent",
    "/gemini/v1/models/gemini-x:streamGenerateContent?alt=sse",
    "/bedrock/model/m/converse",
    "/bedrock/model/m/invoke",
    "/bedrock/model/m/converse-stream",
];

fn setup() -> &'static (Policy, Inspector) {
    static S: OnceLock<(Policy, Inspector)> = OnceLock::new();
    S.get_or_init(|| {
        let p = Policy::parse("[models]\nallow = [\"*\"]\n[tools]\ndeny = [\"d*\"]\napprove = [\"a*\"]\n[dlp]\npacks = [\"secrets\", \"pii\"]\naction = \"redact\"\n")
            .expect("policy");
        let i = Inspector::new(&p.dlp).expect("engine");
        (p, i)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (policy, inspector) = setup();
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let route = Route::reverse(PATHS[selector as usize % PATHS.len()]).expect("route");
    let raw = bytes::Bytes::copy_from_slice(body);
    if let Ok(passed) = inspect_request(policy, inspector, &route, &raw) {
        // What is forwarded is JSON again.
        assert!(serde_json::from_slice::<serde_json::Value>(&passed.body).is_ok());
    }
    let _ = inspect_response(policy, inspector, &raw);
    if let Ok(s) = std::str::from_utf8(body) {
        let _ = asc::sigv4::Authorization::parse(s);
        let _ = Route::reverse(s);
    }
});
