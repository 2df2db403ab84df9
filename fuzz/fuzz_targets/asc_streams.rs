//! Streamed upstream responses (SSE and AWS event-stream framing, every
//! provider's events) through the stream guard, cut at arbitrary points.
#![no_main]

use std::sync::OnceLock;

use asc::adapter::Operation;
use asc::inspector::Inspector;
use asc::policy::Policy;
use asc::stream::{Step, StreamGuard};

const OPS: [Operation; 6] = [
    Operation::OpenAiChat,
    Operation::OpenAiResponses,
    Operation::AnthropicMessages,
    Operation::GeminiStream,
    Operation::BedrockConverseStream,
    Operation::BedrockInvokeStream,
];

fn setup() -> &'static (Policy, Inspector) {
    static S: OnceLock<(Policy, Inspector)> = OnceLock::new();
    S.get_or_init(|| {
        let p = Policy::parse(
            "[models]\nallow = [\"*\"]\n[tools]\ndeny = [\"d*\"]\napprove = [\"a*\"]\n",
        )
        .expect("policy");
        let i = Inspector::new(&p.dlp).expect("engine");
        (p, i)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (policy, inspector) = setup();
    let [op, cut, rest @ ..] = data else { return };
    let mut g = StreamGuard::new(
        OPS[*op as usize % OPS.len()],
        inspector,
        policy.tools.clone(),
    );
    let cut = (*cut as usize).min(rest.len());
    let mut steps = g.push(&rest[..cut]);
    steps.extend(g.push(&rest[cut..]));
    steps.extend(g.finish());
    let mut blocked = steps.iter().any(|s| matches!(s, Step::Block { .. }));
    if steps.iter().any(|s| matches!(s, Step::Approval(_))) {
        blocked |= g
            .resolve(false, "fuzz")
            .iter()
            .any(|s| matches!(s, Step::Block { .. }));
    }
    // Nothing at all comes out after a block.
    if blocked {
        assert!(g.push(b"data: {}\n\n").is_empty());
        assert!(g.finish().is_empty());
    }
});
