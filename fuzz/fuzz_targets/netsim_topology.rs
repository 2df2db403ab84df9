//! Topology files: parse and compute the expected matrix.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(t) = netsim::topology::Topology::parse(s, "fuzz") {
            let _ = netsim::expect::probes(&t);
            let _ = netsim::expect::contradictions(&t);
        }
    }
});
