//! Decoders that expose hidden content: JSON string escapes, base64 and
//! base64url blobs (data URLs and provider `inlineData`/document parts are
//! such blobs), hex, percent-encoding, and Unicode NFKC with zero-width,
//! bidi and tag characters removed. Each decoded view carries, for every
//! byte, the offset in its input it came from, so findings map back.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use unicode_normalization::UnicodeNormalization;

/// Shortest base64 run decoded (15 bytes once decoded).
const MIN_BASE64: usize = 20;
/// Shortest hex run decoded (16 bytes once decoded).
const MIN_HEX: usize = 32;

/// A decoded view of part of an input.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Which decoder.
    pub kind: &'static str,
    /// The decoded bytes.
    pub bytes: Vec<u8>,
    /// For each decoded byte, the input offset it came from.
    pub map: Vec<usize>,
    /// The input span the view covers (for a finding's end).
    pub span: (usize, usize),
}

impl Decoded {
    /// Maps a decoded span back to the input.
    pub fn original(&self, start: usize, end: usize) -> (usize, usize) {
        let s = self.map.get(start).copied().unwrap_or(self.span.0);
        let e = if end < self.map.len() {
            self.map[end]
        } else {
            self.span.1
        };
        (s, e.max(s + 1).min(self.span.1.max(s + 1)))
    }
}

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const STD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
const URL: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);

/// Bytes of context kept around an encoded spot in whole-text decoders, so
/// keyword rules still see their keyword next to the decoded value.
const REACH: usize = 256;

/// Whether decoded bytes are text worth scanning (binary payloads such as
/// images decode to noise, and rescanning noise finds nothing but costs).
pub fn is_text(b: &[u8]) -> bool {
    if b.is_empty() {
        return false;
    }
    // Binary shows in the first bytes: most decoded noise stops here.
    if !few_controls(b) {
        return false;
    }
    let ok = b
        .iter()
        .filter(|&&c| {
            c.is_ascii_graphic() || c == b' ' || c == b'\n' || c == b'\r' || c == b'\t' || c >= 0x80
        })
        .count();
    ok * 10 >= b.len() * 9
        && std::str::from_utf8(b)
            .is_ok_and(|t| t.chars().filter(|c| !c.is_ascii()).count() * 4 <= t.len())
}

/// Whether the first bytes of a decoding may begin text: no more than
/// [`is_text`] asks of them (few control bytes, valid UTF-8 but for a
/// character cut off at their end), so no text it accepts is turned away.
fn text_head(b: &[u8]) -> bool {
    few_controls(b)
        && match std::str::from_utf8(b) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        }
}

/// At most one control byte (other than line breaks and tabs) in the first
/// 16: binary shows there.
fn few_controls(b: &[u8]) -> bool {
    b[..b.len().min(16)]
        .iter()
        .filter(|&&c| c < 0x20 && !matches!(c, b'\n' | b'\r' | b'\t'))
        .count()
        <= 1
}

/// Every decoded view of `hay`, within `budget` decoded bytes in total.
pub fn views(hay: &[u8], budget: &mut usize) -> Vec<Decoded> {
    let mut out = vec![];
    let mut take = |d: Decoded, out: &mut Vec<Decoded>| {
        if d.bytes.len() <= *budget {
            *budget -= d.bytes.len();
            out.push(d);
        }
    };
    for d in encoded_runs(hay) {
        take(d, &mut out);
    }
    for (a, b) in segments(json_spots(hay)) {
        if let Some(d) = json_unescape(hay, a, b) {
            take(d, &mut out);
        }
    }
    for (a, b) in segments(percent_spots(hay)) {
        take(percent(hay, a, b), &mut out);
    }
    for (a, b) in segments(unicode_spots(hay)) {
        take(unicode(hay, a, b), &mut out);
    }
    out
}

