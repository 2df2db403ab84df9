//! A TCP front (what HAProxy or a cloud load balancer does in front of
//! controller replicas): it listens on one address and splices each
//! connection to the first backend that accepts it, in order. When the
//! first replica dies, new connections go to the next one. netsim also uses
//! it to let replicas in a namespace reach the host's PostgreSQL on
//! loopback.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How long one backend may take to accept before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The running front; dropping it stops accepting (spliced connections
/// end when either side closes).
pub struct Front {
    /// Where it listens.
    pub addr: SocketAddr,
    served: Arc<Vec<AtomicU64>>,
    task: JoinHandle<()>,
}

impl Front {
    /// Listens on `bind` (port 0: any) in front of `backends`.
    ///
    /// # Errors
    /// When it cannot bind.
    pub async fn start(bind: SocketAddr, backends: Vec<SocketAddr>) -> Result<Self> {
        let l = TcpListener::bind(bind)
            .await
            .with_context(|| format!("front on {bind}"))?;
        let addr = l.local_addr()?;
        let served: Arc<Vec<AtomicU64>> =
            Arc::new(backends.iter().map(|_| AtomicU64::new(0)).collect());
        let backends = Arc::new(backends);
        let counts = served.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = l.accept().await {
                let (backends, counts) = (backends.clone(), counts.clone());
                tokio::spawn(async move {
                    splice(client, &backends, &counts).await;
                });
            }
        });
        Ok(Self { addr, served, task })
    }

    /// Connections each backend took so far, in backend order.
    pub fn served(&self) -> Vec<u64> {
        self.served
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn splice(mut client: TcpStream, backends: &[SocketAddr], counts: &[AtomicU64]) {
    for (b, count) in backends.iter().zip(counts) {
        if let Ok(Ok(mut up)) = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(b)).await {
            count.fetch_add(1, Ordering::Relaxed);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
            return;
        }
    }
    // No backend: the client sees the connection closed.
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn echo_once(tag: &'static [u8]) -> Result<SocketAddr> {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        tokio::spawn(async move {
            while let Ok((mut c, _)) = l.accept().await {
                let _ = c.write_all(tag).await;
            }
        });
        Ok(addr)
    }

    async fn read_via(front: SocketAddr) -> Result<Vec<u8>> {
        let mut c = TcpStream::connect(front).await?;
        let mut got = vec![0u8; 1];
        let n = c.read(&mut got).await?;
        got.truncate(n);
        Ok(got)
    }

    #[tokio::test]
    async fn goes_to_the_first_backend_that_accepts() -> Result<()> {
        // A port nobody listens on, then two live backends.
        let dead = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
        let a = echo_once(b"a").await?;
        let b = echo_once(b"b").await?;
        let front = Front::start("127.0.0.1:0".parse()?, vec![dead, a, b]).await?;
        assert_eq!(read_via(front.addr).await?, b"a");
        assert_eq!(front.served(), vec![0, 1, 0]);

        // With every backend gone the client is closed on, not hung.
        let none = Front::start("127.0.0.1:0".parse()?, vec![dead]).await?;
        let got = tokio::time::timeout(Duration::from_secs(5), read_via(none.addr)).await??;
        assert!(got.is_empty());
        Ok(())
    }
}
