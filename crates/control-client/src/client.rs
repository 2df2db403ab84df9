//! Requests over TLS to the controller, trusting a CA file or a pinned CA.
//! Connections are kept alive and reused (a node's long-poll loop costs one
//! TLS handshake, not one per netmap), up to [`MAX_IDLE`] idle ones for at
//! most [`IDLE_FOR`] each.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use rustls::RootCertStore;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::pin::PinnedCa;

/// Idle connections kept per client (clones share them).
pub const MAX_IDLE: usize = 4;
/// How long an idle connection is reused; the controller closes connections
/// that send nothing for 10 s.
pub const IDLE_FOR: Duration = Duration::from_secs(5);

/// An idle connection and when it became idle.
type Idle = (SendRequest<Full<Bytes>>, Instant);

/// Why a request failed before an HTTP status came back.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not `https://host[:port]`.
    #[error("controller URL must look like https://host:port")]
    Url,
    /// The CA file holds no usable certificate.
    #[error("CA file holds no usable certificate")]
    Ca,
    /// TCP connect failed.
    #[error("cannot connect to the controller at {0}: {1}")]
    Connect(String, std::io::Error),
    /// TLS failed (wrong CA, wrong name).
    #[error("TLS with the controller failed (wrong CA or name?): {0}")]
    Tls(std::io::Error),
    /// HTTP failed.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built.
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
}

/// Which controller certificate to trust.
#[derive(Debug, Clone)]
pub enum Trust {
    /// The CA certificate(s) in this PEM.
    CaPem(Vec<u8>),
    /// Only the CA with this SHA-256 fingerprint (lower-case hex), as a join
    /// token carries it.
    Pinned(String),
}

/// An API client.
#[derive(Clone)]
pub struct Client {
    host: String,
    port: u16,
    connector: TlsConnector,
    token: Option<String>,
    idle: Arc<Mutex<Vec<Idle>>>,
}

impl Client {
    /// A client for `url` trusting only the CA in `ca_pem`.
    ///
    /// # Errors
    /// [`ClientError::Url`] or [`ClientError::Ca`].
    pub fn new(url: &str, ca_pem: &[u8], token: Option<String>) -> Result<Self, ClientError> {
        Self::with_trust(url, Trust::CaPem(ca_pem.to_vec()), token)
    }

    /// A client for `url` with the given trust.
    ///
    /// # Errors
    /// [`ClientError::Url`] or [`ClientError::Ca`].
    pub fn with_trust(url: &str, trust: Trust, token: Option<String>) -> Result<Self, ClientError> {
        let uri: Uri = url.parse().map_err(|_| ClientError::Url)?;
        if uri.scheme_str() != Some("https") {
            return Err(ClientError::Url);
        }
        let host = uri
            .host()
            .ok_or(ClientError::Url)?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|_| ClientError::Ca)?;
        let cfg = match trust {
            Trust::CaPem(pem) => {
                let mut roots = RootCertStore::empty();
                for cert in rustls_pemfile::certs(&mut &pem[..]) {
                    roots
                        .add(cert.map_err(|_| ClientError::Ca)?)
                        .map_err(|_| ClientError::Ca)?;
                }
                if roots.is_empty() {
                    return Err(ClientError::Ca);
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Trust::Pinned(pin) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedCa::new(&pin, provider)))
                .with_no_client_auth(),
        };
        Ok(Self {
            host,
            port,
            connector: TlsConnector::from(Arc::new(cfg)),
            token,
            idle: Arc::default(),
        })
    }

    /// Sends one request; returns status and body.
    ///
    /// # Errors
    /// [`ClientError`] when no HTTP response came back.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let addr = format!("{}:{}", self.host, self.port);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", &addr);
        if let Some(t) = &self.token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let mut req = req.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        // An idle connection first; one the server closed meanwhile gives
        // the request back unsent, and the next is tried.
        while let Some(mut sender) = self.take_idle() {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(resp) => return self.finish(sender, resp).await,
                Err(mut e) => match e.take_message() {
                    Some(unsent) => req = unsent,
                    None => return Err(ClientError::Http(e.into_error())),
                },
            }
        }
        let mut sender = self.connect(&addr).await?;
        let resp = sender.send_request(req).await?;
        self.finish(sender, resp).await
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().ok()?;
        while let Some((s, since)) = idle.pop() {
            if !s.is_closed() && since.elapsed() < IDLE_FOR {
                return Some(s);
            }
        }
        None
    }

    /// Reads the whole body, then keeps the connection for the next request.
    async fn finish(
        &self,
        sender: SendRequest<Full<Bytes>>,
        resp: hyper::Response<hyper::body::Incoming>,
    ) -> Result<(StatusCode, Bytes), ClientError> {
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !sender.is_closed() {
            if let Ok(mut idle) = self.idle.lock() {
                if idle.len() < MAX_IDLE {
                    idle.push((sender, Instant::now()));
                }
            }
        }
        Ok((status, bytes))
    }

    async fn connect(&self, addr: &str) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let addr_for_connect = if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            addr.to_owned()
        };
        let tcp = TcpStream::connect(&addr_for_connect)
            .await
            .map_err(|e| ClientError::Connect(addr.to_owned(), e))?;
        let name = ServerName::try_from(self.host.clone()).map_err(|_| ClientError::Url)?;
        let tls = self
            .connector
            .connect(name, tcp)
            .await
            .map_err(ClientError::Tls)?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        // The connection ends when the server closes it or every sender for
        // it is dropped.
        tokio::spawn(conn);
        Ok(sender)
    }
}