/// Groups spots closer than `2 * REACH` into segments widened by `REACH`
/// (the caller clamps to the input).
fn segments(spots: (Vec<usize>, usize)) -> Vec<(usize, usize)> {
    let (spots, len) = spots;
    let mut out: Vec<(usize, usize)> = vec![];
    for p in spots {
        let (a, b) = (p.saturating_sub(REACH), (p + REACH).min(len));
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Byte classes: base64/base64url alphabet, hex digit, and what kinds of
/// characters a base64 run mixes.
const B64: u8 = 1;
const HEX: u8 = 2;
const UPPER: u8 = 4;
const LOWER: u8 = 8;
const DIGIT: u8 = 16;
/// `-` and `_`: base64url only.
const URL_ONLY: u8 = 32;
/// `+` and `/`: standard base64 only.
const STD_ONLY: u8 = 64;
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = if c.is_ascii_uppercase() {
            B64 | UPPER
        } else if c.is_ascii_lowercase() {
            B64 | LOWER
        } else if c.is_ascii_digit() {
            B64 | DIGIT
        } else if c == b'-' || c == b'_' {
            B64 | URL_ONLY
        } else if c == b'+' || c == b'/' {
            B64 | STD_ONLY
        } else if c == b'=' {
            B64
        } else {
            0
        };
        if c.is_ascii_hexdigit() {
            t[i] |= HEX;
        }
        i += 1;
    }
    t
};

/// Base64 characters looked at before decoding a whole run (18 bytes).
const HEAD_CHARS: usize = 24;

/// Whether `c` is in the base64/base64url alphabet (comparisons only, so
/// block checks vectorise).
fn b64_byte(c: u8) -> u8 {
    u8::from((c | 0x20).wrapping_sub(b'a') < 26)
        | u8::from(c.wrapping_sub(b'0') < 10)
        | u8::from(c == b'+')
        | u8::from(c == b'/')
        | u8::from(c == b'-')
        | u8::from(c == b'_')
        | u8::from(c == b'=')
}

/// Bit k set when `blk[k]` is in the base64/base64url alphabet: the
/// per-byte tests over a fixed 16 bytes vectorise into 0/1 bytes, each
/// eight of which are gathered into eight bits.
fn alphabet_mask(blk: &[u8; 16]) -> u32 {
    let mut flags = [0u8; 16];
    for (f, &c) in flags.iter_mut().zip(blk) {
        *f = b64_byte(c);
    }
    let half = |at| crate::swar::gather(crate::swar::load8(&flags, at) << 7) as u32;
    half(0) | half(8) << 8
}

/// Maximal runs of base64-alphabet bytes at least `MIN_BASE64` long. One
/// pass over 16-byte blocks, each reduced to a bit mask: a block wholly in
/// the alphabet extends the current run; otherwise the run ends at the
/// block's first byte outside it, and the next one starts after its last.
/// A run shorter than 16 bytes inside one block can never be long enough,
/// so prose costs one mask per block and no walk.
fn alphabet_runs(hay: &[u8]) -> Vec<(usize, usize)> {
    let mut out = vec![];
    // Alphabet bytes just before `base`.
    let mut run = 0usize;
    let mut base = 0usize;
    while base < hay.len() {
        let rest = &hay[base..];
        let len = rest.len().min(16);
        let m = match rest.first_chunk::<16>() {
            Some(blk) => alphabet_mask(blk),
            None => {
                // The last, short block: padding (zeros) is outside the
                // alphabet.
                let mut blk = [0u8; 16];
                blk[..len].copy_from_slice(rest);
                alphabet_mask(&blk)
            }
        };
        // Padding is outside the alphabet: only a whole block is all ones.
        if m == 0xffff {
            run += 16;
        } else {
            let lead = m.trailing_ones() as usize;
            if run + lead >= MIN_BASE64 {
                out.push((base - run, base + lead));
            }
            // Ones above the block's last zero (within the 16 bits).
            run = (m << 16).leading_ones() as usize;
        }
        base += len;
    }
    if run >= MIN_BASE64 {
        out.push((hay.len() - run, hay.len()));
    }
    out
}

/// Runs of base64/base64url characters long enough to hide a secret,
/// decoded (the alphabet is chosen by the characters present), and hex runs
/// inside them.
fn encoded_runs(hay: &[u8]) -> Vec<Decoded> {
    let mut out = vec![];
    for (a, b) in alphabet_runs(hay) {
        if hay[a..b].iter().all(|&c| CLASS[usize::from(c)] & HEX != 0) {
            if let Some(d) = decode_hex(hay, a, b) {
                out.push(d);
                continue;
            }
        }
        if let Some(d) = decode_b64(hay, a, b) {
            out.push(d);
        }
    }
    out
}

