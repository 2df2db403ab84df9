//! WireGuard's cookie mechanism, bound to the sender's IP address *and
//! port* as the protocol specifies (boringtun binds it to the IP only, a
//! bug the maintained forks fixed). Under load, a handshake message must
//! carry `mac2 = MAC(cookie, msg)` with `cookie = MAC(R, ip || port)`, R a
//! secret renewed every two minutes; otherwise it gets a cookie reply and
//! costs no Diffie-Hellman. boringtun's own limiter is kept only for mac1.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use blake2::digest::consts::U16;
use blake2::digest::{Digest, KeyInit, Mac};
use blake2::{Blake2s256, Blake2sMac};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// How often the cookie secret changes.
const SECRET_LIFETIME: Duration = Duration::from_secs(120);
/// Size of a cookie reply.
pub const REPLY_LEN: usize = 64;

fn mac16(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut m = <Blake2sMac<U16> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("BLAKE2s takes keys up to 32 bytes"));
    for p in parts {
        Mac::update(&mut m, p);
    }
    m.finalize().into_bytes().into()
}

/// The responder's side of the cookie mechanism.
pub struct CookieGuard {
    secret: [u8; 32],
    born: Instant,
    reply_key: [u8; 32],
    count: u64,
    limit: u64,
}

impl CookieGuard {
    /// For the node with public key `public`, demanding cookies past
    /// `limit` handshake messages per counting period.
    pub fn new(public: &[u8; 32], limit: u64, now: Instant) -> Self {
        let mut h = Blake2s256::new();
        Digest::update(&mut h, b"cookie--");
        Digest::update(&mut h, public);
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        Self {
            secret,
            born: now,
            reply_key: h.finalize().into(),
            count: 0,
            limit,
        }
    }

    /// Whether the next handshake message will need a cookie.
    pub fn under_load(&self) -> bool {
        self.count >= self.limit
    }

    /// Counts `n` handshake messages (what a flood would have done).
    pub fn count(&mut self, n: u64) {
        self.count += n;
    }

    /// Starts a new counting period (call every second).
    pub fn reset_count(&mut self) {
        self.count = 0;
    }

    /// The cookie for `from` now.
    pub(crate) fn cookie_for(&mut self, from: SocketAddr, now: Instant) -> [u8; 16] {
        if now.saturating_duration_since(self.born) >= SECRET_LIFETIME {
            rand::rngs::OsRng.fill_bytes(&mut self.secret);
            self.born = now;
        }
        let port = from.port().to_be_bytes();
        match from.ip() {
            IpAddr::V4(a) => mac16(&self.secret, &[&a.octets(), &port]),
            IpAddr::V6(a) => mac16(&self.secret, &[&a.octets(), &port]),
        }
    }

    /// Checks one handshake message (initiation or response, mac1 already
    /// verified). `Ok` to process it; `Err(n)` when it must not be
    /// processed: under load without a valid mac2 for its source, with a
    /// cookie reply of `n` bytes written to `reply` (0 if none could be).
    pub fn check(
        &mut self,
        msg: &[u8],
        from: SocketAddr,
        now: Instant,
        reply: &mut [u8],
    ) -> Result<(), usize> {
        self.count += 1;
        if self.count <= self.limit {
            return Ok(());
        }
        if msg.len() < 40 {
            return Err(0);
        }
        let (body, mac2) = msg.split_at(msg.len() - 16);
        let cookie = self.cookie_for(from, now);
        let want = mac16(&cookie, &[body]);
        if subtle_eq(&want, mac2) {
            return Ok(());
        }
        Err(self.reply(msg, &cookie, reply))
    }

    /// Writes a cookie reply (type 3) to the sender of `msg`.
    fn reply(&self, msg: &[u8], cookie: &[u8; 16], out: &mut [u8]) -> usize {
        if out.len() < REPLY_LEN {
            return 0;
        }
        let mac1 = &msg[msg.len() - 32..msg.len() - 16];
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aead = <XChaCha20Poly1305 as KeyInit>::new((&self.reply_key).into());
        let Ok(sealed) = aead.encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: cookie,
                aad: mac1,
            },
        ) else {
            return 0;
        };
        out[..4].copy_from_slice(&3u32.to_le_bytes());
        // The receiver is the message's sender index.
        out[4..8].copy_from_slice(&msg[4..8]);
        out[8..32].copy_from_slice(&nonce);
        out[32..REPLY_LEN].copy_from_slice(&sealed);
        REPLY_LEN
    }
}

/// `msg` with its mac2 set for `cookie`, as an initiator holding that
/// cookie sends it.
pub fn with_mac2(msg: &[u8], cookie: &[u8; 16]) -> Vec<u8> {
    let mut m = msg.to_vec();
    let n = m.len();
    let mac2 = mac16(cookie, &[&m[..n - 16]]);
    m[n - 16..].copy_from_slice(&mac2);
    m
}

fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
