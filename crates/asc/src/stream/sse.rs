//! Incremental Server-Sent Events framing: bytes in, whole events out,
//! each with the exact bytes it arrived as (so a passed event is forwarded
//! unchanged).

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The bytes as received, blank line included.
    pub raw: Vec<u8>,
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Why a stream is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// One event grew past the limit without ending.
    #[error("SSE event larger than {0} bytes")]
    TooLarge(usize),
    /// An event is not UTF-8.
    #[error("SSE event is not UTF-8")]
    NotUtf8,
}

/// The decoder.
#[derive(Debug)]
pub struct SseDecoder {
    buf: Vec<u8>,
    /// Where to resume looking for the blank line.
    scanned: usize,
    max_event: usize,
}

/// Position just past the first blank line (`\n\n`, `\r\n\r\n`, `\r\r`
/// or mixed) at or after `from`.
fn event_end(b: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < b.len() {
        let line_end = match b[i] {
            b'\n' => i + 1,
            b'\r' if b.get(i + 1) == Some(&b'\n') => i + 2,
            b'\r' if i + 1 < b.len() => i + 1,
            b'\r' => return None,
            _ => {
                i += 1;
                continue;
            }
        };
        // A line ended at `line_end`; is the next line empty?
        match b.get(line_end) {
            Some(b'\n') => return Some(line_end + 1),
            Some(b'\r') if b.get(line_end + 1) == Some(&b'\n') => return Some(line_end + 2),
            Some(b'\r') if line_end + 1 < b.len() => return Some(line_end + 1),
            _ => i = line_end,
        }
    }
    None
}

fn parse(raw: &[u8]) -> Result<Event, SseError> {
    let text = std::str::from_utf8(raw).map_err(|_| SseError::NotUtf8)?;
    let mut event = None;
    let mut data: Vec<&str> = vec![];
    for line in text.split(['\n', '\r']) {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_owned()),
            "data" => data.push(value),
            _ => {}
        }
    }
    Ok(Event {
        raw: raw.to_vec(),
        event,
        data: data.join("\n"),
    })
}

impl SseDecoder {
    /// A decoder refusing events over `max_event` bytes.
    pub fn new(max_event: usize) -> Self {
        Self {
            buf: vec![],
            scanned: 0,
            max_event,
        }
    }

    /// Adds bytes; returns the events they complete.
    ///
    /// # Errors
    /// [`SseError`] on an oversized or non-UTF-8 event.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, SseError> {
        self.buf.extend_from_slice(bytes);
        let mut out = vec![];
        let mut start = 0;
        let mut from = self.scanned;
        while let Some(end) = event_end(&self.buf, from) {
            out.push(parse(&self.buf[start..end])?);
            start = end;
            from = end;
        }
        self.buf.drain(..start);
        // A blank line may begin in the last three bytes kept.
        self.scanned = self.buf.len().saturating_sub(3);
        if self.buf.len() > self.max_event {
            return Err(SseError::TooLarge(self.max_event));
        }
        Ok(out)
    }

    /// The stream ended: a last event without its blank line, if any.
    ///
    /// # Errors
    /// [`SseError::NotUtf8`].
    pub fn finish(&mut self) -> Result<Option<Event>, SseError> {
        let rest = std::mem::take(&mut self.buf);
        if rest.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        parse(&rest).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_anywhere_same_events() {
        let s =
            b"event: a\ndata: {\"x\":1}\n\n: comment\ndata: l1\ndata: l2\r\n\r\ndata: [DONE]\n\n";
        let whole = SseDecoder::new(1 << 20).push(s).expect("decode");
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[0].event.as_deref(), Some("a"));
        assert_eq!(whole[0].data, "{\"x\":1}");
        assert_eq!(whole[1].data, "l1\nl2");
        assert_eq!(whole[2].data, "[DONE]");
        let joined: Vec<u8> = whole.iter().flat_map(|e| e.raw.clone()).collect();
        assert_eq!(joined, s);
        for cut in 1..s.len() {
            for step in [1, 3, 7] {
                let mut d = SseDecoder::new(1 << 20);
                let mut got = d.push(&s[..cut]).expect("decode");
                for chunk in s[cut..].chunks(step) {
                    got.extend(d.push(chunk).expect("decode"));
                }
                assert_eq!(got, whole, "cut {cut} step {step}");
            }
        }
    }

    #[test]
    fn oversized_and_unterminated() {
        let mut d = SseDecoder::new(16);
        assert_eq!(
            d.push(b"data: 0123456789abcdef"),
            Err(SseError::TooLarge(16))
        );
        let mut d = SseDecoder::new(1024);
        assert!(d.push(b"data: tail").expect("ok").is_empty());
        assert_eq!(
            d.finish().expect("ok").map(|e| e.data),
            Some("tail".to_owned())
        );
        let mut d = SseDecoder::new(1024);
        assert_eq!(d.push(b"data: \xff\n\n"), Err(SseError::NotUtf8));
    }
}
