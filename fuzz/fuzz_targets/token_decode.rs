//! Join tokens come from users and from anywhere a token was pasted.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(t) = proto::JoinToken::decode(s) {
            // What decodes re-encodes to something that decodes the same.
            let again = proto::JoinToken::decode(&t.encode());
            assert!(again.is_ok_and(|u| u.secret == t.secret && u.controller == t.controller));
        }
    }
});
