//! The enclave's interception CA, fetched from its gateway over the overlay
//! so that a sandboxed agent's TLS clients trust the ASC's forward proxy.
//!
//! Plain HTTP is enough: the socket is bound to the enclave interface
//! (`SO_BINDTODEVICE`), so the request can only leave through the overlay
//! to the gateway's overlay address, and WireGuard's cryptokey routing only
//! accepts an answer from that address if it was encrypted by the gateway
//! member's key, which came from the controller. If the interface is not
//! in this namespace the fetch fails instead of going out another way.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use proto::gateway::{CA_PATH, REVERSE_PORT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest answer accepted.
const MAX_RESPONSE: usize = 64 << 10;

/// The system's CA bundle, appended so that destinations the ASC passes
/// through untouched still verify.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Why the CA could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// No connection or no complete answer in time.
    #[error("gateway {0}: {1}")]
    Unreachable(SocketAddr, String),
    /// The answer is not `200` with PEM certificates.
    #[error("gateway {0} answered something that is not a CA certificate: {1}")]
    Invalid(SocketAddr, String),
    /// Writing the bundle failed.
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// Fetches the CA certificate(s) PEM from the gateway's ASC through the
/// enclave interface `interface` within `limit`.
///
/// # Errors
/// [`CaError`].
pub async fn fetch(gateway: Ipv4Addr, interface: &str, limit: Duration) -> Result<String, CaError> {
    let addr = SocketAddr::from((gateway, REVERSE_PORT));
    let raw = tokio::time::timeout(limit, get(addr, interface))
        .await
        .map_err(|_| CaError::Unreachable(addr, format!("no answer within {limit:?}")))?
        .map_err(|e| CaError::Unreachable(addr, e.to_string()))?;
    parse(&raw).map_err(|why| CaError::Invalid(addr, why))
}

async fn get(addr: SocketAddr, interface: &str) -> std::io::Result<Vec<u8>> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.bind_device(Some(interface.as_bytes()))?;
    sock.set_nonblocking(true)?;
    let mut s = tokio::net::TcpSocket::from_std_stream(sock.into())
        .connect(addr)
        .await?;
    let req = format!("GET {CA_PATH} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    (&mut s)
        .take(MAX_RESPONSE as u64 + 1)
        .read_to_end(&mut buf)
        .await?;
    Ok(buf)
}

/// The PEM body of an HTTP/1.1 `200` answer holding only certificates.
fn parse(raw: &[u8]) -> Result<String, String> {
    if raw.len() > MAX_RESPONSE {
        return Err(format!("more than {MAX_RESPONSE} bytes"));
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "headers are not text")?;
    let status = head.lines().next().unwrap_or_default();
    let code = status.split_whitespace().nth(1);
    if !status.starts_with("HTTP/1.") || code != Some("200") {
        return Err(format!("status line `{}`", status.escape_debug()));
    }
    let chunked = head.lines().any(|l| {
        l.to_ascii_lowercase().starts_with("transfer-encoding:")
            && l.to_ascii_lowercase().contains("chunked")
    });
    if chunked {
        return Err("chunked body (the ASC sends a length)".into());
    }
    let body = std::str::from_utf8(&raw[split + 4..]).map_err(|_| "body is not text")?;
    let mut certs = 0;
    for item in rustls_pemfile::read_all(&mut body.as_bytes()) {
        match item {
            Ok(rustls_pemfile::Item::X509Certificate(_)) => certs += 1,
            Ok(_) => return Err("PEM that is not a certificate".into()),
            Err(e) => return Err(format!("bad PEM: {e}")),
        }
    }
    if certs == 0 {
        return Err("no certificate".into());
    }
    Ok(body.to_owned())
}

/// Writes `ca_pem` followed by the system bundle to a new file `path`
/// (0644: the sandboxed user must read it; it holds only public
/// certificates). The file must not exist: callers pick an unguessable
/// name, so nobody can plant one first.
///
/// # Errors
/// [`CaError::Io`].
pub fn write_bundle(path: &Path, ca_pem: &str) -> Result<(), CaError> {
    let io = |e| CaError::Io(path.to_path_buf(), e);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .map_err(io)?;
    f.write_all(ca_pem.as_bytes()).map_err(io)?;
    if let Ok(system) = std::fs::read(SYSTEM_BUNDLE) {
        f.write_all(b"\n").map_err(io)?;
        f.write_all(&system).map_err(io)?;
    }
    f.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";

    fn answer(status: &str, headers: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status}\r\n{headers}content-length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    #[test]
    fn accepts_only_a_200_with_certificates() {
        assert_eq!(parse(&answer("200 OK", "", PEM)).as_deref(), Ok(PEM));
        for (raw, why) in [
            (answer("404 Not Found", "", PEM), "status"),
            (answer("200 OK", "", ""), "no certificate"),
            (answer("200 OK", "", "hello"), "no certificate"),
            (
                answer(
                    "200 OK",
                    "",
                    "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n",
                ),
                "not a certificate",
            ),
            (
                answer("200 OK", "transfer-encoding: chunked\r\n", PEM),
                "chunked",
            ),
            (b"HTTP/1.1 200 OK\r\n".to_vec(), "end of headers"),
            (vec![0xff; 10], "end of headers"),
            (vec![b'a'; MAX_RESPONSE + 1], "more than"),
        ] {
            let got = parse(&raw);
            assert!(
                got.as_ref().is_err_and(|e| e.contains(why)),
                "{why}: {got:?}"
            );
        }
    }

    #[test]
    fn the_bundle_is_readable_and_starts_with_the_enclave_ca() -> Result<(), CaError> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().map_err(|e| CaError::Io(PathBuf::new(), e))?;
        let p = dir.path().join("bundle.pem");
        write_bundle(&p, PEM)?;
        assert!(
            write_bundle(&p, PEM).is_err(),
            "an existing file is never reused"
        );
        let text = std::fs::read_to_string(&p).map_err(|e| CaError::Io(p.clone(), e))?;
        assert!(text.starts_with(PEM));
        assert_eq!(text.matches(PEM).count(), 1);
        let mode = std::fs::metadata(&p)
            .map_err(|e| CaError::Io(p.clone(), e))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        Ok(())
    }
}
