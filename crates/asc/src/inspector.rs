//! The DLP engine a policy asks for, built once per policy version.

use std::sync::Arc;

use dlp::rules::{self, Rule, RuleError};
use dlp::{Engine, Finding};

use crate::policy::DlpPolicy;

/// A compiled DLP engine.
#[derive(Clone)]
pub struct Inspector {
    engine: Arc<Engine>,
}

fn literal_rules(literals: &[String]) -> Result<Vec<Rule>, RuleError> {
    if literals.is_empty() {
        return Ok(vec![]);
    }
    let mut rule = toml::Table::new();
    rule.insert("id".into(), "custom-literal".into());
    rule.insert(
        "description".into(),
        "a term the policy names as sensitive".into(),
    );
    rule.insert("severity".into(), "high".into());
    rule.insert("kind".into(), "literal".into());
    rule.insert("ignore_case".into(), true.into());
    rule.insert(
        "patterns".into(),
        toml::Value::Array(literals.iter().map(|l| l.trim().into()).collect()),
    );
    let mut file = toml::Table::new();
    file.insert("rule".into(), toml::Value::Array(vec![rule.into()]));
    rules::parse(&file.to_string(), "policy dlp.literals")
}

fn fingerprint_rule(i: usize, dir: &std::path::Path) -> Result<Vec<Rule>, RuleError> {
    let mut rule = toml::Table::new();
    rule.insert("id".into(), format!("protected-document-{i}").into());
    rule.insert("severity".into(), "critical".into());
    rule.insert("kind".into(), "fingerprint".into());
    rule.insert("dir".into(), dir.to_string_lossy().as_ref().into());
    let mut file = toml::Table::new();
    file.insert("rule".into(), toml::Value::Array(vec![rule.into()]));
    rules::parse(&file.to_string(), "policy dlp.fingerprint_dirs")
}

impl Inspector {
    /// Compiles the packs, literals, rule files and fingerprint
    /// directories of `policy`.
    ///
    /// # Errors
    /// A [`RuleError`] when a file cannot be read or a rule is refused.
    pub fn new(policy: &DlpPolicy) -> Result<Self, RuleError> {
        let mut all = vec![];
        for pack in &policy.packs {
            let text = match pack.as_str() {
                "secrets" => rules::SECRETS,
                _ => rules::PII,
            };
            all.extend(rules::parse(text, pack)?);
        }
        all.extend(literal_rules(&policy.literals)?);
        for f in &policy.rules_files {
            let origin = f.display().to_string();
            let text = std::fs::read_to_string(f).map_err(|e| RuleError::Io(origin.clone(), e))?;
            all.extend(rules::parse(&text, &origin)?);
        }
        for (i, dir) in policy.fingerprint_dirs.iter().enumerate() {
            all.extend(fingerprint_rule(i, dir)?);
        }
        Ok(Self {
            engine: Arc::new(Engine::new(&all)?),
        })
    }

    /// Findings for every part, scanned together (rayon batch).
    pub fn scan_parts(&self, parts: &[&[u8]]) -> Vec<Vec<Finding>> {
        if parts.iter().all(|p| p.is_empty()) {
            return vec![vec![]; parts.len()];
        }
        self.engine.scan_batch(parts)
    }

    /// Findings in one text.
    pub fn scan(&self, text: &[u8]) -> Vec<Finding> {
        self.engine.scan(text)
    }

    /// The engine, for streaming scanners.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    #[test]
    fn literals_and_packs() {
        let p = Policy::parse(
            "[dlp]\npacks = [\"secrets\"]\naction = \"block\"\nliterals = [\"NIGHTJAR\"]\n",
        )
        .expect("policy");
        let i = Inspector::new(&p.dlp).expect("engine");
        let f = i.scan(b"the nightjar tape-out is friday");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, "custom-literal");
        let f = i.scan(b"key AKIAIOSFODNN7EXAMPLF here");
        assert!(f.iter().any(|f| f.rule.starts_with("aws")), "{f:?}");
        assert!(i.scan(b"nothing to see").is_empty());
    }
}
