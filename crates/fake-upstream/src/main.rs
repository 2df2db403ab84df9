//! `fake-upstream`: a test fixture standing in for api.openai.com,
//! api.anthropic.com, generativelanguage.googleapis.com and Bedrock
//! runtime. It speaks their real wire formats (whole and streamed, with
//! usage), checks the real key (SigV4 for Bedrock), records every request
//! (`GET /_fake/requests`) so tests can see what arrived, and is driven by
//! markers in the prompt:
//!
//! - `CALL_TOOL:name` — the model calls `name`;
//! - `SAY:text` — the model answers `text` (up to the next quote);
//! - `ECHO_KEY` — a 401 whose message echoes the key it received;
//! - `LEAK_SECRET` — the model answers with an AWS key id in its text;
//! - `BREAK_STREAM` — the stream breaks off after two events;
//! - `SLOW_STREAM` — 200 ms between streamed events (`PACE_MS:n`: n ms);
//! - `GARBAGE_STREAM` — the third streamed event is not valid framing;
//! - `GARBAGE` — a 200 whose body is not JSON;
//! - `HANG` — no answer for 30 s.

mod formats;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};

use asc::sigv4;
use formats::{Api, Reply};

/// Fake LLM provider endpoints for tests and benchmarks.
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on (port 0: any; the address is printed).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Serve HTTPS with a CA created in this directory (`ca.pem`); the
    /// certificate names the listen address.
    #[arg(long)]
    tls_dir: Option<PathBuf>,
    /// The OpenAI key it accepts.
    #[arg(long, default_value = "sk-real-openai-0123456789abcdef")]
    openai_key: String,
    /// The Anthropic key it accepts.
    #[arg(long, default_value = "sk-ant-real-0123456789abcdef")]
    anthropic_key: String,
    /// The Gemini key it accepts.
    #[arg(long, default_value = "AIzaRealGeminiKey0123456789abcdefghijk")]
    gemini_key: String,
    /// The Bedrock credentials it accepts, `ACCESS_KEY_ID:SECRET`.
    #[arg(
        long,
        default_value = "AKIAREALBEDROCK00001:real/bedrock+secret0123456789abcdefghij"
    )]
    bedrock_key: String,
    /// Keep at most this many recorded requests (oldest dropped).
    #[arg(long, default_value_t = 1000)]
    keep: usize,
}

type Body = BoxBody<Bytes, std::io::Error>;

