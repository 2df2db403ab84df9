//! The request the upstream receives: the agent's headers minus keys and
//! hop-by-hop state, the real key where the provider wants it (or a fresh
//! SigV4 signature for Bedrock), the inspected body.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;

use crate::adapter::Route;
use crate::config::Upstream;
use crate::credential::{key_header, RealKey, STRIPPED};
use crate::provider::Provider;
use crate::sigv4;

/// Why no outbound request could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// The upstream URL is not a valid URI.
    #[error("upstream URL is invalid")]
    Uri,
    /// The Bedrock credential is not `ACCESS_KEY_ID:SECRET`.
    #[error("the Bedrock credential must be ACCESS_KEY_ID:SECRET_ACCESS_KEY")]
    BedrockKey,
    /// A header could not be built.
    #[error("outbound header is invalid")]
    Header,
}

/// Removes the `key` query parameter (Gemini's other place for a key).
fn without_key_param(path_and_query: &str) -> String {
    let Some((path, query)) = path_and_query.split_once('?') else {
        return path_and_query.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !(p.starts_with("key=") || *p == "key"))
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// Builds the upstream request.
///
/// # Errors
/// [`OutboundError`].
pub fn build(
    route: &Route,
    upstream: &Upstream,
    headers: &[(String, String)],
    body: Bytes,
    key: &RealKey,
    signing_region: Option<&str>,
    now_unix: i64,
) -> Result<Request<Full<Bytes>>, OutboundError> {
    let uri: hyper::Uri = format!(
        "{}{}",
        upstream.base_url,
        without_key_param(&route.upstream_path)
    )
    .parse()
    .map_err(|_| OutboundError::Uri)?;
    let authority = uri.authority().ok_or(OutboundError::Uri)?.to_string();
    let mut out: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| !STRIPPED.contains(&k.to_ascii_lowercase().as_str()))
        .filter(|(k, _)| !k.to_ascii_lowercase().starts_with("x-cordon-"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    out.push(("host".into(), authority));
    match key_header(route.provider, key.expose()) {
        Some((name, value)) => out.push((name.into(), value)),
        None => {
            debug_assert_eq!(route.provider, Provider::Bedrock);
            let (access, secret) = key
                .expose()
                .split_once(':')
                .ok_or(OutboundError::BedrockKey)?;
            let region = upstream
                .region
                .as_deref()
                .or(signing_region)
                .unwrap_or("us-east-1");
            let req = sigv4::Request {
                method: "POST",
                path: uri.path(),
                query: uri.query().unwrap_or(""),
                headers: &out,
                body: &body,
            };
            let added = sigv4::sign(&req, access, secret, region, "bedrock", now_unix)
                .map_err(|_| OutboundError::Header)?;
            out.extend(added);
        }
    }
    let mut b = Request::post(uri);
    for (k, v) in &out {
        b = b.header(k.as_str(), v.as_str());
    }
    b.body(Full::new(body)).map_err(|_| OutboundError::Header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_param_removed() {
        assert_eq!(
            without_key_param("/v1/x:y?alt=sse&key=abc"),
            "/v1/x:y?alt=sse"
        );
        assert_eq!(without_key_param("/v1/x?key=abc"), "/v1/x");
        assert_eq!(without_key_param("/v1/x"), "/v1/x");
    }
}
