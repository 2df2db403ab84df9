//! `netsim agent`: the helper netsim runs inside each host namespace and
//! each sandbox. It offers services on overlay addresses and runs probes,
//! driven by JSON lines on stdin (answers on stdout, in completion order).
//! It exits when stdin closes, so it never outlives its run.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, UdpSocket};
use tokio::sync::Mutex;

use crate::topology::{Proto, Service};

/// What a service answers, so a probe knows it reached netsim's service
/// and not something else.
pub const BANNER: &[u8] = b"cordon-netsim\n";

/// One request to the agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// Echoed in the answer.
    pub id: u64,
    /// What to do.
    pub op: Op,
}

/// The operations.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Offer `services` on `addr`.
    Listen {
        /// Overlay address to bind.
        addr: Ipv4Addr,
        /// Services to offer.
        services: Vec<Service>,
    },
    /// Try to reach `dst` on `service`.
    Probe {
        /// Destination address.
        dst: Ipv4Addr,
        /// Service.
        service: Service,
        /// Interface to bind to (`SO_BINDTODEVICE`), for hosts with several.
        device: Option<String>,
        /// Source address to bind.
        src: Option<Ipv4Addr>,
        /// How long to wait.
        timeout_ms: u64,
    },
    /// Send one UDP datagram (bytes as hex) to `dst` and report whether
    /// anything came back within the timeout.
    RawUdp {
        /// Destination.
        dst: SocketAddrV4,
        /// Payload, hex.
        payload: String,
        /// How long to wait for an answer.
        timeout_ms: u64,
    },
    /// Try to open a raw IP socket (a sandbox must not be able to).
    RawSocket,
    /// How many datagrams the UDP service on `addr` has received (the
    /// answer's detail is the count).
    Hits {
        /// The service's address.
        addr: SocketAddrV4,
    },
    /// Offer a checksumming TCP sink on `addr:port` (see [`crate::transfer`]).
    Sink {
        /// Address to bind.
        addr: Ipv4Addr,
        /// Port.
        port: u16,
    },
    /// Send `bytes` seeded bytes to the sink at `dst:port`; succeeds only
    /// when the sink's count and SHA-256 match.
    Transfer {
        /// The sink's address.
        dst: Ipv4Addr,
        /// Its port.
        port: u16,
        /// How many bytes.
        bytes: u64,
        /// Seed of the bytes.
        seed: u64,
        /// How long it may take.
        timeout_ms: u64,
    },
}

/// Datagrams received per UDP service.
type Hits = Arc<std::sync::Mutex<HashMap<SocketAddrV4, u64>>>;

/// The answer to one request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Answer {
    /// The request's id.
    pub id: u64,
    /// Whether it succeeded (for probes: whether the service answered).
    pub ok: bool,
    /// What happened, for humans.
    pub detail: String,
}

/// Runs the agent on stdin/stdout until stdin closes.
///
/// # Errors
/// Only when stdin or stdout fail.
pub async fn serve() -> std::io::Result<()> {
    let out = Arc::new(Mutex::new(tokio::io::stdout()));
    let hits = Hits::default();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let out = out.clone();
        let hits = hits.clone();
        tokio::spawn(async move {
            let answer = match serde_json::from_str::<Request>(&line) {
                Ok(req) => {
                    let (ok, detail) = handle(req.op, hits).await;
                    Answer {
                        id: req.id,
                        ok,
                        detail,
                    }
                }
                Err(e) => Answer {
                    id: 0,
                    ok: false,
                    detail: format!("bad request: {e}"),
                },
            };
            if let Ok(mut text) = serde_json::to_string(&answer) {
                text.push('\n');
                let mut o = out.lock().await;
                let _ = o.write_all(text.as_bytes()).await;
                let _ = o.flush().await;
            }
        });
    }
    Ok(())
}

async fn handle(op: Op, hits: Hits) -> (bool, String) {
    let res = match op {
        Op::Listen { addr, services } => listen(addr, &services, hits).await,
        Op::Hits { addr } => Ok(hits
            .lock()
            .map(|h| h.get(&addr).copied().unwrap_or(0))
            .unwrap_or(0)
            .to_string()),
        Op::Probe {
            dst,
            service,
            device,
            src,
            timeout_ms,
        } => {
            let t = Duration::from_millis(timeout_ms);
            match tokio::time::timeout(t, probe(dst, service, device.as_deref(), src)).await {
                Ok(r) => r,
                Err(_) => Err("timed out".into()),
            }
        }
        Op::RawUdp {
            dst,
            payload,
            timeout_ms,
        } => raw_udp(dst, &payload, Duration::from_millis(timeout_ms)).await,
        Op::Sink { addr, port } => crate::transfer::sink(addr, port).await,
        Op::Transfer {
            dst,
            port,
            bytes,
            seed,
            timeout_ms,
        } => {
            let t = Duration::from_millis(timeout_ms);
            match tokio::time::timeout(t, crate::transfer::transfer(dst, port, bytes, seed)).await {
                Ok(r) => r,
                Err(_) => Err(format!("not done within {t:?}")),
            }
        }
        Op::RawSocket => match Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)) {
            Ok(_) => Ok("opened a raw socket".into()),
            Err(e) => Err(format!("refused: {e}")),
        },
    };
    match res {
        Ok(d) => (true, d),
        Err(d) => (false, d),
    }
}