struct Fake {
    args: Args,
    seen: Mutex<Vec<Value>>,
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn respond(
    status: u16,
    ctype: &str,
    body: impl Into<Bytes>,
    extra: &[(&str, &str)],
) -> Response<Body> {
    let mut b = Response::builder()
        .status(status)
        .header("content-type", ctype);
    for (k, v) in extra {
        b = b.header(*k, *v);
    }
    b.body(full(body))
        .unwrap_or_else(|_| Response::new(full("")))
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> &'a str {
    h.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map_or("", |(_, v)| v.as_str())
}

fn api_of(path: &str) -> Option<(Api, bool, Option<String>)> {
    let p = path.split('?').next().unwrap_or("");
    if p.ends_with("/chat/completions") {
        return Some((Api::Chat, false, None));
    }
    if p.ends_with("/responses") {
        return Some((Api::Responses, false, None));
    }
    if p.ends_with("/v1/messages") {
        return Some((Api::Messages, false, None));
    }
    if let Some((m, method)) = p.rsplit_once(':') {
        let model = m.rsplit('/').next().map(str::to_owned);
        match method {
            "generateContent" => return Some((Api::Gemini, false, model)),
            "streamGenerateContent" => return Some((Api::Gemini, true, model)),
            _ => {}
        }
    }
    let rest = p.strip_prefix("/model/")?;
    let (model, op) = rest.rsplit_once('/')?;
    let model = Some(model.replace("%3A", ":"));
    match op {
        "converse" => Some((Api::Converse, false, model)),
        "converse-stream" => Some((Api::Converse, true, model)),
        "invoke" => Some((Api::Invoke, false, model)),
        "invoke-with-response-stream" => Some((Api::Invoke, true, model)),
        _ => None,
    }
}

fn marker<'a>(text: &'a str, m: &str) -> Option<&'a str> {
    let i = text.find(m)?;
    let rest = &text[i + m.len()..];
    let end = rest.find(['"', '\\']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The AWS-key-shaped string `LEAK_SECRET` makes the model say (built so
/// this file does not itself hold one).
fn leaked_key() -> String {
    ["AKIA", "Z7Q3RX6MW2KD4PLT"].concat()
}

fn unauthorized(api: Api, received: &str) -> Response<Body> {
    let msg = format!("Incorrect API key provided: {received}");
    match api {
        Api::Chat | Api::Responses => respond(401, "application/json",
            json!({"error": {"message": msg, "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}).to_string(), &[]),
        Api::Messages => respond(401, "application/json",
            json!({"type": "error", "error": {"type": "authentication_error", "message": msg}}).to_string(), &[]),
        Api::Gemini => respond(400, "application/json",
            json!({"error": {"code": 400, "message": msg, "status": "INVALID_ARGUMENT"}}).to_string(), &[]),
        Api::Converse | Api::Invoke => respond(403, "application/json", json!({"message": msg}).to_string(),
            &[("x-amzn-errortype", "UnrecognizedClientException")]),
    }
}

impl Fake {
    /// The credential the request presented, and whether it is the real one.
    fn check_key(
        &self,
        api: Api,
        path: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> (String, bool) {
        match api {
            Api::Chat | Api::Responses => {
                let got = header(headers, "authorization")
                    .trim_start_matches("Bearer ")
                    .to_owned();
                let ok = got == self.args.openai_key;
                (got, ok)
            }
            Api::Messages => {
                let got = header(headers, "x-api-key").to_owned();
                let ok = got == self.args.anthropic_key;
                (got, ok)
            }
            Api::Gemini => {
                let got = header(headers, "x-goog-api-key").to_owned();
                let ok = got == self.args.gemini_key;
                (got, ok)
            }
            Api::Converse | Api::Invoke => {
                let auth_header = header(headers, "authorization");
                let Ok(auth) = sigv4::Authorization::parse(auth_header) else {
                    return (auth_header.to_owned(), false);
                };
                let (akid, secret) = self.args.bedrock_key.split_once(':').unwrap_or(("", ""));
                let (p, q) = path.split_once('?').unwrap_or((path, ""));
                let req = sigv4::Request {
                    method: "POST",
                    path: p,
                    query: q,
                    headers,
                    body,
                };
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                let ok = auth.access_key == akid && sigv4::verify(&req, &auth, secret, now).is_ok();
                (auth.access_key, ok)
            }
        }
    }

    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        if path == "/_fake/requests" {
            let seen = self.seen.lock().map(|s| s.clone()).unwrap_or_default();
            return respond(200, "application/json", Value::Array(seen).to_string(), &[]);
        }
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let method = req.method().to_string();
        let Ok(body) = req.into_body().collect().await.map(|b| b.to_bytes()) else {
            return respond(400, "text/plain", "unreadable body", &[]);
        };
        let text = String::from_utf8_lossy(&body).into_owned();
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= self.args.keep {
                seen.remove(0);
            }
            let h: serde_json::Map<String, Value> =
                headers.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            seen.push(json!({"method": method, "path": path, "headers": h, "body": text}));
        }
        let Some((api, path_stream, path_model)) = api_of(&path) else {
            return respond(
                404,
                "application/json",
                json!({"error": {"message": "unknown path"}}).to_string(),
                &[],
            );
        };
        let (received, ok) = self.check_key(api, &path, &headers, &body);
        if !ok || text.contains("ECHO_KEY") {
            return unauthorized(api, &received);
        }
        if text.contains("HANG") {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
        }
        if text.contains("GARBAGE") && !text.contains("GARBAGE_STREAM") {
            return respond(200, "text/html", "<html>not what you asked for</html>", &[]);
        }
        let Ok(v) = serde_json::from_slice::<Value>(&body) else {
            return respond(
                400,
                "application/json",
                json!({"error": {"message": "bad json"}}).to_string(),
                &[],
            );
        };
        let model = path_model
            .or_else(|| v["model"].as_str().map(str::to_owned))
            .unwrap_or_default();
        let stream = path_stream || v["stream"].as_bool().unwrap_or(false);
        let reply = if let Some(tool) = marker(&text, "CALL_TOOL:") {
            let name: String = tool
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            Reply::Tool(name, r#"{"target":"prod","reason":"requested"}"#.into())
        } else if text.contains("LEAK_SECRET") {
            Reply::Text(format!(
                "Sure. The deployment key is {} and it opens production.",
                leaked_key()
            ))
        } else if let Some(say) = marker(&text, "SAY:") {
            Reply::Text(say.to_owned())
        } else {
            Reply::Text("Hello from the fake upstream.".into())
        };
        let input = (body.len() / 4) as u64;
        if !stream {
            let out = formats::whole(api, &model, &reply, input);
            return respond(200, "application/json", out.to_string(), &[]);
        }
        let chunks = formats::streamed(api, &model, &reply, input);
        let ctype = if matches!(api, Api::Converse | Api::Invoke) {
            "application/vnd.amazon.eventstream"
        } else {
            "text/event-stream"
        };
        let broken = text.contains("BREAK_STREAM");
        let pace = if text.contains("SLOW_STREAM") {
            200
        } else {
            marker(&text, "PACE_MS:")
                .and_then(|m| {
                    m.trim()
                        .split(|c: char| !c.is_ascii_digit())
                        .next()?
                        .parse()
                        .ok()
                })
                .unwrap_or(0)
        };
        let mut chunks = chunks;
        if text.contains("GARBAGE_STREAM") && chunks.len() > 2 {
            chunks[2] = if matches!(api, Api::Converse | Api::Invoke) {
                let mut c = chunks[2].clone();
                let n = c.len();
                c[n - 1] ^= 0xff;
                c
            } else {
                b"data: {not json\n\n".to_vec()
            };
        }
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(16);
        tokio::spawn(async move {
            for (i, c) in chunks.into_iter().enumerate() {
                if broken && i == 2 {
                    // Let the first events reach the client, then reset.
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    let _ = tx.send(Err(std::io::Error::other("upstream reset"))).await;
                    return;
                }
                if tx.send(Ok(Frame::data(Bytes::from(c)))).await.is_err() {
                    return;
                }
                if pace > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(pace)).await;
                }
            }
        });
        let stream =
            futures_util::stream::unfold(
                rx,
                |mut rx| async move { rx.recv().await.map(|x| (x, rx)) },
            );
        Response::builder()
            .status(200)
            .header("content-type", ctype)
            .body(BodyExt::boxed(StreamBody::new(stream)))
            .unwrap_or_else(|_| Response::new(full("")))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tls = match &args.tls_dir {
        Some(dir) => {
            let ca = Arc::new(asc::ca::InterceptionCa::load_or_create(dir).context("test CA")?);
            Some(tokio_rustls::TlsAcceptor::from(
                ca.server_config(&args.listen.ip().to_string())?,
            ))
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    let fake = Arc::new(Fake {
        args,
        seen: Mutex::new(vec![]),
    });
    loop {
        let (tcp, _) = listener.accept().await?;
        let _ = tcp.set_nodelay(true);
        let f = fake.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let f = f.clone();
                async move { Ok::<_, std::convert::Infallible>(f.handle(req).await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match tls {
                Some(acc) => {
                    if let Ok(s) = acc.accept(tcp).await {
                        let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                    }
                }
                None => {
                    let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                }
            }
        });
    }
}
