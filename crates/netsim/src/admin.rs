//! The controller's admin API, as netsim uses it.

use anyhow::{bail, Context, Result};
use control_client::{Client, Method, StatusCode};
use proto::api::{
    Chamber, CreateEnclave, CreateToken, Enclave, Member, Provider, PutCredential, PutPolicy,
    TokenCreated, Topology,
};
use proto::{Name, Role};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// An admin session with one controller.
pub struct Admin {
    client: Client,
}

impl Admin {
    /// Talks to `url`, trusting `ca_pem`, with the admin token.
    ///
    /// # Errors
    /// On a bad URL or CA.
    pub fn new(url: &str, ca_pem: &[u8], token: String) -> Result<Self> {
        Ok(Self {
            client: Client::new(url, ca_pem, Some(token))?,
        })
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        want: StatusCode,
    ) -> Result<T> {
        let body = body.map(serde_json::to_vec).transpose()?;
        let (status, bytes) = self
            .client
            .send(method.clone(), path, body)
            .await
            .with_context(|| format!("{method} {path}"))?;
        if status != want {
            bail!(
                "{method} {path}: {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        if bytes.is_empty() {
            return Ok(serde_json::from_slice(b"null")?);
        }
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// Stores a provider key in the controller's vault.
    ///
    /// # Errors
    /// On any API error.
    pub async fn put_credential(&self, name: &str, provider: Provider, secret: &str) -> Result<()> {
        let _: serde_json::Value = self
            .call(
                Method::PUT,
                &format!("/api/v1/credentials/{name}"),
                Some(&PutCredential {
                    provider,
                    secret: secret.to_owned(),
                }),
                StatusCode::OK,
            )
            .await?;
        Ok(())
    }

    /// Sets an enclave's policy document.
    ///
    /// # Errors
    /// On any API error.
    pub async fn set_policy(&self, enclave: &Name, content: &str) -> Result<()> {
        let _: serde_json::Value = self
            .call(
                Method::PUT,
                &format!("/api/v1/enclaves/{enclave}/policy"),
                Some(&PutPolicy {
                    content: content.to_owned(),
                }),
                StatusCode::OK,
            )
            .await?;
        Ok(())
    }

    /// Creates an enclave.
    ///
    /// # Errors
    /// On any API error.
    pub async fn create_enclave(&self, req: &CreateEnclave) -> Result<Enclave> {
        self.call(
            Method::POST,
            "/api/v1/enclaves",
            Some(req),
            StatusCode::CREATED,
        )
        .await
    }

    /// Every enclave.
    ///
    /// # Errors
    /// On any API error.
    pub async fn enclaves(&self) -> Result<Vec<Enclave>> {
        self.call::<(), _>(Method::GET, "/api/v1/enclaves", None, StatusCode::OK)
            .await
    }

    /// The raw answer to `GET path`: status and body, whatever they are
    /// (for the secrets scan of API responses).
    ///
    /// # Errors
    /// When no answer came.
    pub async fn get_raw(&self, path: &str) -> Result<(StatusCode, String)> {
        let (status, bytes) = self
            .client
            .send(Method::GET, path, None)
            .await
            .with_context(|| format!("GET {path}"))?;
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Creates a chamber.
    ///
    /// # Errors
    /// On any API error.
    pub async fn create_chamber(&self, enclave: &Name, c: &Chamber) -> Result<()> {
        let _: serde_json::Value = self
            .call(
                Method::POST,
                &format!("/api/v1/enclaves/{enclave}/chambers"),
                Some(c),
                StatusCode::CREATED,
            )
            .await?;
        Ok(())
    }

    /// Issues a join token for one member named `name` (`ttl` seconds).
    ///
    /// # Errors
    /// On any API error.
    pub async fn token(&self, enclave: &Name, role: Role, name: &Name, ttl: u64) -> Result<String> {
        let req = CreateToken {
            role,
            ttl_seconds: Some(ttl),
            uses: Some(1),
            member_name: Some(name.clone()),
            member_ttl_seconds: None,
        };
        let t: TokenCreated = self
            .call(
                Method::POST,
                &format!("/api/v1/enclaves/{enclave}/tokens"),
                Some(&req),
                StatusCode::CREATED,
            )
            .await?;
        Ok(t.token)
    }

    /// Who can reach whom in an enclave, as the controller computes it.
    ///
    /// # Errors
    /// On any API error.
    pub async fn topology(&self, enclave: &Name) -> Result<Topology> {
        self.call::<(), _>(
            Method::GET,
            &format!("/api/v1/enclaves/{enclave}/topology"),
            None,
            StatusCode::OK,
        )
        .await
    }

    /// The members of an enclave.
    ///
    /// # Errors
    /// On any API error.
    pub async fn members(&self, enclave: &Name) -> Result<Vec<Member>> {
        self.call::<(), _>(
            Method::GET,
            &format!("/api/v1/enclaves/{enclave}/members"),
            None,
            StatusCode::OK,
        )
        .await
    }

    /// The public key of one member.
    ///
    /// # Errors
    /// On any API error, or when there is no such member.
    pub async fn public_key(&self, enclave: &Name, member: &Name) -> Result<proto::PublicKey> {
        self.members(enclave)
            .await?
            .into_iter()
            .find(|m| &m.name == member)
            .map(|m| m.public_key)
            .with_context(|| format!("no member {member} in {enclave}"))
    }

    /// Removes (decommissions) a member.
    ///
    /// # Errors
    /// On any API error.
    pub async fn remove_member(&self, enclave: &Name, member: &Name) -> Result<()> {
        let (status, bytes) = self
            .client
            .send(
                Method::DELETE,
                &format!("/api/v1/enclaves/{enclave}/members/{member}"),
                None,
            )
            .await?;
        if !status.is_success() {
            bail!(
                "removing {member}: {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(())
    }
}