fn decode_b64(hay: &[u8], a: usize, b: usize) -> Option<Decoded> {
    let run = &hay[a..b];
    let body: &[u8] = {
        let end = run.iter().rposition(|&c| c != b'=').map_or(0, |p| p + 1);
        &run[..end]
    };
    // Plain words and identifiers are not base64: want some mix.
    let seen = body.iter().fold(0u8, |f, &c| f | CLASS[usize::from(c)]);
    let has = |bit: u8| seen & bit != 0;
    if !(has(UPPER) && has(LOWER) || has(DIGIT) && (has(UPPER) || has(LOWER))) {
        return None;
    }
    let url = has(URL_ONLY);
    if url && has(STD_ONLY) {
        return None;
    }
    let engine = if url { &URL } else { &STD };
    // Decoded noise (images, keys, compressed data) shows in its first
    // bytes: judge those before decoding the whole run.
    let head = &body[..body.len().min(HEAD_CHARS) & !3];
    let mut buf = [0u8; HEAD_CHARS / 4 * 3];
    if !head.is_empty()
        && !engine
            .decode_slice(head, &mut buf)
            .is_ok_and(|n| text_head(&buf[..n]))
    {
        return None;
    }
    let usable = body.len() - body.len() % 4
        + if body.len() % 4 >= 2 {
            body.len() % 4
        } else {
            0
        };
    let body = &body[..usable];
    let bytes = engine.decode(body).ok()?;
    if !is_text(&bytes) {
        return None;
    }
    let map = (0..bytes.len()).map(|k| a + k * 4 / 3).collect();
    Some(Decoded {
        kind: "base64",
        bytes,
        map,
        span: (a, b),
    })
}

fn decode_hex(hay: &[u8], a: usize, b: usize) -> Option<Decoded> {
    let len = (b - a) & !1;
    if len < MIN_HEX {
        return None;
    }
    let bytes = hex::decode(&hay[a..a + len]).ok()?;
    // Only text is worth rescanning: hashes decode to noise.
    if !is_text(&bytes) {
        return None;
    }
    let map = (0..bytes.len()).map(|k| a + 2 * k).collect();
    Some(Decoded {
        kind: "hex",
        bytes,
        map,
        span: (a, a + len),
    })
}

/// Where JSON escapes that can hide text start (`\uXXXX`, `\/`); `\n`,
/// `\"` and friends separate words and hide nothing.
fn json_spots(hay: &[u8]) -> (Vec<usize>, usize) {
    let spots = memchr::memchr_iter(b'\\', hay)
        .filter(|&p| matches!(hay.get(p + 1), Some(b'u' | b'/')))
        .collect();
    (spots, hay.len())
}

/// `hay[a..b]` with JSON string escapes decoded.
fn json_unescape(hay: &[u8], a: usize, b: usize) -> Option<Decoded> {
    let mut bytes = Vec::with_capacity(b - a);
    let mut map = Vec::with_capacity(b - a);
    let mut i = a;
    while i < b {
        if hay[i] == b'\\' && i + 1 < b {
            let simple = match hay[i + 1] {
                b'"' => Some(b'"'),
                b'\\' => Some(b'\\'),
                b'/' => Some(b'/'),
                b'b' => Some(8),
                b'f' => Some(12),
                b'n' => Some(b'\n'),
                b'r' => Some(b'\r'),
                b't' => Some(b'\t'),
                _ => None,
            };
            if let Some(c) = simple {
                bytes.push(c);
                map.push(i);
                i += 2;
                continue;
            }
            if hay[i + 1] == b'u' {
                if let Some((ch, used)) = json_u(&hay[i..b]) {
                    let mut buf = [0u8; 4];
                    for &c in ch.encode_utf8(&mut buf).as_bytes() {
                        bytes.push(c);
                        map.push(i);
                    }
                    i += used;
                    continue;
                }
            }
        }
        bytes.push(hay[i]);
        map.push(i);
        i += 1;
    }
    Some(Decoded {
        kind: "json",
        bytes,
        map,
        span: (a, b),
    })
}

fn hex4(b: &[u8]) -> Option<u32> {
    if b.len() < 4 {
        return None;
    }
    std::str::from_utf8(&b[..4])
        .ok()
        .and_then(|s| u32::from_str_radix(s, 16).ok())
}

