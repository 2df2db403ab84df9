//! The enclave's ASC policy: which models, which tools, what DLP, what
//! budgets. The same TOML document the controller stores per enclave
//! (`docs/POLICY.md`). Anything missing denies: no `[models]` allows no
//! model, a broken document refuses to load, so a mistake fails closed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::duration;
use crate::glob::{any_match, Glob};

/// What DLP does with a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DlpAction {
    /// Refuse the whole exchange.
    Block,
    /// Replace the finding with `[REDACTED:rule]` and forward the rest.
    /// Findings inside encoded content (base64, hex…) and findings in
    /// streamed responses still block: rewriting them cannot be done
    /// without breaking what encloses them.
    Redact,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModels {
    #[serde(default)]
    allow: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTools {
    #[serde(default)]
    allow: Option<Vec<String>>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    approve: Vec<String>,
    #[serde(default)]
    approval_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDlp {
    #[serde(default)]
    packs: Vec<String>,
    action: Option<DlpAction>,
    #[serde(default)]
    literals: Vec<String>,
    #[serde(default)]
    fingerprint_dirs: Vec<PathBuf>,
    #[serde(default)]
    rules_files: Vec<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    tokens_per_agent: Option<u64>,
    tokens_per_enclave: Option<u64>,
    window: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEgress {
    #[serde(default)]
    passthrough: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMcp {
    #[serde(default)]
    servers: BTreeMap<String, RawMcpServer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMcpServer {
    url: Option<String>,
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
    #[serde(default)]
    approve: Vec<String>,
    prompts: Option<RawNames>,
    resources: Option<RawNames>,
}

/// Allow and deny patterns over MCP prompt names or resource URIs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNames {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    models: RawModels,
    #[serde(default)]
    tools: RawTools,
    dlp: Option<RawDlp>,
    #[serde(default)]
    budget: RawBudget,
    #[serde(default)]
    mcp: RawMcp,
    #[serde(default)]
    egress: RawEgress,
    // Read by the controller; the ASC gets the keys through its config.
    #[allow(dead_code)]
    credentials: Option<toml::Table>,
}

/// Allow, deny and approve patterns over names: LLM tools and MCP tools,
/// and (allow and deny only) MCP prompt names and resource URIs.
#[derive(Debug, Clone, Default)]
pub struct ToolRules {
    /// When set, only these tools may be offered and called.
    pub allow: Option<Vec<Glob>>,
    /// Removed from requests; calls to them are blocked.
    pub deny: Vec<Glob>,
    /// Calls held until a human approves.
    pub approve: Vec<Glob>,
}

/// What a tool rule says about one tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolVerdict {
    /// Offered and callable.
    Allowed,
    /// Hidden from the model; a call is refused.
    Hidden,
    /// Offered; a call waits for approval.
    NeedsApproval,
}

impl ToolRules {
    /// The verdict for `name`: deny wins over allow; a name outside a set
    /// allow-list is hidden.
    pub fn verdict(&self, name: &str) -> ToolVerdict {
        if any_match(&self.deny, name) {
            return ToolVerdict::Hidden;
        }
        if let Some(allow) = &self.allow {
            if !any_match(allow, name) && !any_match(&self.approve, name) {
                return ToolVerdict::Hidden;
            }
        }
        if any_match(&self.approve, name) {
            return ToolVerdict::NeedsApproval;
        }
        ToolVerdict::Allowed
    }
}

/// DLP settings.
#[derive(Debug, Clone)]
pub struct DlpPolicy {
    /// Built-in packs (`secrets`, `pii`).
    pub packs: Vec<String>,
    /// Block or redact.
    pub action: DlpAction,
    /// Custom sensitive terms (code names), matched case-insensitively.
    pub literals: Vec<String>,
    /// Directories of protected documents.
    pub fingerprint_dirs: Vec<PathBuf>,
    /// Extra rule files in the `dlp` crate's format.
    pub rules_files: Vec<PathBuf>,
}

/// Token budgets over a sliding window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Per agent.
    pub per_agent: Option<u64>,
    /// For the whole enclave.
    pub per_enclave: Option<u64>,
    /// The window.
    pub window: Duration,
}

/// One MCP server's rules.
#[derive(Debug, Clone)]
pub struct McpServer {
    /// Streamable HTTP upstream (absent for stdio servers).
    pub url: Option<String>,
    /// Tool rules (an empty allow-list allows no tool).
    pub tools: ToolRules,
    /// Prompt names that may be listed and fetched (absent: none).
    pub prompts: ToolRules,
    /// Resource URIs (and URI templates) that may be listed and read
    /// (absent: none).
    pub resources: ToolRules,
}

/// A validated policy.
#[derive(Debug, Clone)]
pub struct Policy {
    /// First 16 hex digits of the SHA-256 of the document: approvals are
    /// bound to it.
    pub version: String,
    /// Models that may be called.
    pub models: Vec<Glob>,
    /// LLM tool rules.
    pub tools: ToolRules,
    /// How long an approval may wait before it is denied.
    pub approval_timeout: Duration,
    /// DLP (absent: only the built-in packs, blocking).
    pub dlp: DlpPolicy,
    /// Token budgets.
    pub budget: Option<Budget>,
    /// Hosts the forward proxy tunnels without interception.
    pub passthrough: Vec<Glob>,
    /// MCP servers by name.
    pub mcp: BTreeMap<String, McpServer>,
}

/// Why a policy is refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The envelope (sections, size, TOML syntax) is wrong.
    #[error("{0}")]
    Envelope(#[from] proto::policy::PolicyError),
    /// A section has an unknown key or a wrong type.
    #[error("policy: {0}")]
    Shape(String),
    /// A value is out of range (all problems, one per line).
    #[error("policy:\n{0}")]
    Invalid(String),
}

fn globs(v: &[String]) -> Vec<Glob> {
    v.iter().map(|s| Glob::new(s)).collect()
}

fn tool_rules(allow: Option<&[String]>, deny: &[String], approve: &[String]) -> ToolRules {
    ToolRules {
        allow: allow.map(globs),
        deny: globs(deny),
        approve: globs(approve),
    }
}

/// Rules for MCP prompts or resources: absent means none is allowed.
fn name_rules(raw: Option<RawNames>) -> ToolRules {
    let raw = raw.unwrap_or_default();
    tool_rules(Some(&raw.allow), &raw.deny, &[])
}

impl Policy {
    /// Parses and validates a policy document.
    ///
    /// # Errors
    /// A [`PolicyError`] listing every problem found.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        proto::PolicyDocument::parse(text)?;
        let raw: RawPolicy = toml::from_str(text).map_err(|e| PolicyError::Shape(e.to_string()))?;
        let mut problems = vec![];
        let approval_timeout = match raw.tools.approval_timeout.as_deref() {
            None => Duration::from_secs(300),
            Some(t) => duration::parse(t).unwrap_or_else(|e| {
                problems.push(format!("tools.approval_timeout: {e}"));
                Duration::ZERO
            }),
        };
        let dlp = match raw.dlp {
            None => DlpPolicy {
                packs: vec!["secrets".into(), "pii".into()],
                action: DlpAction::Block,
                literals: vec![],
                fingerprint_dirs: vec![],
                rules_files: vec![],
            },
            Some(d) => {
                for p in &d.packs {
                    if p != "secrets" && p != "pii" {
                        problems.push(format!("dlp.packs: unknown pack `{p}` (secrets, pii)"));
                    }
                }
                if d.action.is_none() {
                    problems.push("dlp.action: required (block or redact)".into());
                }
                if d.literals.iter().any(|l| l.trim().len() < 3) {
                    problems.push("dlp.literals: each literal needs at least 3 characters".into());
                }
                DlpPolicy {
                    packs: d.packs,
                    action: d.action.unwrap_or(DlpAction::Block),
                    literals: d.literals,
                    fingerprint_dirs: d.fingerprint_dirs,
                    rules_files: d.rules_files,
                }
            }
        };
        let budget = match (raw.budget.tokens_per_agent, raw.budget.tokens_per_enclave) {
            (None, None) => None,
            (per_agent, per_enclave) => {
                let window = match raw.budget.window.as_deref() {
                    None => {
                        problems.push("budget.window: required with a budget".into());
                        Duration::ZERO
                    }
                    Some(w) => duration::parse(w).unwrap_or_else(|e| {
                        problems.push(format!("budget.window: {e}"));
                        Duration::ZERO
                    }),
                };
                Some(Budget {
                    per_agent,
                    per_enclave,
                    window,
                })
            }
        };
        let mut mcp = BTreeMap::new();
        for (name, s) in raw.mcp.servers {
            if let Some(u) = &s.url {
                if !(u.starts_with("http://") || u.starts_with("https://")) {
                    problems.push(format!(
                        "mcp.servers.{name}.url: must be http:// or https://"
                    ));
                }
            }
            mcp.insert(
                name,
                McpServer {
                    url: s.url,
                    tools: tool_rules(Some(&s.allow), &s.deny, &s.approve),
                    prompts: name_rules(s.prompts),
                    resources: name_rules(s.resources),
                },
            );
        }
        if !problems.is_empty() {
            return Err(PolicyError::Invalid(problems.join("\n")));
        }
        let digest = Sha256::digest(text.as_bytes());
        Ok(Self {
            version: hex::encode(&digest[..8]),
            models: globs(&raw.models.allow),
            tools: tool_rules(
                raw.tools.allow.as_deref(),
                &raw.tools.deny,
                &raw.tools.approve,
            ),
            approval_timeout,
            dlp,
            budget,
            passthrough: globs(&raw.egress.passthrough),
            mcp,
        })
    }

    /// Makes relative DLP paths relative to `base` (the policy file's
    /// directory).
    pub fn resolve_paths(&mut self, base: &std::path::Path) {
        for p in self
            .dlp
            .fingerprint_dirs
            .iter_mut()
            .chain(self.dlp.rules_files.iter_mut())
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// Whether `model` is on the allow-list.
    pub fn model_allowed(&self, model: &str) -> bool {
        any_match(&self.models, model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_sections_fail_closed() {
        let p = Policy::parse("").expect("empty document parses");
        assert!(!p.model_allowed("gpt-4o"));
        assert_eq!(p.dlp.action, DlpAction::Block);
        assert_eq!(p.dlp.packs, ["secrets", "pii"]);
        let p = Policy::parse("[models]\nallow = []\n").expect("parses");
        assert!(!p.model_allowed("gpt-4o"));
    }

    #[test]
    fn tool_verdicts() {
        let p = Policy::parse(
            "[tools]\ndeny = [\"delete_*\"]\napprove = [\"deploy_*\"]\nallow = [\"get_*\", \"delete_x\"]\n",
        )
        .expect("parses");
        assert_eq!(p.tools.verdict("get_weather"), ToolVerdict::Allowed);
        assert_eq!(p.tools.verdict("delete_x"), ToolVerdict::Hidden);
        assert_eq!(p.tools.verdict("deploy_prod"), ToolVerdict::NeedsApproval);
        assert_eq!(p.tools.verdict("write_file"), ToolVerdict::Hidden);
        let open = Policy::parse("[tools]\ndeny = [\"rm\"]\n").expect("parses");
        assert_eq!(open.tools.verdict("anything"), ToolVerdict::Allowed);
    }

    #[test]
    fn every_problem_reported() {
        let e = Policy::parse(
            "[dlp]\npacks = [\"nope\"]\nliterals = [\"x\"]\n[budget]\ntokens_per_agent = 5\n",
        )
        .expect_err("invalid");
        let msg = e.to_string();
        assert!(msg.contains("unknown pack"), "{msg}");
        assert!(msg.contains("dlp.action"), "{msg}");
        assert!(msg.contains("3 characters"), "{msg}");
        assert!(msg.contains("budget.window"), "{msg}");
    }

    #[test]
    fn misspelt_keys_and_sections_refused() {
        assert!(Policy::parse("[tool]\ndeny = [\"x\"]\n").is_err());
        assert!(Policy::parse("[tools]\ndenny = [\"x\"]\n").is_err());
        assert!(Policy::parse("[models]\nallow = \"gpt\"\n").is_err());
    }
}
