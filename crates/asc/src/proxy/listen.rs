//! Accept loops: a connection limit, HTTP/1.1 and HTTP/2, optional TLS,
//! and a graceful stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::body::Body;

/// How long a client may take to send its request headers (slowloris).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections get to finish after shutdown.
pub const GRACE: Duration = Duration::from_secs(5);

/// Serves `service` on `listener` until `shutdown`, over TLS when `tls` is
/// set.
pub async fn serve<S, F>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    max_connections: usize,
    shutdown: CancellationToken,
    service: S,
) where
    S: Fn(SocketAddr, Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let limit = Arc::new(Semaphore::new(max_connections));
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let mut conns = JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(peer = %peer, "connection limit reached; closing");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let svc = service.clone();
        let acceptor = acceptor.clone();
        let stop = shutdown.clone();
        conns.spawn(async move {
            let _permit = permit;
            let hsvc = hyper::service::service_fn(move |req| {
                let f = svc(peer, req);
                async move { Ok::<_, std::convert::Infallible>(f.await) }
            });
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            match acceptor {
                Some(acc) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(HEADER_TIMEOUT, acc.accept(tcp)).await
                    else {
                        return;
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), hsvc);
                    drive(conn, stop).await;
                }
                None => {
                    let conn = builder.serve_connection(TokioIo::new(tcp), hsvc);
                    drive(conn, stop).await;
                }
            }
        });
        while conns.try_join_next().is_some() {}
    }
    let drain = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(GRACE, drain).await.is_err() {
        conns.abort_all();
    }
}

async fn drive<C>(conn: C, stop: CancellationToken)
where
    C: Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>>,
{
    tokio::pin!(conn);
    tokio::select! {
        r = &mut conn => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        () = stop.cancelled() => {
            // Let the exchange in flight finish within the grace period.
            let _ = tokio::time::timeout(GRACE, conn).await;
        }
    }
}