/// `\uXXXX` (with a surrogate pair when needed): the char and bytes used.
fn json_u(b: &[u8]) -> Option<(char, usize)> {
    let hi = hex4(b.get(2..)?)?;
    if (0xD800..0xDC00).contains(&hi) {
        if b.get(6..8) == Some(b"\\u") {
            let lo = hex4(b.get(8..)?)?;
            if (0xDC00..0xE000).contains(&lo) {
                let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return char::from_u32(c).map(|c| (c, 12));
            }
        }
        return None;
    }
    char::from_u32(hi).map(|c| (c, 6))
}

fn percent_spots(hay: &[u8]) -> (Vec<usize>, usize) {
    let spots = memchr::memchr_iter(b'%', hay)
        .filter(|&p| {
            p + 2 < hay.len() && hay[p + 1].is_ascii_hexdigit() && hay[p + 2].is_ascii_hexdigit()
        })
        .collect();
    (spots, hay.len())
}

fn percent(hay: &[u8], a: usize, b: usize) -> Decoded {
    let mut bytes = Vec::with_capacity(b - a);
    let mut map = Vec::with_capacity(b - a);
    let mut i = a;
    while i < b {
        if hay[i] == b'%'
            && i + 2 < b
            && hay[i + 1].is_ascii_hexdigit()
            && hay[i + 2].is_ascii_hexdigit()
        {
            let v = (hex_val(hay[i + 1]) << 4) | hex_val(hay[i + 2]);
            bytes.push(v);
            map.push(i);
            i += 3;
            continue;
        }
        bytes.push(hay[i]);
        map.push(i);
        i += 1;
    }
    Decoded {
        kind: "percent",
        bytes,
        map,
        span: (a, b),
    }
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => c.wrapping_sub(b'A').wrapping_add(10) & 15,
    }
}

/// Zero-width, bidi controls, tag characters and other invisible format
/// characters that split or disguise a token.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{E0000}'..='\u{E007F}')
}

/// Whether NFKC changes `c`.
fn nfkc_changes(c: char) -> bool {
    let mut it = std::iter::once(c).nfkc();
    !(it.next() == Some(c) && it.next().is_none())
}

/// Non-ASCII characters that are invisible or change under NFKC.
fn unicode_spots(hay: &[u8]) -> (Vec<usize>, usize) {
    let mut spots = vec![];
    let mut i = 0;
    while i < hay.len() {
        if i + 16 <= hay.len() && hay[i..i + 16].is_ascii() {
            i += 16;
            continue;
        }
        if hay[i] < 0x80 {
            i += 1;
            continue;
        }
        let end = (i + 4).min(hay.len());
        let c = hay[i..end]
            .utf8_chunks()
            .next()
            .and_then(|ch| ch.valid().chars().next());
        match c {
            Some(c) => {
                if invisible(c) || nfkc_changes(c) {
                    spots.push(i);
                }
                i += c.len_utf8();
            }
            None => i += 1,
        }
    }
    (spots, hay.len())
}

