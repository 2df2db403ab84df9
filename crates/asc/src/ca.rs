//! The per-enclave interception CA: agents trust it (its certificate goes
//! into their sandbox), and the forward proxy presents a leaf made for
//! each provider host on first use, then cached.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why the CA cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// Reading or writing its files failed (or the key is readable by
    /// others).
    #[error("interception CA: {0}")]
    Io(#[from] std::io::Error),
    /// Generating or parsing a certificate failed.
    #[error("interception CA certificate: {0}")]
    Cert(#[from] rcgen::Error),
    /// rustls refused a key.
    #[error("interception CA key: {0}")]
    Tls(#[from] rustls::Error),
}

/// The CA and its leaf cache.
pub struct InterceptionCa {
    /// The CA certificate (PEM) agents must trust.
    pub ca_pem: String,
    ca_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
    leaves: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl std::fmt::Debug for InterceptionCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InterceptionCa")
    }
}

fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Cordon");
    dn.push(DnType::CommonName, "Cordon enclave gateway CA");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.not_before = rcgen::date_time_ymd(2025, 1, 1);
    p.not_after = rcgen::date_time_ymd(2045, 1, 1);
    p
}

impl InterceptionCa {
    /// Loads the CA from `dir` (`ca.pem`, `ca.key` 0600), creating it on
    /// first use.
    ///
    /// # Errors
    /// [`CaError`].
    pub fn load_or_create(dir: &Path) -> Result<Self, CaError> {
        std::fs::create_dir_all(dir)?;
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        let key = if key_path.exists() {
            let mode = std::fs::metadata(&key_path)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(CaError::Io(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{} is readable by others; chmod 600 it", key_path.display()),
                )));
            }
            KeyPair::from_pem(&std::fs::read_to_string(&key_path)?)?
        } else {
            let key = KeyPair::generate()?;
            let cert = ca_params().self_signed(&key)?;
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&key_path)?;
            f.write_all(key.serialize_pem().as_bytes())?;
            std::fs::write(&cert_path, cert.pem())?;
            key
        };
        let ca_pem = std::fs::read_to_string(&cert_path)?;
        let ca_der = rustls_pemfile::certs(&mut ca_pem.as_bytes())
            .next()
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "ca.pem holds no certificate",
                )
            })??;
        Ok(Self {
            ca_pem,
            ca_der,
            issuer: Issuer::new(ca_params(), key),
            leaves: Mutex::new(HashMap::new()),
        })
    }

    /// The leaf for `name` (DNS name or IP), made on first use.
    ///
    /// # Errors
    /// [`CaError`] when the certificate cannot be made.
    pub fn leaf(&self, name: &str) -> Result<Arc<CertifiedKey>, CaError> {
        let name = name.to_ascii_lowercase();
        if let Some(k) = self
            .leaves
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&name)
        {
            return Ok(k.clone());
        }
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::default();
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(DnType::CommonName, name.clone());
        p.subject_alt_names = vec![match name.parse::<std::net::IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(name.clone().try_into()?),
        }];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.not_before = rcgen::date_time_ymd(2025, 1, 1);
        p.not_after = rcgen::date_time_ymd(2045, 1, 1);
        let cert = p.signed_by(&key, &self.issuer)?;
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let signing = rustls::crypto::ring::sign::any_supported_type(&der)?;
        let ck = Arc::new(CertifiedKey::new(
            vec![cert.der().clone(), self.ca_der.clone()],
            signing,
        ));
        self.leaves
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name, ck.clone());
        Ok(ck)
    }

    /// A TLS server configuration presenting a leaf for whatever SNI the
    /// client sends (or `default_name` without SNI), ALPN h2 and http/1.1.
    ///
    /// # Errors
    /// [`CaError::Tls`].
    pub fn server_config(
        self: &Arc<Self>,
        default_name: &str,
    ) -> Result<Arc<rustls::ServerConfig>, CaError> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver {
            ca: self.clone(),
            default_name: default_name.to_owned(),
        }));
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

#[derive(Debug)]
struct Resolver {
    ca: Arc<InterceptionCa>,
    default_name: String,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name().unwrap_or(&self.default_name);
        match self.ca.leaf(name) {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::warn!(error = %e, "cannot make a leaf certificate");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_leaves_cached() {
        let dir = tempfile::tempdir().expect("dir");
        let a = InterceptionCa::load_or_create(dir.path()).expect("ca");
        let b = InterceptionCa::load_or_create(dir.path()).expect("ca again");
        assert_eq!(a.ca_pem, b.ca_pem);
        let l1 = a.leaf("api.openai.com").expect("leaf");
        let l2 = a.leaf("API.openai.com").expect("leaf");
        assert!(Arc::ptr_eq(&l1, &l2));
        a.leaf("127.0.0.1").expect("ip leaf");
        let mode = std::fs::metadata(dir.path().join("ca.key"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
