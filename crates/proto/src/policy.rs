//! The policy document envelope.
//!
//! The controller stores one policy document per enclave; the ASC interprets
//! it. Here only the envelope is checked: valid TOML, a table at the top,
//! known sections only (a misspelt `[tools]` must not silently disable tool
//! filtering), each section a table, and a `[credentials]` table that maps
//! providers to credential names.

use serde::{Deserialize, Serialize};

use crate::api::Provider;
use crate::Name;

/// Largest policy document accepted, in bytes.
pub const MAX_POLICY_BYTES: usize = 256 * 1024;

/// The top-level sections a policy document may have.
pub const SECTIONS: [&str; 7] = [
    "models",
    "tools",
    "dlp",
    "budget",
    "mcp",
    "egress",
    "credentials",
];

/// A policy document whose envelope is valid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyDocument {
    text: String,
    credentials: Vec<(Provider, Name)>,
}

/// Why a policy document is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Larger than [`MAX_POLICY_BYTES`].
    #[error("policy document is larger than {MAX_POLICY_BYTES} bytes")]
    TooLarge,
    /// Not TOML; the message has the parser's line and column.
    #[error("policy document is not valid TOML: {0}")]
    Syntax(String),
    /// A top-level key outside [`SECTIONS`].
    #[error("unknown policy section [{0}] (known: models, tools, dlp, budget, mcp, egress, credentials)")]
    UnknownSection(String),
    /// A known section that is not a table.
    #[error("policy section {0} must be a table")]
    NotATable(String),
    /// A `[credentials]` entry that is not `provider = "credential-name"`.
    #[error("credentials.{0} must map a provider (openai, anthropic, gemini, bedrock) to a credential name")]
    BadCredential(String),
}

impl PolicyDocument {
    /// Validates the envelope of `text`.
    ///
    /// # Errors
    /// A [`PolicyError`] naming the offending section or key.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge);
        }
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| PolicyError::Syntax(e.message().to_owned()))?;
        let mut credentials = Vec::new();
        for (key, value) in &table {
            if !SECTIONS.contains(&key.as_str()) {
                return Err(PolicyError::UnknownSection(key.clone()));
            }
            let section = value
                .as_table()
                .ok_or_else(|| PolicyError::NotATable(key.clone()))?;
            if key == "credentials" {
                for (provider, name) in section {
                    let bad = || PolicyError::BadCredential(provider.clone());
                    let p: Provider = provider.parse().map_err(|_| bad())?;
                    let n = name
                        .as_str()
                        .and_then(|s| Name::new(s).ok())
                        .ok_or_else(bad)?;
                    credentials.push((p, n));
                }
            }
        }
        Ok(Self {
            text: text.to_owned(),
            credentials,
        })
    }

    /// The document text as given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The credential names the document hands to the enclave's gateway.
    pub fn credentials(&self) -> &[(Provider, Name)] {
        &self.credentials
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_interface_example() {
        let doc = PolicyDocument::parse(
            r#"
[models]
allow = ["gpt-4o*", "claude-*"]
[tools]
deny = ["delete_*"]
[dlp]
packs = ["secrets", "pii"]
action = "block"
[budget]
tokens_per_agent = 200000
window = "24h"
[mcp.servers.time]
url = "http://127.0.0.1:9000/mcp"
allow = ["get_*"]
[credentials]
openai = "openai-prod"
"#,
        );
        let doc = doc.map_err(|e| e.to_string());
        assert_eq!(
            doc.as_ref().map(|d| d.credentials().len()),
            Ok(1),
            "{doc:?}"
        );
    }

    #[test]
    fn the_example_in_configs_is_valid() {
        let doc = PolicyDocument::parse(include_str!("../../../configs/policy.example.toml"));
        let names: Vec<String> = doc
            .map(|d| {
                d.credentials()
                    .iter()
                    .map(|(p, n)| format!("{p}={n}"))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(names, ["anthropic=anthropic-prod", "openai=openai-prod"]);
    }

    #[test]
    fn refuses_bad_envelopes() {
        assert!(matches!(
            PolicyDocument::parse("[models"),
            Err(PolicyError::Syntax(_))
        ));
        assert_eq!(
            PolicyDocument::parse("[tool]\ndeny=[]"),
            Err(PolicyError::UnknownSection("tool".into()))
        );
        assert_eq!(
            PolicyDocument::parse("models = 1"),
            Err(PolicyError::NotATable("models".into()))
        );
        assert_eq!(
            PolicyDocument::parse("[credentials]\nazure = \"x\""),
            Err(PolicyError::BadCredential("azure".into()))
        );
        assert_eq!(
            PolicyDocument::parse("[credentials]\nopenai = 3"),
            Err(PolicyError::BadCredential("openai".into()))
        );
        let big = format!("# {}", "x".repeat(MAX_POLICY_BYTES));
        assert_eq!(PolicyDocument::parse(&big), Err(PolicyError::TooLarge));
    }
}
