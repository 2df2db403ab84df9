//! AWS Signature Version 4 for Bedrock: verifying what an agent signed
//! with its substitute key, and signing the outbound request with the real
//! one. Bedrock (like every service but S3) signs the URI-encoded form of
//! the already-encoded path ("double encoding").

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The parsed `Authorization: AWS4-HMAC-SHA256 …` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// Access key id.
    pub access_key: String,
    /// `YYYYMMDD`.
    pub date: String,
    /// Region.
    pub region: String,
    /// Service (`bedrock`).
    pub service: String,
    /// Signed header names, lower case, in order.
    pub signed_headers: Vec<String>,
    /// Hex signature.
    pub signature: String,
}

/// Why a signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    /// No or a malformed `Authorization` header.
    #[error("missing or malformed SigV4 Authorization header")]
    Malformed,
    /// A signed header is absent from the request.
    #[error("a signed header is missing")]
    MissingHeader,
    /// `x-amz-date` absent, malformed, or too far from now.
    #[error("x-amz-date missing or outside the allowed clock skew")]
    Clock,
    /// The signature does not match.
    #[error("signature does not match")]
    Mismatch,
}

impl Authorization {
    /// Parses the header value.
    ///
    /// # Errors
    /// [`SigError::Malformed`].
    pub fn parse(value: &str) -> Result<Self, SigError> {
        let rest = value
            .strip_prefix("AWS4-HMAC-SHA256 ")
            .ok_or(SigError::Malformed)?;
        let (mut cred, mut signed, mut sig) = (None, None, None);
        for item in rest.split(',') {
            let (k, v) = item.trim().split_once('=').ok_or(SigError::Malformed)?;
            match k {
                "Credential" => cred = Some(v),
                "SignedHeaders" => signed = Some(v),
                "Signature" => sig = Some(v),
                _ => return Err(SigError::Malformed),
            }
        }
        let cred: Vec<&str> = cred.ok_or(SigError::Malformed)?.split('/').collect();
        let [access_key, date, region, service, "aws4_request"] = cred[..] else {
            return Err(SigError::Malformed);
        };
        let signature = sig.ok_or(SigError::Malformed)?;
        if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SigError::Malformed);
        }
        Ok(Self {
            access_key: access_key.to_owned(),
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            signed_headers: signed
                .ok_or(SigError::Malformed)?
                .split(';')
                .map(str::to_owned)
                .collect(),
            signature: signature.to_ascii_lowercase(),
        })
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length.
    #[allow(clippy::expect_used)]
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC accepts any key length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// RFC 3986 encoding as SigV4 wants it (unreserved kept, `/` kept when
/// `keep_slash`).
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn decode(s: &str) -> std::borrow::Cow<'_, str> {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy()
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (uri_encode(&decode(k), false), uri_encode(&decode(v), false))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A request as the signature covers it.
pub struct Request<'a> {
    /// `POST`.
    pub method: &'a str,
    /// The path as sent on the wire (already percent-encoded).
    pub path: &'a str,
    /// The raw query string (without `?`).
    pub query: &'a str,
    /// The headers (any case).
    pub headers: &'a [(String, String)],
    /// The body.
    pub body: &'a [u8],
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn signature(
    req: &Request<'_>,
    signed: &[String],
    amz_date: &str,
    date: &str,
    region: &str,
    service: &str,
    secret: &str,
) -> Result<String, SigError> {
    let mut canon_headers = String::new();
    for name in signed {
        let v = header(req.headers, name).ok_or(SigError::MissingHeader)?;
        let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
        canon_headers.push_str(&format!("{name}:{v}\n"));
    }
    let canonical = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        uri_encode(req.path, true),
        canonical_query(req.query),
        canon_headers,
        signed.join(";"),
        hex::encode(Sha256::digest(req.body)),
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    let k = hmac(&k, b"aws4_request");
    Ok(hex::encode(hmac(&k, to_sign.as_bytes())))
}

