//! The environment a sandboxed command starts with: nothing of the
//! operator's (whose shell may hold real API keys), the enclave's identity,
//! and, when the enclave has a gateway, the settings that point the common
//! SDKs at its ASC with the member's substitute key, so an unmodified agent
//! works without knowing Cordon exists.

use std::net::Ipv4Addr;
use std::path::Path;

use proto::gateway::{FORWARD_PORT, REVERSE_PORT};
use proto::{Netmap, Role};

use crate::state::Membership;

/// Variables taken from the operator's environment when set; nothing else
/// is inherited.
const INHERITED: &[&str] = &["PATH", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ"];

/// The `PATH` when the operator has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Variables that carry an API key: they hold the substitute key (or
/// nothing) and `--env` cannot set them.
pub const KEY_VARIABLES: &[&str] = &[
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// Variables naming the CA bundle that trusts the enclave's interception CA.
const CA_VARIABLES: &[&str] = &[
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "AWS_CA_BUNDLE",
];

/// The overlay address of the enclave's gateway in `netmap`, if it has one.
pub fn gateway(netmap: &Netmap) -> Option<Ipv4Addr> {
    netmap
        .peers
        .iter()
        .find(|p| p.role == Role::Gateway)
        .and_then(|p| p.allowed_ips.first())
        .map(|n| n.addr())
}

/// Why an `--env` entry is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// Not `NAME` or `NAME=VALUE` with a valid name.
    #[error("--env {0}: expected NAME or NAME=VALUE")]
    Malformed(String),
    /// A variable the sandbox controls.
    #[error("--env {0}: the sandbox sets this variable itself")]
    Reserved(String),
}

/// Everything the sandboxed command's environment is built from.
#[derive(Debug, Clone, Default)]
pub struct AgentEnv<'a> {
    /// The membership.
    pub membership: Option<&'a Membership>,
    /// The gateway's overlay address.
    pub gateway: Option<Ipv4Addr>,
    /// The member's substitute key (agents).
    pub substitute_key: Option<&'a str>,
    /// A CA bundle trusting the enclave's interception CA.
    pub ca_bundle: Option<&'a Path>,
    /// `--env` entries, checked by [`check_extra`].
    pub extra: &'a [(String, String)],
}

/// Parses `--env NAME[=VALUE]` entries; a bare `NAME` takes the operator's
/// value. Credential-like, proxy, endpoint, CA and Cordon variables are
/// refused (see `is_reserved`).
///
/// # Errors
/// [`EnvError`] for the first bad entry.
pub fn check_extra(entries: &[String]) -> Result<Vec<(String, String)>, EnvError> {
    let mut out = Vec::new();
    for e in entries {
        let (name, value) = match e.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (e.as_str(), None),
        };
        let valid = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !name.as_bytes()[0].is_ascii_digit();
        if !valid {
            return Err(EnvError::Malformed(e.clone()));
        }
        if is_reserved(name) {
            return Err(EnvError::Reserved(name.to_owned()));
        }
        let value = value
            .or_else(|| std::env::var(name).ok())
            .unwrap_or_default();
        out.push((name.to_owned(), value));
    }
    Ok(out)
}

/// Whether `--env` may not set `name`: anything that looks like a
/// credential (`*API_KEY*`, `*TOKEN*`, `*SECRET*`, `*PASSWORD*`,
/// `*CREDENTIAL*`, `*AUTH*`), says where to send requests (`*_PROXY`,
/// `*_BASE_URL`, `*_API_BASE`, `*ENDPOINT*`) or whom to trust (`SSL_*`,
/// `*CA_BUNDLE*`, `*CA_CERT*`), and Cordon's own variables.
fn is_reserved(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    const PARTS: &[&str] = &[
        "API_KEY",
        "APIKEY",
        "TOKEN",
        "SECRET",
        "PASSWORD",
        "CREDENTIAL",
        "AUTH",
        "ENDPOINT",
        "CA_BUNDLE",
        "CA_CERT",
        "CERT_FILE",
        "CERT_DIR",
    ];
    KEY_VARIABLES.contains(&upper.as_str())
        || CA_VARIABLES.contains(&upper.as_str())
        || PARTS.iter().any(|p| upper.contains(p))
        || upper.ends_with("_PROXY")
        || upper.ends_with("_BASE_URL")
        || upper.ends_with("_API_BASE")
        || upper.starts_with("SSL_")
        || upper.starts_with("CORDON_")
}

