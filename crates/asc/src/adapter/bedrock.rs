//! Bedrock Converse / ConverseStream (InvokeModel bodies are
//! model-native and handled by their dialect).

use serde_json::{json, Value};

use super::error::{DenyKind, ErrorResponse};
use super::{named_tools, ToolDef};

/// `toolConfig.tools[].toolSpec.name`.
pub fn tools(body: &Value) -> Vec<ToolDef> {
    named_tools(body, "/toolConfig/tools", |t| {
        t.pointer("/toolSpec/name")
            .and_then(Value::as_str)
            .map(str::to_owned)
    })
}

/// The AWS error type name for a denial.
pub fn error_type(kind: DenyKind) -> &'static str {
    match kind {
        DenyKind::BadRequest | DenyKind::TooLarge => "ValidationException",
        DenyKind::Unauthenticated => "UnrecognizedClientException",
        DenyKind::Forbidden => "AccessDeniedException",
        DenyKind::NotFound => "ResourceNotFoundException",
        DenyKind::Budget => "ThrottlingException",
        DenyKind::Upstream => "ServiceUnavailableException",
        DenyKind::Timeout => "ModelTimeoutException",
    }
}

/// The error AWS rest-json services send: type in `x-amzn-ErrorType`,
/// message in the body. A 401 is sent as 403, as AWS does.
pub fn error(kind: DenyKind, message: &str) -> ErrorResponse {
    let status = match kind {
        DenyKind::Unauthenticated => 403,
        k => k.status(),
    };
    ErrorResponse {
        status,
        headers: vec![("x-amzn-errortype", error_type(kind).to_owned())],
        body: json!({"message": message}).to_string(),
    }
}