/// Seconds since the Unix epoch of an `x-amz-date` (`YYYYMMDDTHHMMSSZ`).
fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (h, mi, se) = (n(9..11)?, n(11..13)?, n(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYYMMDDTHHMMSSZ` for Unix seconds.
pub fn amz_date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Largest accepted clock skew, as AWS allows.
pub const MAX_SKEW_SECS: i64 = 15 * 60;

/// Checks a request signed with `secret`, at Unix time `now`.
///
/// # Errors
/// A [`SigError`] saying what failed.
pub fn verify(
    req: &Request<'_>,
    auth: &Authorization,
    secret: &str,
    now: i64,
) -> Result<(), SigError> {
    let amz = header(req.headers, "x-amz-date").ok_or(SigError::Clock)?;
    let t = parse_amz_date(amz).ok_or(SigError::Clock)?;
    if (t - now).abs() > MAX_SKEW_SECS || !amz.starts_with(&auth.date) {
        return Err(SigError::Clock);
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(SigError::Malformed);
    }
    let expected = signature(
        req,
        &auth.signed_headers,
        amz,
        &auth.date,
        &auth.region,
        &auth.service,
        secret,
    )?;
    if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        Ok(())
    } else {
        Err(SigError::Mismatch)
    }
}

/// Signs `req` (whose headers must include `host`; `x-amz-date` is set
/// here) and returns the headers to add: `x-amz-date`, `authorization`.
///
/// # Errors
/// [`SigError::MissingHeader`] when `host` is absent.
pub fn sign(
    req: &Request<'_>,
    access_key: &str,
    secret: &str,
    region: &str,
    service: &str,
    now: i64,
) -> Result<Vec<(String, String)>, SigError> {
    let amz = amz_date(now);
    let date = amz[..8].to_owned();
    let date = date.as_str();
    let mut headers = req.headers.to_vec();
    headers.push(("x-amz-date".into(), amz.clone()));
    let mut signed: Vec<String> = headers
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .filter(|k| k == "host" || k == "content-type" || k.starts_with("x-amz-"))
        .collect();
    signed.sort();
    signed.dedup();
    let with_date = Request {
        headers: &headers,
        ..*req
    };
    let sig = signature(&with_date, &signed, &amz, date, region, service, secret)?;
    Ok(vec![
        ("x-amz-date".into(), amz),
        (
            "authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={access_key}/{date}/{region}/{service}/aws4_request, SignedHeaders={}, Signature={sig}",
                signed.join(";")
            ),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    // The "get-vanilla-query-order-key-case" style example from AWS's
    // public SigV4 documentation (AKIDEXAMPLE, 20150830T123600Z).
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    #[test]
    fn aws_documented_vector() {
        let headers = vec![
            ("Host".to_owned(), "example.amazonaws.com".to_owned()),
            ("X-Amz-Date".to_owned(), "20150830T123600Z".to_owned()),
        ];
        let req = Request {
            method: "GET",
            path: "/",
            query: "Param2=value2&Param1=value1",
            headers: &headers,
            body: b"",
        };
        let sig = signature(
            &req,
            &["host".into(), "x-amz-date".into()],
            "20150830T123600Z",
            "20150830",
            "us-east-1",
            "service",
            SECRET,
        )
        .expect("signs");
        assert_eq!(
            sig,
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        );
    }

    #[test]
    fn sign_then_verify_and_tamper() {
        let now = parse_amz_date("20261127T120000Z").expect("date");
        let headers = vec![
            ("host".to_owned(), "127.0.0.1:9".to_owned()),
            ("content-type".to_owned(), "application/json".to_owned()),
        ];
        let req = Request {
            method: "POST",
            path: "/model/a.b-v1%3A0/converse",
            query: "",
            headers: &headers,
            body: b"{}",
        };
        let added = sign(&req, "AKID", "s3cret", "us-east-1", "bedrock", now).expect("sign");
        let mut all = headers.clone();
        all.extend(added.iter().cloned());
        let auth = Authorization::parse(&added[1].1).expect("parse");
        assert_eq!(auth.signed_headers, ["content-type", "host", "x-amz-date"]);
        let signed = Request {
            headers: &all,
            ..req
        };
        verify(&signed, &auth, "s3cret", now).expect("verifies");
        assert_eq!(
            verify(&signed, &auth, "other", now),
            Err(SigError::Mismatch)
        );
        assert_eq!(
            verify(&signed, &auth, "s3cret", now + 3600),
            Err(SigError::Clock)
        );
        let tampered = Request {
            body: b"{\"x\":1}",
            ..signed
        };
        assert_eq!(
            verify(&tampered, &auth, "s3cret", now),
            Err(SigError::Mismatch)
        );
    }

    #[test]
    fn dates_and_malformed() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        let t = parse_amz_date("20261127T235959Z").expect("date");
        assert_eq!(amz_date(t), "20261127T235959Z");
        assert!(parse_amz_date("2026-11-27").is_none());
        assert_eq!(Authorization::parse("Bearer x"), Err(SigError::Malformed));
        assert_eq!(
            Authorization::parse(
                "AWS4-HMAC-SHA256 Credential=a/b/c, SignedHeaders=host, Signature=00"
            ),
            Err(SigError::Malformed)
        );
    }
}
