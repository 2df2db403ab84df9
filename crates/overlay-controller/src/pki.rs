//! The controller's certificate authority and its HTTPS server certificate.
//!
//! The CA is created once per data dir (`ca.pem`, `ca.key` 0600); its SHA-256
//! fingerprint goes into every join token so nodes pin it. The server leaf is
//! issued afresh at every start for the names the controller is reached by.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::secret::{read_private, write_private};

/// Why the PKI could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// Reading or writing `ca.pem` / `ca.key` failed.
    #[error("CA file: {0}")]
    Io(#[from] std::io::Error),
    /// Key or certificate generation failed, or a stored one is corrupt.
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    /// `ca.pem` holds no certificate.
    #[error("ca.pem holds no certificate")]
    NoCertificate,
    /// rustls refused the generated key pair.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// The loaded CA and a ready server TLS configuration.
pub struct Pki {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// Lower-case hex SHA-256 of the CA certificate (DER).
    pub ca_sha256: String,
    /// Server TLS configuration presenting `[leaf, ca]`.
    pub server_config: Arc<rustls::ServerConfig>,
}

fn ca_params() -> CertificateParams {
    // The DN is fixed: a leaf names its issuer by DN, and the signature (not
    // the name) is what ties it to this CA's key.
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Cordon");
    dn.push(DnType::CommonName, "Cordon controller CA");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2045, 1, 1);
    p
}

fn pem_to_der(pem: &str) -> Result<CertificateDer<'static>, PkiError> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .next()
        .ok_or(PkiError::NoCertificate)?
        .map_err(PkiError::Io)
}

impl Pki {
    /// Loads the CA from `dir`, creating it on first start, and issues a
    /// server certificate for `names` (DNS names or IP addresses).
    ///
    /// # Errors
    /// A [`PkiError`] if the files cannot be read or written or are corrupt.
    pub fn load_or_create(dir: &Path, names: &[String]) -> Result<Self, PkiError> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        let (ca_pem, ca_key) = if cert_path.exists() {
            let key_pem = String::from_utf8_lossy(&read_private(&key_path)?).into_owned();
            (
                std::fs::read_to_string(&cert_path)?,
                KeyPair::from_pem(&key_pem)?,
            )
        } else {
            let key = KeyPair::generate()?;
            let cert = ca_params().self_signed(&key)?;
            write_private(&key_path, key.serialize_pem().as_bytes())?;
            std::fs::write(&cert_path, cert.pem())?;
            (cert.pem(), key)
        };
        let ca_der = pem_to_der(&ca_pem)?;
        let issuer = Issuer::new(ca_params(), ca_key);

        let leaf_key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "Cordon controller");
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => n.clone().try_into().map(SanType::DnsName),
            })
            .collect::<Result<_, _>>()?;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(2045, 1, 1);
        let leaf = params.signed_by(&leaf_key, &issuer)?;

        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca_der.clone()], key_der)?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            ca_sha256: control_client::fingerprint(&ca_der),
            ca_pem,
            server_config: Arc::new(cfg),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_is_created_once_and_reloaded() -> Result<(), PkiError> {
        let dir = tempfile::tempdir()?;
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let a = Pki::load_or_create(dir.path(), &names)?;
        let b = Pki::load_or_create(dir.path(), &names)?;
        assert_eq!(a.ca_sha256, b.ca_sha256);
        assert_eq!(a.ca_sha256.len(), 64);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("ca.key"))?
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        Ok(())
    }
}