/// `hay[a..b]` in NFKC with invisible characters removed. Invalid UTF-8
/// passes through as it is.
fn unicode(hay: &[u8], a: usize, b: usize) -> Decoded {
    // Snap to character boundaries.
    let a = (a..b).find(|&k| hay[k] & 0xC0 != 0x80).unwrap_or(b);
    let b = (b..hay.len())
        .find(|&k| hay[k] & 0xC0 != 0x80)
        .unwrap_or(hay.len());
    let mut bytes = Vec::with_capacity(b - a);
    let mut map = Vec::with_capacity(b - a);
    let seg = &hay[a..b];
    for chunk in seg.utf8_chunks() {
        let base = chunk.valid().as_ptr() as usize - seg.as_ptr() as usize + a;
        for (off, c) in chunk.valid().char_indices() {
            if c.is_ascii() {
                bytes.push(c as u8);
                map.push(base + off);
                continue;
            }
            if invisible(c) {
                continue;
            }
            let mut buf = [0u8; 4];
            for n in std::iter::once(c).nfkc() {
                for &x in n.encode_utf8(&mut buf).as_bytes() {
                    bytes.push(x);
                    map.push(base + off);
                }
            }
        }
        let inv = chunk.invalid();
        let start = inv.as_ptr() as usize - seg.as_ptr() as usize + a;
        for (k, &x) in inv.iter().enumerate() {
            bytes.push(x);
            map.push(start + k);
        }
    }
    Decoded {
        kind: "unicode",
        bytes,
        map,
        span: (a, b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_runs_are_the_maximal_runs_of_twenty_or_more() {
        // The definition, a byte at a time.
        let walk = |hay: &[u8]| {
            let mut out = vec![];
            let mut start = None;
            for (i, &c) in hay.iter().chain([&b' ']).enumerate() {
                match (b64_byte(c) == 1 && i < hay.len(), start) {
                    (true, None) => start = Some(i),
                    (false, Some(a)) => {
                        if i - a >= MIN_BASE64 {
                            out.push((a, i));
                        }
                        start = None;
                    }
                    _ => {}
                }
            }
            out
        };
        let mut s = 11u64;
        for len in [0, 1, 15, 16, 19, 20, 21, 31, 32, 33, 47, 48, 64, 100, 1000] {
            for density in [1, 8, 20, 40] {
                let hay: Vec<u8> = (0..len)
                    .map(|_| {
                        s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        if (s >> 33).is_multiple_of(density) {
                            b' '
                        } else {
                            b"aZ09+/-_=."[(s >> 40) as usize % 10]
                        }
                    })
                    .collect();
                assert_eq!(
                    alphabet_runs(&hay),
                    walk(&hay),
                    "{}",
                    String::from_utf8_lossy(&hay)
                );
            }
            let all = vec![b'A'; len];
            assert_eq!(alphabet_runs(&all), walk(&all), "{len} letters");
        }
        for c in 0..=255u8 {
            assert_eq!(b64_byte(c) == 1, CLASS[usize::from(c)] & B64 != 0, "{c}");
        }
    }

    fn all(hay: &[u8]) -> Vec<Decoded> {
        let mut budget = 1 << 20;
        views(hay, &mut budget)
    }

    #[test]
    fn base64_and_url_variants_with_offsets() {
        let inner = b"token AKIAQWERTYUIOPASDFGH here";
        let enc = base64::engine::general_purpose::STANDARD.encode(inner);
        let hay = format!("data:text/plain;base64,{enc} end");
        let v = all(hay.as_bytes());
        let d = v
            .iter()
            .find(|d| d.kind == "base64")
            .unwrap_or_else(|| panic!("no base64 view"));
        assert_eq!(d.bytes, inner);
        let (s, _) = d.original(6, 26);
        assert!(s >= 23 && s < 23 + enc.len(), "{s}");
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(b"~~~ secret sk_live_1234567890abcdefghijklmn");
        assert!(url.contains('-'), "{url}");
        assert!(all(url.as_bytes())
            .iter()
            .any(|d| d.bytes.ends_with(b"abcdefghijklmn")));
    }

    #[test]
    fn words_and_hashes_are_not_decoded() {
        assert!(all(b"internationalization_and_localization")
            .iter()
            .all(|d| d.kind != "base64"));
        let sha = b"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(all(sha).iter().all(|d| d.kind != "hex"));
        let hex_text = hex::encode(b"password=hunter2hunter2hunter2");
        assert!(all(hex_text.as_bytes()).iter().any(|d| d.kind == "hex"));
    }

    #[test]
    fn json_percent_and_unicode() {
        let v = all(br#"{"k":"\u0041KIA\/x \ud83d\ude00"}"#);
        let j = v
            .iter()
            .find(|d| d.kind == "json")
            .unwrap_or_else(|| panic!("json"));
        assert!(String::from_utf8_lossy(&j.bytes).contains("AKIA/x \u{1F600}"));
        assert_eq!(j.original(6, 10), (6, 15));
        let p = all(b"q=sk%2Dant%2Dapi03");
        assert!(p
            .iter()
            .any(|d| d.kind == "percent" && d.bytes == b"q=sk-ant-api03"));
        let u = all("ＡＫＩＡ\u{200B}QW\u{E0041}".as_bytes());
        let d = u
            .iter()
            .find(|d| d.kind == "unicode")
            .unwrap_or_else(|| panic!("unicode"));
        assert_eq!(d.bytes, b"AKIAQW");
        assert!(all(b"plain ascii").is_empty());
    }

    #[test]
    fn truncated_and_invalid_input_does_not_panic() {
        for hay in [
            &b"\\u12"[..],
            b"\\ud800",
            b"%4",
            b"%",
            b"\xff\xfe\\u0041",
            b"====",
            b"\\",
        ] {
            let _ = all(hay);
        }
    }
}
