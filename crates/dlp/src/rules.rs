//! Rules in TOML: what to look for and how to confirm it. The format is
//! documented in `crates/dlp/RULES.md`; the built-in packs are in
//! `crates/dlp/packs/`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Personal data and the like.
    Medium,
    /// Credentials.
    High,
    /// Keys that open production systems.
    Critical,
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

/// What kind of matcher a rule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Exact strings (`patterns`), e.g. project code names.
    Literal,
    /// A regular expression (`pattern`), confirmed around its keywords.
    Regex,
    /// Excerpts of the protected documents under `dir`.
    Fingerprint,
}

/// A check run on a regex match (or its `secret` group) after matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Validator {
    /// The Luhn checksum of payment card numbers.
    Luhn,
    /// The ISO 13616 mod-97 check of IBANs.
    Iban,
    /// US SSN area/group/serial rules.
    Ssn,
    /// Shannon entropy of at least `min_entropy` bits per character.
    Entropy,
}

/// One rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable identifier, e.g. `aws-access-key-id`.
    pub id: String,
    /// What it finds, for humans.
    #[serde(default)]
    pub description: String,
    /// Severity of a finding.
    pub severity: Severity,
    /// Matcher kind.
    pub kind: Kind,
    /// The regex (kind `regex`). A group named `secret` narrows what the
    /// validators and the reported span cover.
    pub pattern: Option<String>,
    /// The strings (kind `literal`).
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Literals of which at least one occurs in or near every match; the
    /// regex only runs around them. Without keywords the rule joins the
    /// no-keyword group, which must be gated by `gate`.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// For rules without keywords: which byte class every match needs
    /// `min_gate` of (only `digits` exists).
    pub gate: Option<Gate>,
    /// How many digits a match needs at least (digits joined by at most
    /// two of ` -.()+/` form one cluster).
    #[serde(default)]
    pub min_gate: usize,
    /// How many `.` between those digits a match needs at least.
    #[serde(default)]
    pub min_dots: usize,
    /// How far before and after a keyword a match may extend (bytes).
    #[serde(default = "default_window")]
    pub window: usize,
    /// Case-insensitive literals and keywords (matched as written, in lower
    /// case, in upper case and capitalised).
    #[serde(default)]
    pub ignore_case: bool,
    /// Keywords count only at the start of a word (`token` in `api_token`
    /// and `max_tokens` does not count).
    #[serde(default)]
    pub word_keywords: bool,
    /// Post-match check.
    pub validator: Option<Validator>,
    /// For the entropy validator.
    #[serde(default)]
    pub min_entropy: f64,
    /// Matches equal to one of these (or containing one) are not findings.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Words that, near a match, raise its confidence.
    #[serde(default)]
    pub context: Vec<String>,
    /// Kind `fingerprint`: the directory of protected files.
    pub dir: Option<PathBuf>,
    /// Kind `fingerprint`: the guarantee length in tokens (default 40).
    pub guarantee_tokens: Option<usize>,
}

fn default_window() -> usize {
    256
}

/// A byte class a no-keyword rule is gated on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Gate {
    /// ASCII digits.
    Digits,
}

/// A rule file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// The rules.
    #[serde(rename = "rule", default)]
    pub rules: Vec<Rule>,
}

/// Why rules are refused.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// Not TOML or not the format.
    #[error("{0}: {1}")]
    Parse(String, String),
    /// A rule is inconsistent or dangerous; the message explains.
    #[error("rule {0}: {1}")]
    Invalid(String, String),
    /// A file could not be read.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

/// The built-in `secrets` pack.
pub const SECRETS: &str = include_str!("../packs/secrets.toml");
/// The built-in `pii` pack.
pub const PII: &str = include_str!("../packs/pii.toml");

/// Parses a rule file's text (`origin` names it in errors).
///
/// # Errors
/// [`RuleError::Parse`].
pub fn parse(text: &str, origin: &str) -> Result<Vec<Rule>, RuleError> {
    toml::from_str::<RuleFile>(text)
        .map(|f| f.rules)
        .map_err(|e| RuleError::Parse(origin.to_owned(), e.to_string()))
}

/// The built-in packs, parsed.
///
/// # Errors
/// Never for the shipped packs (a test checks them).
pub fn builtin() -> Result<Vec<Rule>, RuleError> {
    let mut r = parse(SECRETS, "packs/secrets.toml")?;
    r.extend(parse(PII, "packs/pii.toml")?);
    Ok(r)
}
