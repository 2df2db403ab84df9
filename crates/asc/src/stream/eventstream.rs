//! The AWS event-stream binary framing (`application/vnd.amazon.eventstream`)
//! used by Bedrock's streaming operations: a 12-byte prelude (total
//! length, headers length, CRC32 of both), typed headers, the payload and
//! a CRC32 of the whole message.

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The bytes as received.
    pub raw: Vec<u8>,
    /// String-valued headers (`:event-type`, `:message-type`…); headers of
    /// other types are skipped.
    pub headers: Vec<(String, String)>,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// A string header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a stream is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A length field is impossible or over the limit.
    #[error("event-stream frame length {0} is invalid")]
    Length(usize),
    /// A CRC does not match.
    #[error("event-stream frame CRC mismatch")]
    Crc,
    /// A header is truncated or of an unknown type.
    #[error("event-stream frame has a malformed header")]
    Header,
    /// The stream ended inside a frame.
    #[error("event-stream ended inside a frame")]
    Truncated,
}

const PRELUDE: usize = 12;
const MIN_FRAME: usize = PRELUDE + 4;

fn be32(b: &[u8]) -> usize {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
}

fn skip(h: &[u8], n: usize) -> Result<&[u8], FrameError> {
    h.get(n..).ok_or(FrameError::Header)
}

fn parse_headers(mut h: &[u8]) -> Result<Vec<(String, String)>, FrameError> {
    let mut out = vec![];
    while !h.is_empty() {
        let name_len = h[0] as usize;
        let name = h.get(1..1 + name_len).ok_or(FrameError::Header)?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| FrameError::Header)?;
        h = &h[1 + name_len..];
        let ty = *h.first().ok_or(FrameError::Header)?;
        h = &h[1..];
        h = match ty {
            0 | 1 => h,
            2 => skip(h, 1)?,
            3 => skip(h, 2)?,
            4 => skip(h, 4)?,
            5 | 8 => skip(h, 8)?,
            9 => skip(h, 16)?,
            6 | 7 => {
                let len_bytes = h.get(..2).ok_or(FrameError::Header)?;
                let len = u16::from_be_bytes([len_bytes[0], len_bytes[1]]) as usize;
                let value = h.get(2..2 + len).ok_or(FrameError::Header)?;
                if ty == 7 {
                    let v = String::from_utf8(value.to_vec()).map_err(|_| FrameError::Header)?;
                    out.push((name, v));
                }
                &h[2 + len..]
            }
            _ => return Err(FrameError::Header),
        };
    }
    Ok(out)
}

/// The incremental decoder.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    max_frame: usize,
}

impl FrameDecoder {
    /// A decoder refusing frames over `max_frame` bytes.
    pub fn new(max_frame: usize) -> Self {
        Self {
            buf: vec![],
            max_frame,
        }
    }

    /// Adds bytes; returns the frames they complete.
    ///
    /// # Errors
    /// [`FrameError`] on a malformed frame; the stream cannot continue.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Frame>, FrameError> {
        self.buf.extend_from_slice(bytes);
        let mut out = vec![];
        let mut pos = 0;
        while self.buf.len() - pos >= PRELUDE {
            let b = &self.buf[pos..];
            let total = be32(b);
            let headers_len = be32(&b[4..]);
            if total < MIN_FRAME || total > self.max_frame || headers_len > total - MIN_FRAME {
                return Err(FrameError::Length(total));
            }
            if crc32fast::hash(&b[..8]) as usize != be32(&b[8..]) {
                return Err(FrameError::Crc);
            }
            if b.len() < total {
                break;
            }
            let msg = &b[..total];
            if crc32fast::hash(&msg[..total - 4]) as usize != be32(&msg[total - 4..]) {
                return Err(FrameError::Crc);
            }
            let headers = parse_headers(&msg[PRELUDE..PRELUDE + headers_len])?;
            out.push(Frame {
                raw: msg.to_vec(),
                headers,
                payload: msg[PRELUDE + headers_len..total - 4].to_vec(),
            });
            pos += total;
        }
        self.buf.drain(..pos);
        Ok(out)
    }

    /// The stream ended.
    ///
    /// # Errors
    /// [`FrameError::Truncated`] when bytes of an incomplete frame remain.
    pub fn finish(&mut self) -> Result<(), FrameError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(FrameError::Truncated)
        }
    }
}

/// Encodes a message with string headers.
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = vec![];
    for (k, v) in headers {
        h.push(k.len() as u8);
        h.extend_from_slice(k.as_bytes());
        h.push(7);
        h.extend_from_slice(&(v.len() as u16).to_be_bytes());
        h.extend_from_slice(v.as_bytes());
    }
    let total = PRELUDE + h.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let c = crc32fast::hash(&out);
    out.extend_from_slice(&c.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let c = crc32fast::hash(&out);
    out.extend_from_slice(&c.to_be_bytes());
    out
}

/// An event message (`:message-type: event`).
pub fn event(event_type: &str, payload: &[u8]) -> Vec<u8> {
    encode(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
    )
}

/// An exception message, as Bedrock ends a failed stream.
pub fn exception(exception_type: &str, message: &str) -> Vec<u8> {
    let body = serde_json::json!({ "message": message }).to_string();
    encode(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        body.as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_split_anywhere() {
        let mut s = event("contentBlockDelta", b"{\"delta\":{\"text\":\"hi\"}}");
        s.extend(exception("validationException", "no"));
        let whole = FrameDecoder::new(1 << 20).push(&s).expect("decode");
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].header(":event-type"), Some("contentBlockDelta"));
        assert_eq!(
            whole[1].header(":exception-type"),
            Some("validationException")
        );
        for cut in 0..s.len() {
            let mut d = FrameDecoder::new(1 << 20);
            let mut got = d.push(&s[..cut]).expect("decode");
            got.extend(d.push(&s[cut..]).expect("decode"));
            assert_eq!(got, whole);
            d.finish().expect("complete");
        }
    }

    #[test]
    fn corrupt_frames_refused() {
        let good = event("x", b"{}");
        let mut bad = good.clone();
        let last = bad.len() - 6;
        bad[last] ^= 1;
        assert_eq!(FrameDecoder::new(1 << 20).push(&bad), Err(FrameError::Crc));
        let mut d = FrameDecoder::new(8);
        assert!(matches!(d.push(&good), Err(FrameError::Length(_))));
        let mut d = FrameDecoder::new(1 << 20);
        assert!(d.push(&good[..20]).expect("partial").is_empty());
        assert_eq!(d.finish(), Err(FrameError::Truncated));
        // A header of unknown type 42.
        let mut h = vec![1u8, b'a', 42];
        h.extend_from_slice(b"zz");
        assert_eq!(parse_headers(&h), Err(FrameError::Header));
    }
}
