//! The outbound HTTPS client (pooled, HTTP/1.1 and HTTP/2 by ALPN) that
//! trusts the system's CAs and any `ca_file` the configuration names.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The client type.
pub type Upstream = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The system's CA bundle (Debian).
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

fn add_pem(roots: &mut rustls::RootCertStore, path: &Path) -> std::io::Result<usize> {
    let pem = std::fs::read(path)?;
    let mut n = 0;
    for c in rustls_pemfile::certs(&mut pem.as_slice()) {
        if roots.add(c?).is_ok() {
            n += 1;
        }
    }
    Ok(n)
}

/// Builds the client.
///
/// # Errors
/// When a named CA file cannot be read or holds no certificate.
pub fn client(ca_files: &[&Path]) -> std::io::Result<Upstream> {
    let mut roots = rustls::RootCertStore::empty();
    // The system bundle is optional (a test machine may lack it); named
    // files are not.
    let _ = add_pem(&mut roots, Path::new(SYSTEM_BUNDLE));
    for f in ca_files {
        if add_pem(&mut roots, f)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} holds no certificate", f.display()),
            ));
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(std::io::Error::other)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_all_versions()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(std::time::Duration::from_secs(60))
        .build(https))
}
