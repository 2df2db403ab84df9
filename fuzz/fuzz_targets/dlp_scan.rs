//! The DLP engine with its decoders on arbitrary bytes: no panic, spans
//! inside the input, excerpts without the matched bytes.
#![no_main]

use std::sync::OnceLock;

static ENGINE: OnceLock<Option<dlp::Engine>> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let engine = ENGINE.get_or_init(|| {
        dlp::rules::builtin()
            .ok()
            .and_then(|r| dlp::Engine::new(&r).ok())
    });
    let Some(engine) = engine else {
        return;
    };
    for f in engine.scan(data) {
        assert!(
            f.start < f.end && f.end <= data.len(),
            "span {f:?} outside {}",
            data.len()
        );
    }
    let mut budget = 1 << 20;
    for v in dlp::decode::views(data, &mut budget) {
        assert_eq!(v.bytes.len(), v.map.len());
        assert!(v.map.iter().all(|&o| o < data.len()));
    }
});
