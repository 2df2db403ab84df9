//! The LLM providers the ASC speaks. A closed set here (each needs an
//! adapter), mapped from the controller's open [`crate::provider::Provider`].

/// A provider with an adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Provider {
    /// OpenAI.
    Openai,
    /// Anthropic.
    Anthropic,
    /// Google Gemini.
    Gemini,
    /// AWS Bedrock.
    Bedrock,
}

impl Provider {
    /// Every provider.
    pub const ALL: [Provider; 4] = [
        Provider::Openai,
        Provider::Anthropic,
        Provider::Gemini,
        Provider::Bedrock,
    ];

    /// The lower-case name (also the reverse-proxy path prefix).
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Openai => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Gemini => "gemini",
            Provider::Bedrock => "bedrock",
        }
    }
}

impl std::str::FromStr for Provider {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or(())
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