async fn listen(addr: Ipv4Addr, services: &[Service], hits: Hits) -> Result<String, String> {
    for s in services {
        match s.proto {
            Proto::Tcp => {
                let l = TcpListener::bind((addr, s.port))
                    .await
                    .map_err(|e| format!("bind {addr}:{}: {e}", s.port))?;
                tokio::spawn(async move {
                    while let Ok((mut c, _)) = l.accept().await {
                        tokio::spawn(async move {
                            let _ = c.write_all(BANNER).await;
                            let _ = c.shutdown().await;
                        });
                    }
                });
            }
            Proto::Udp => {
                let u = UdpSocket::bind((addr, s.port))
                    .await
                    .map_err(|e| format!("bind {addr}:{}/udp: {e}", s.port))?;
                let key = SocketAddrV4::new(addr, s.port);
                let hits = hits.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 1500];
                    while let Ok((_, from)) = u.recv_from(&mut buf).await {
                        if let Ok(mut h) = hits.lock() {
                            *h.entry(key).or_default() += 1;
                        }
                        let _ = u.send_to(BANNER, from).await;
                    }
                });
            }
            Proto::Icmp => {}
        }
    }
    Ok(format!("listening on {addr}"))
}

fn bound_socket(
    ty: Type,
    proto: Protocol,
    device: Option<&str>,
    src: Option<Ipv4Addr>,
) -> Result<Socket, String> {
    let s = Socket::new(Domain::IPV4, ty, Some(proto)).map_err(|e| format!("socket: {e}"))?;
    if let Some(d) = device {
        s.bind_device(Some(d.as_bytes()))
            .map_err(|e| format!("bind to {d}: {e}"))?;
    }
    if let Some(a) = src {
        s.bind(&SocketAddr::from((a, 0)).into())
            .map_err(|e| format!("bind {a}: {e}"))?;
    }
    s.set_nonblocking(true).map_err(|e| e.to_string())?;
    Ok(s)
}

async fn probe(
    dst: Ipv4Addr,
    service: Service,
    device: Option<&str>,
    src: Option<Ipv4Addr>,
) -> Result<String, String> {
    match service.proto {
        Proto::Tcp => {
            let s = bound_socket(Type::STREAM, Protocol::TCP, device, src)?;
            let sock = TcpSocket::from_std_stream(std::net::TcpStream::from(s));
            let mut c = sock
                .connect(SocketAddr::from((dst, service.port)))
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let mut got = Vec::new();
            c.read_to_end(&mut got)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if got == BANNER {
                Ok("connected".into())
            } else {
                Err(format!("connected, but got {} unexpected bytes", got.len()))
            }
        }
        Proto::Udp => {
            let s = bound_socket(Type::DGRAM, Protocol::UDP, device, src)?;
            let u = UdpSocket::from_std(s.into()).map_err(|e| e.to_string())?;
            u.connect((dst, service.port))
                .await
                .map_err(|e| format!("connect: {e}"))?;
            udp_exchange(&u, b"probe").await
        }
        Proto::Icmp => {
            let s = bound_socket(Type::DGRAM, Protocol::ICMPV4, device, src)?;
            let u = UdpSocket::from_std(s.into()).map_err(|e| e.to_string())?;
            u.connect((dst, 0))
                .await
                .map_err(|e| format!("connect: {e}"))?;
            // Echo request; the kernel sets the identifier and checksum.
            let req = [8u8, 0, 0, 0, 0, 0, 0, 1, b'c', b'n'];
            loop {
                u.send(&req).await.map_err(|e| format!("send: {e}"))?;
                let mut buf = [0u8; 1500];
                match tokio::time::timeout(Duration::from_millis(400), u.recv(&mut buf)).await {
                    Ok(Ok(n)) if n >= 8 && buf[0] == 0 => return Ok("echo reply".into()),
                    Ok(Ok(_)) => return Err("unexpected ICMP answer".into()),
                    Ok(Err(e)) => return Err(format!("recv: {e}")),
                    Err(_) => continue, // resend until the outer timeout
                }
            }
        }
    }
}

/// Sends `msg` every 400 ms until something comes back (the outer timeout
/// bounds it): the first datagram may wait for a WireGuard handshake.
async fn udp_exchange(u: &UdpSocket, msg: &[u8]) -> Result<String, String> {
    let mut buf = [0u8; 1500];
    loop {
        u.send(msg).await.map_err(|e| format!("send: {e}"))?;
        match tokio::time::timeout(Duration::from_millis(400), u.recv(&mut buf)).await {
            Ok(Ok(n)) if &buf[..n] == BANNER => return Ok("answered".into()),
            Ok(Ok(n)) => return Err(format!("got {n} unexpected bytes")),
            Ok(Err(e)) => return Err(format!("recv: {e}")),
            Err(_) => continue,
        }
    }
}

async fn raw_udp(dst: SocketAddrV4, payload: &str, t: Duration) -> Result<String, String> {
    let bytes = hex::decode(payload).map_err(|e| format!("bad hex: {e}"))?;
    let u = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))
        .await
        .map_err(|e| e.to_string())?;
    u.send_to(&bytes, dst)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = [0u8; 2048];
    match tokio::time::timeout(t, u.recv_from(&mut buf)).await {
        Ok(Ok((n, from))) => Ok(format!("{n} bytes came back from {from}")),
        Ok(Err(e)) => Err(format!("recv: {e}")),
        Err(_) => Err("no answer".into()),
    }
}
