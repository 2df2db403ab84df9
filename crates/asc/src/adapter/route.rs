//! Which provider operation a request path names.

use crate::provider::Provider;

use super::Dialect;

/// A supported API operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// OpenAI `POST /v1/chat/completions`.
    OpenAiChat,
    /// OpenAI `POST /v1/responses`.
    OpenAiResponses,
    /// Anthropic `POST /v1/messages`.
    AnthropicMessages,
    /// Gemini `models/M:generateContent`.
    GeminiGenerate,
    /// Gemini `models/M:streamGenerateContent`.
    GeminiStream,
    /// Bedrock `model/M/converse`.
    BedrockConverse,
    /// Bedrock `model/M/converse-stream`.
    BedrockConverseStream,
    /// Bedrock `model/M/invoke` (model-native body).
    BedrockInvoke,
    /// Bedrock `model/M/invoke-with-response-stream`.
    BedrockInvokeStream,
}

impl Operation {
    /// The body's JSON dialect.
    pub fn dialect(self) -> Dialect {
        match self {
            Operation::OpenAiChat => Dialect::OpenAiChat,
            Operation::OpenAiResponses => Dialect::OpenAiResponses,
            Operation::AnthropicMessages
            | Operation::BedrockInvoke
            | Operation::BedrockInvokeStream => Dialect::Anthropic,
            Operation::GeminiGenerate | Operation::GeminiStream => Dialect::Gemini,
            Operation::BedrockConverse | Operation::BedrockConverseStream => {
                Dialect::BedrockConverse
            }
        }
    }

    /// Whether the path alone makes the response a stream.
    pub fn path_streams(self) -> bool {
        matches!(
            self,
            Operation::GeminiStream
                | Operation::BedrockConverseStream
                | Operation::BedrockInvokeStream
        )
    }

    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::OpenAiChat => "chat.completions",
            Operation::OpenAiResponses => "responses",
            Operation::AnthropicMessages => "messages",
            Operation::GeminiGenerate => "generateContent",
            Operation::GeminiStream => "streamGenerateContent",
            Operation::BedrockConverse => "converse",
            Operation::BedrockConverseStream => "converse-stream",
            Operation::BedrockInvoke => "invoke",
            Operation::BedrockInvokeStream => "invoke-with-response-stream",
        }
    }
}

/// A request's provider, operation and upstream path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The provider.
    pub provider: Provider,
    /// The operation.
    pub operation: Operation,
    /// The model when the path names it (Gemini, Bedrock).
    pub model: Option<String>,
    /// Path and query to send upstream (after the base URL's path).
    pub upstream_path: String,
}

/// Why a path is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The first segment is not a provider.
    #[error(
        "unknown provider path; use /openai/, /anthropic/, /gemini/, /bedrock/ or /mcp/<server>"
    )]
    UnknownProvider,
    /// The provider is known but the ASC does not inspect this operation,
    /// so it does not forward it.
    #[error("{0} {1} is not an operation the gateway inspects")]
    Unsupported(&'static str, String),
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

impl Route {
    /// Routes a reverse-proxy path (`/openai/v1/chat/completions?…`).
    ///
    /// # Errors
    /// A [`RouteError`] for an unknown provider or an operation that is
    /// not inspected.
    pub fn reverse(path_and_query: &str) -> Result<Self, RouteError> {
        let rest = path_and_query.strip_prefix('/').unwrap_or(path_and_query);
        let (first, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let provider = match first {
            "openai" => Provider::Openai,
            "anthropic" => Provider::Anthropic,
            "gemini" => Provider::Gemini,
            "bedrock" => Provider::Bedrock,
            _ => return Err(RouteError::UnknownProvider),
        };
        Self::forward(provider, &format!("/{tail}"))
    }

    /// Routes a path as the provider's own host sees it.
    ///
    /// # Errors
    /// [`RouteError::Unsupported`].
    pub fn forward(provider: Provider, path_and_query: &str) -> Result<Self, RouteError> {
        let path = path_and_query.split('?').next().unwrap_or("");
        let unsupported = || RouteError::Unsupported(provider.as_str(), path.to_owned());
        let (operation, model) = match provider {
            Provider::Openai => {
                let p = path.strip_prefix("/v1").unwrap_or(path);
                match p {
                    "/chat/completions" => (Operation::OpenAiChat, None),
                    "/responses" => (Operation::OpenAiResponses, None),
                    _ => return Err(unsupported()),
                }
            }
            Provider::Anthropic => match path {
                "/v1/messages" => (Operation::AnthropicMessages, None),
                _ => return Err(unsupported()),
            },
            Provider::Gemini => {
                let rest = path
                    .strip_prefix("/v1beta/models/")
                    .or_else(|| path.strip_prefix("/v1/models/"))
                    .or_else(|| path.strip_prefix("/v1alpha/models/"))
                    .ok_or_else(unsupported)?;
                let (model, method) = rest.rsplit_once(':').ok_or_else(unsupported)?;
                let op = match method {
                    "generateContent" => Operation::GeminiGenerate,
                    "streamGenerateContent" => Operation::GeminiStream,
                    _ => return Err(unsupported()),
                };
                if model.is_empty() || model.contains('/') {
                    return Err(unsupported());
                }
                (op, Some(percent_decode(model)))
            }
            Provider::Bedrock => {
                let rest = path.strip_prefix("/model/").ok_or_else(unsupported)?;
                let (model, method) = rest.rsplit_once('/').ok_or_else(unsupported)?;
                let op = match method {
                    "converse" => Operation::BedrockConverse,
                    "converse-stream" => Operation::BedrockConverseStream,
                    "invoke" => Operation::BedrockInvoke,
                    "invoke-with-response-stream" => Operation::BedrockInvokeStream,
                    _ => return Err(unsupported()),
                };
                if model.is_empty() || model.contains('/') {
                    return Err(unsupported());
                }
                (op, Some(percent_decode(model)))
            }
        };
        Ok(Route {
            provider,
            operation,
            model,
            upstream_path: path_and_query.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_paths() {
        let r = Route::reverse("/openai/v1/chat/completions").expect("route");
        assert_eq!(
            (r.provider, r.operation),
            (Provider::Openai, Operation::OpenAiChat)
        );
        assert_eq!(r.upstream_path, "/v1/chat/completions");
        let r =
            Route::reverse("/gemini/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse")
                .expect("route");
        assert_eq!(r.operation, Operation::GeminiStream);
        assert_eq!(r.model.as_deref(), Some("gemini-2.0-flash"));
        assert_eq!(
            r.upstream_path,
            "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
        );
        let r = Route::reverse(
            "/bedrock/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse-stream",
        )
        .expect("route");
        assert_eq!(r.operation, Operation::BedrockConverseStream);
        assert_eq!(
            r.model.as_deref(),
            Some("anthropic.claude-3-haiku-20240307-v1:0")
        );
        assert_eq!(
            Route::reverse("/nope/v1/x"),
            Err(RouteError::UnknownProvider)
        );
        assert!(matches!(
            Route::reverse("/openai/v1/embeddings"),
            Err(RouteError::Unsupported(..))
        ));
        assert!(matches!(
            Route::reverse("/bedrock/model/a/b/converse"),
            Err(RouteError::Unsupported(..))
        ));
        assert!(matches!(
            Route::reverse("/gemini/v1beta/models/x:countTokens"),
            Err(RouteError::Unsupported(..))
        ));
        assert_eq!(percent_decode("a%3"), "a%3");
        assert_eq!(percent_decode("a%zz%41"), "a%zzA");
    }
}