impl AgentEnv<'_> {
    /// The variables, taking the inherited ones from this process.
    pub fn vars(&self) -> Vec<(String, String)> {
        self.vars_with(|k| std::env::var(k).ok())
    }

    /// The variables, looking the operator's up with `operator`; no name
    /// appears twice.
    pub fn vars_with(&self, operator: impl Fn(&str) -> Option<String>) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = Vec::new();
        // A later setting replaces an earlier one: `--env PATH=…` wins over
        // the inherited `PATH`, the gateway's settings over everything.
        let mut set = |k: &str, val: String| match v.iter_mut().find(|(n, _)| n == k) {
            Some(slot) => slot.1 = val,
            None => v.push((k.to_owned(), val)),
        };
        for k in INHERITED {
            if let Some(val) = operator(k) {
                set(k, val);
            }
        }
        if operator("PATH").is_none() {
            set("PATH", DEFAULT_PATH.to_owned());
        }
        set("HOME", "/nonexistent".to_owned());
        if let Some(m) = self.membership {
            set("CORDON_ENCLAVE", m.enclave.to_string());
            set("CORDON_MEMBER", m.member.to_string());
        }
        for (k, val) in self.extra {
            set(k, val.clone());
        }
        if let Some(g) = self.gateway {
            let reverse = format!("http://{g}:{REVERSE_PORT}");
            set("CORDON_GATEWAY", g.to_string());
            set("OPENAI_BASE_URL", format!("{reverse}/openai/v1"));
            set("ANTHROPIC_BASE_URL", format!("{reverse}/anthropic"));
            set("GOOGLE_GEMINI_BASE_URL", format!("{reverse}/gemini"));
            set(
                "AWS_ENDPOINT_URL_BEDROCK_RUNTIME",
                format!("{reverse}/bedrock"),
            );
            let forward = format!("http://{g}:{FORWARD_PORT}");
            for k in ["HTTPS_PROXY", "https_proxy"] {
                set(k, forward.clone());
            }
            for k in ["NO_PROXY", "no_proxy"] {
                set(k, format!("{g},localhost,127.0.0.1"));
            }
        }
        if let Some(key) = self.substitute_key {
            for k in KEY_VARIABLES {
                if *k != "AWS_SESSION_TOKEN" {
                    set(k, key.to_owned());
                }
            }
        }
        if let Some(ca) = self.ca_bundle {
            for k in CA_VARIABLES {
                set(k, ca.display().to_string());
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_of_the_operator_leaks_and_the_sdks_point_at_the_gateway() {
        let extra = vec![
            ("MY_SETTING".to_owned(), "1".to_owned()),
            ("PATH".to_owned(), "/sandbox/bin".to_owned()),
        ];
        let operator = |k: &str| match k {
            "PATH" => Some("/opt/bin".to_owned()),
            "OPENAI_API_KEY" | "ANTHROPIC_API_KEY" | "SECRET_TOKEN" => Some("sk-REAL".to_owned()),
            _ => None,
        };
        let env = AgentEnv {
            membership: None,
            gateway: Some(Ipv4Addr::new(100, 64, 0, 1)),
            substitute_key: Some("sub-abc"),
            ca_bundle: Some(Path::new("/tmp/bundle.pem")),
            extra: &extra,
        }
        .vars_with(operator);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(
            get("OPENAI_BASE_URL"),
            Some("http://100.64.0.1:8080/openai/v1")
        );
        assert_eq!(
            get("ANTHROPIC_BASE_URL"),
            Some("http://100.64.0.1:8080/anthropic")
        );
        assert_eq!(get("HTTPS_PROXY"), Some("http://100.64.0.1:3128"));
        assert_eq!(get("OPENAI_API_KEY"), Some("sub-abc"));
        assert_eq!(get("AWS_ACCESS_KEY_ID"), Some("sub-abc"));
        assert_eq!(get("SSL_CERT_FILE"), Some("/tmp/bundle.pem"));
        assert_eq!(get("MY_SETTING"), Some("1"));
        assert_eq!(get("PATH"), Some("/sandbox/bin"), "--env overrides");
        assert_eq!(get("HOME"), Some("/nonexistent"));
        assert_eq!(get("SECRET_TOKEN"), None, "not inherited");
        assert!(
            env.iter().all(|(_, v)| v != "sk-REAL"),
            "the operator's real key never reaches the sandbox: {env:?}"
        );
        let mut names: Vec<&str> = env.iter().map(|(n, _)| n.as_str()).collect();
        let all = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all, "no name twice: {names:?}");
    }

    #[test]
    fn without_a_gateway_no_key_and_no_proxy() {
        let env = AgentEnv::default().vars_with(|_| None);
        assert!(env.iter().any(|(n, v)| n == "PATH" && v == DEFAULT_PATH));
        assert!(env.iter().all(|(n, _)| !KEY_VARIABLES.contains(&n.as_str())
            && !n.ends_with("_PROXY")
            && !n.ends_with("_BASE_URL")));
    }

    #[test]
    fn extra_variables_cannot_override_keys_proxies_or_ca() {
        for bad in [
            "OPENAI_API_KEY=sk-real",
            "openai_api_key",
            "HTTPS_PROXY=http://evil",
            "http_proxy",
            "ANTHROPIC_BASE_URL=http://x",
            "SSL_CERT_FILE=/x",
            "AWS_ENDPOINT_URL_S3=http://x",
            "CORDON_GATEWAY=1.2.3.4",
            "ANTHROPIC_AUTH_TOKEN",
            "AWS_BEARER_TOKEN_BEDROCK",
            "AZURE_OPENAI_API_KEY",
            "MISTRAL_API_KEY",
            "HF_TOKEN",
            "GITHUB_TOKEN",
            "DB_PASSWORD=x",
            "SSL_CERT_DIR=/x",
            "OPENAI_API_BASE=http://x",
            "AWS_ENDPOINT_URL=http://x",
            "GOOGLE_APPLICATION_CREDENTIALS=/x",
        ] {
            assert!(
                matches!(check_extra(&[bad.to_owned()]), Err(EnvError::Reserved(_))),
                "{bad}"
            );
        }
        for bad in ["", "=x", "1ABC=x", "A-B=x", "A B"] {
            assert!(
                matches!(check_extra(&[bad.to_owned()]), Err(EnvError::Malformed(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            check_extra(&["A=b=c".to_owned()]),
            Ok(vec![("A".to_owned(), "b=c".to_owned())])
        );
    }
}
