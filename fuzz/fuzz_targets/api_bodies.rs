//! Request bodies the controller parses, the netmap the node parses and the
//! policy envelope.
#![no_main]

use proto::api::{Chamber, CreateEnclave, CreateToken, JoinRequest, PutCredential, PutPolicy};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<JoinRequest>(data);
    let _ = serde_json::from_slice::<CreateEnclave>(data);
    let _ = serde_json::from_slice::<CreateToken>(data);
    let _ = serde_json::from_slice::<Chamber>(data);
    let _ = serde_json::from_slice::<PutPolicy>(data);
    let _ = serde_json::from_slice::<PutCredential>(data);
    let _ = serde_json::from_slice::<proto::Netmap>(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = proto::PolicyDocument::parse(s);
    }
});
