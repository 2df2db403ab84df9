//! A bulk transfer with an end-to-end checksum, for the fault scenarios:
//! the agent's `sink` reads each TCP connection to its end and answers with
//! the byte count and SHA-256 of what arrived; `transfer` sends seeded
//! pseudo-random bytes and checks that answer against what it sent.

use std::net::Ipv4Addr;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Bytes per write.
const CHUNK: usize = 64 * 1024;

/// Accepts connections on `addr:port` in the background; answers each with
/// `"<count> <sha256 hex>\n"` once the sender has shut its side.
///
/// # Errors
/// When the port cannot be bound.
pub async fn sink(addr: Ipv4Addr, port: u16) -> Result<String, String> {
    let l = TcpListener::bind((addr, port))
        .await
        .map_err(|e| format!("bind {addr}:{port}: {e}"))?;
    tokio::spawn(async move {
        while let Ok((c, _)) = l.accept().await {
            tokio::spawn(drain(c));
        }
    });
    Ok(format!("sink on {addr}:{port}"))
}

async fn drain(mut c: TcpStream) {
    let mut h = Sha256::new();
    let mut n = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        match c.read(&mut buf).await {
            Ok(0) => break,
            Ok(k) => {
                h.update(&buf[..k]);
                n += k as u64;
            }
            Err(_) => return,
        }
    }
    let line = format!("{n} {}\n", hex::encode(h.finalize()));
    let _ = c.write_all(line.as_bytes()).await;
    let _ = c.shutdown().await;
}

/// A xorshift64* stream: cheap, seeded, not compressible.
struct Stream(u64);

impl Stream {
    fn fill(&mut self, buf: &mut [u8]) {
        for w in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes();
            w.copy_from_slice(&v[..w.len()]);
        }
    }
}

/// Sends `bytes` bytes drawn from `seed` to the sink at `dst:port` and
/// compares the sink's count and SHA-256 with its own.
///
/// # Errors
/// When the connection fails or the sink saw something else.
pub async fn transfer(dst: Ipv4Addr, port: u16, bytes: u64, seed: u64) -> Result<String, String> {
    let mut c = TcpStream::connect((dst, port))
        .await
        .map_err(|e| format!("connect {dst}:{port}: {e}"))?;
    let mut s = Stream(seed | 1);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut left = bytes;
    while left > 0 {
        let k = usize::try_from(left.min(CHUNK as u64)).unwrap_or(CHUNK);
        s.fill(&mut buf[..k]);
        h.update(&buf[..k]);
        c.write_all(&buf[..k])
            .await
            .map_err(|e| format!("send after {} bytes: {e}", bytes - left))?;
        left -= k as u64;
    }
    c.shutdown().await.map_err(|e| format!("shutdown: {e}"))?;
    let mut answer = String::new();
    c.read_to_string(&mut answer)
        .await
        .map_err(|e| format!("reading the sink's answer: {e}"))?;
    let want = format!("{bytes} {}", hex::encode(h.finalize()));
    if answer.trim() == want {
        Ok(format!("{want} (the sink's count and SHA-256 match)"))
    } else {
        Err(format!("sent {want}, the sink saw {:?}", answer.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_transfer_is_checked_end_to_end() -> Result<(), String> {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| e.to_string())?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        drop(l);
        sink(Ipv4Addr::LOCALHOST, port).await?;
        let ok = transfer(Ipv4Addr::LOCALHOST, port, 300_001, 42).await?;
        assert!(ok.starts_with("300001 "), "{ok}");

        // A sink that answers something else is a failure.
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|e| e.to_string())?;
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        tokio::spawn(async move {
            if let Ok((mut c, _)) = l.accept().await {
                let mut b = vec![];
                let _ = c.read_to_end(&mut b).await;
                let _ = c.write_all(b"5 00\n").await;
            }
        });
        let err = transfer(Ipv4Addr::LOCALHOST, port, 10, 1)
            .await
            .expect_err("a wrong checksum fails");
        assert!(err.contains("the sink saw"), "{err}");
        Ok(())
    }

    #[test]
    fn streams_are_seeded() {
        let (mut a, mut b, mut c) = (Stream(3), Stream(3), Stream(5));
        let (mut x, mut y, mut z) = ([0u8; 20], [0u8; 20], [0u8; 20]);
        a.fill(&mut x);
        b.fill(&mut y);
        c.fill(&mut z);
        assert_eq!(x, y);
        assert_ne!(x, z);
    }
}
