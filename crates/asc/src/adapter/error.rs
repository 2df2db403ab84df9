//! Why the gateway answers instead of the upstream, independent of the
//! provider; each provider module shapes it.

/// The class of a denial, mapped to each provider's status and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyKind {
    /// Malformed request (bad JSON, wrong content type).
    BadRequest,
    /// No or an unknown substitute key, or the wrong source address.
    Unauthenticated,
    /// Policy refused it (model, tool, DLP, approval denied).
    Forbidden,
    /// Not an operation the gateway forwards.
    NotFound,
    /// Body over the limit.
    TooLarge,
    /// Token budget exhausted.
    Budget,
    /// The upstream failed or answered something unreadable.
    Upstream,
    /// The upstream or an approval did not answer in time.
    Timeout,
}

impl DenyKind {
    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            DenyKind::BadRequest => 400,
            DenyKind::Unauthenticated => 401,
            DenyKind::Forbidden => 403,
            DenyKind::NotFound => 404,
            DenyKind::TooLarge => 413,
            DenyKind::Budget => 429,
            DenyKind::Upstream => 502,
            DenyKind::Timeout => 504,
        }
    }

    /// A stable code for logs and clients (`cordon_…`).
    pub fn code(self) -> &'static str {
        match self {
            DenyKind::BadRequest => "cordon_bad_request",
            DenyKind::Unauthenticated => "cordon_unauthenticated",
            DenyKind::Forbidden => "cordon_policy_denied",
            DenyKind::NotFound => "cordon_unsupported",
            DenyKind::TooLarge => "cordon_too_large",
            DenyKind::Budget => "cordon_budget_exhausted",
            DenyKind::Upstream => "cordon_upstream_error",
            DenyKind::Timeout => "cordon_timeout",
        }
    }
}

/// A denial ready to send: status, extra headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers besides `content-type: application/json`.
    pub headers: Vec<(&'static str, String)>,
    /// JSON body.
    pub body: String,
}
