//! The `overlay-controller` binary as an admin uses it.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};
use hyper::{Method, StatusCode};
use proto::JoinToken;
use serde_json::{json, Value};

use crate::both;
use crate::common::{random_key, Db, PgDb};

const BIN: &str = env!("CARGO_BIN_EXE_overlay-controller");

/// A `serve` process (also used by the load test).
pub(crate) struct Serve {
    pub(crate) child: Child,
    pub(crate) url: String,
    /// Whether it said it created an admin token.
    created_token: bool,
    /// Everything it printed before listening.
    printed: String,
}

pub(crate) fn serve(dir: &Path, db_url: Option<&str>) -> Result<Serve> {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir);
    if let Some(u) = db_url {
        cmd.args(["--database-url", u]);
    }
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let stdout = child.stdout.take().context("stdout")?;
    let mut created_token = false;
    let mut printed = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        printed.push_str(&line);
        printed.push('\n');
        created_token |= line.starts_with("admin token created in ");
        if let Some(url) = line.strip_prefix("listening on ") {
            return Ok(Serve {
                child,
                url: url.to_owned(),
                created_token,
                printed,
            });
        }
    }
    let _ = child.kill();
    bail!("serve exited before listening")
}

impl Serve {
    pub(crate) fn stop(mut self) -> Result<()> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        let status = self.child.wait()?;
        assert!(status.success(), "serve exited with {status} on SIGTERM");
        Ok(())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // Only if a test failed before stop(): never leave the process behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(
    dir: &Path,
    url: &str,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> Result<Out> {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .args(["--controller", url, "--admin-token-file"])
        .arg(dir.join("admin.token"))
        .arg("--ca-file")
        .arg(dir.join("ca.pem"))
        .env_remove("CORDON_ADMIN_TOKEN")
        .env_remove("CORDON_DATABASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn()?;
    if let Some(mut w) = child.stdin.take() {
        if let Some(s) = stdin {
            w.write_all(s.as_bytes())?;
        }
    }
    let out = child.wait_with_output()?;
    Ok(Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Runs the binary without the client flags (for `audit verify`).
fn bare(args: &[&str]) -> Result<Out> {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("CORDON_DATABASE_URL")
        .output()?;
    Ok(Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn ok(o: Out) -> Result<String> {
    if o.code != 0 {
        bail!("exit {}: {}{}", o.code, o.stdout, o.stderr);
    }
    Ok(o.stdout)
}

async fn admin_cli_end_to_end(db: Db) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let pg = match db {
        Db::Sqlite => None,
        Db::Postgres => Some(PgDb::create().await?),
    };
    let db_url = pg.as_ref().map(|p| p.url.as_str());
    let s = serve(dir, db_url)?;
    let file_token = std::fs::read_to_string(dir.join("admin.token"))?;
    assert!(s.created_token, "{}", s.printed);
    assert!(
        !s.printed.contains(file_token.trim()),
        "the token is never printed, only saved 0600: {}",
        s.printed
    );
    let url = s.url.clone();
    let r = |args: &[&str]| run(dir, &url, args, None, &[]);

    let out = ok(r(&["enclave", "create", "project-a"])?)?;
    assert!(
        out.starts_with("NAME") && out.contains("project-a") && out.contains("100.64.0.0/24"),
        "{out}"
    );
    ok(r(&[
        "enclave",
        "create",
        "project-b",
        "--no-agent-to-agent",
        "--cidr",
        "100.64.9.0/24",
    ])?)?;
    let dup = r(&["enclave", "create", "project-a"])?;
    assert_eq!(dup.code, 1);
    assert!(dup.stderr.contains("already exists"), "{}", dup.stderr);
    assert_eq!(
        r(&["enclave", "create", "Bad"])?.code,
        2,
        "bad name is bad usage"
    );
    let outside = r(&["enclave", "create", "x", "--cidr", "198.18.0.0/24"])?;
    assert_eq!(outside.code, 2, "{}", outside.stderr);
    let list = ok(r(&["enclave", "list"])?)?;
    assert!(list.contains("project-a") && list.contains("project-b"));
    let json_list: Value = serde_json::from_str(&ok(r(&["enclave", "list", "--json"])?)?)?;
    assert_eq!(json_list.as_array().map(Vec::len), Some(2));

    // token create prints only the token.
    let tok = ok(r(&[
        "token",
        "create",
        "project-a",
        "--role",
        "agent",
        "--name",
        "agent-1",
        "--ttl",
        "10m",
    ])?)?;
    assert_eq!(tok.lines().count(), 1);
    let parsed = JoinToken::decode(tok.trim())?;
    assert_eq!(parsed.controller, url);
    let gw: Value = serde_json::from_str(&ok(r(&[
        "token",
        "create",
        "project-a",
        "--role",
        "gateway",
        "--json",
    ])?)?)?;
    assert!(gw["token"]
        .as_str()
        .is_some_and(|t| t.starts_with("cordon1.")));
    assert_eq!(
        r(&["token", "create", "project-a", "--role", "boss"])?.code,
        2
    );
    assert_eq!(
        r(&[
            "token",
            "create",
            "project-a",
            "--role",
            "agent",
            "--ttl",
            "1w"
        ])?
        .code,
        2
    );
    assert_eq!(r(&["token", "create", "nope", "--role", "agent"])?.code, 1);

    // A node joins (through the API), then the admin sees and removes it.
    let ca = std::fs::read(dir.join("ca.pem"))?;
    let node = control_client::Client::new(&url, &ca, None)?;
    let body =
        serde_json::to_vec(&json!({"token": tok.trim(), "public_key": random_key().to_string()}))?;
    let (status, _) = node.send(Method::POST, "/api/v1/join", Some(body)).await?;
    assert_eq!(status, StatusCode::OK);
    let members = ok(r(&["member", "list", "project-a"])?)?;
    assert!(
        members.starts_with("NAME")
            && members.contains("agent-1")
            && members.contains("100.64.0.1/32"),
        "{members}"
    );

    let ch = ok(r(&[
        "chamber",
        "create",
        "project-a",
        "design",
        "--asset",
        "rtl",
        "--allow",
        "agent-1",
        "role:gateway",
    ])?)?;
    assert!(ch.contains("agent-1,role:gateway"), "{ch}");
    assert_eq!(
        r(&[
            "chamber",
            "create",
            "project-a",
            "design",
            "--asset",
            "rtl2",
            "--allow",
            "agent-1"
        ])?
        .code,
        1
    );
    assert_eq!(
        r(&[
            "chamber",
            "create",
            "project-a",
            "c2",
            "--asset",
            "x",
            "--allow",
            "role:boss"
        ])?
        .code,
        2
    );

    let secret = "sk-cli-secret-value";
    let set = run(
        dir,
        &url,
        &["credential", "set", "openai-prod", "--provider", "openai"],
        Some(secret),
        &[],
    )?;
    let set_out = ok(set)?;
    assert!(!set_out.contains(secret));
    let empty = run(
        dir,
        &url,
        &["credential", "set", "k", "--provider", "openai"],
        Some(""),
        &[],
    )?;
    assert_eq!(empty.code, 2);

    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "[models]\nallow = [\"gpt-4o*\"]\n[credentials]\nopenai = \"openai-prod\"\n",
    )?;
    let p = policy.to_string_lossy().into_owned();
    assert!(ok(r(&["policy", "set", "project-a", &p])?)?.contains("version 1"));
    let shown = ok(r(&["policy", "show", "project-a"])?)?;
    assert!(
        shown.contains("gpt-4o*") && shown.contains("version 1"),
        "{shown}"
    );
    std::fs::write(&policy, "[tool]\n")?;
    assert_eq!(r(&["policy", "set", "project-a", &p])?.code, 2);
    assert_eq!(
        r(&["policy", "set", "project-a", "/nonexistent/policy.toml"])?.code,
        2
    );
    assert_eq!(r(&["policy", "show", "project-b"])?.code, 1);

    let show = ok(r(&["enclave", "show", "project-a"])?)?;
    assert!(
        show.contains("REACHES") && show.contains("agent-1"),
        "{show}"
    );

    ok(r(&["member", "remove", "project-a", "agent-1"])?)?;
    assert_eq!(r(&["member", "remove", "project-a", "agent-1"])?.code, 1);
    assert!(!ok(r(&["member", "list", "project-a"])?)?.contains("agent-1"));
    ok(r(&["enclave", "delete", "project-b"])?)?;

    // Wrong credentials and wrong CA.
    let bad = run(
        dir,
        &url,
        &["enclave", "list"],
        None,
        &[("CORDON_ADMIN_TOKEN", "cadm_wrong")],
    )?;
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("missing or invalid credentials"),
        "{}",
        bad.stderr
    );
    let other = tempfile::tempdir()?;
    overlay_controller::pki::Pki::load_or_create(other.path(), &["127.0.0.1".into()])?;
    let wrong_ca = Command::new(BIN)
        .args([
            "enclave",
            "list",
            "--controller",
            &url,
            "--admin-token-file",
        ])
        .arg(dir.join("admin.token"))
        .arg("--ca-file")
        .arg(other.path().join("ca.pem"))
        .output()?;
    assert_eq!(wrong_ca.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong_ca.stderr).contains("TLS"));

    // Audit: intact, then tampered.
    let verify_args: Vec<String> = match db_url {
        Some(u) => vec![
            "audit".into(),
            "verify".into(),
            "--database-url".into(),
            u.into(),
        ],
        None => vec![
            "audit".into(),
            "verify".into(),
            "--data-dir".into(),
            dir.to_string_lossy().into(),
        ],
    };
    let va: Vec<&str> = verify_args.iter().map(String::as_str).collect();
    let intact = ok(bare(&va)?)?;
    assert!(intact.contains("intact"), "{intact}");
    s.stop()?;

    // A restart creates no admin token again.
    let s = serve(dir, db_url)?;
    assert!(!s.created_token);
    s.stop()?;

    let tamper_url = db_url.map_or_else(
        || format!("sqlite://{}", dir.join("controller.db").display()),
        str::to_owned,
    );
    let mut conn = overlay_controller::db::connect_once(&tamper_url).await?;
    sqlx::query("UPDATE audit SET actor = 'someone-else' WHERE seq = 1")
        .execute(&mut conn)
        .await?;
    let broken = bare(&va)?;
    assert_eq!(broken.code, 1, "{}", broken.stdout);
    assert!(
        broken.stderr.contains("BROKEN at record 1"),
        "{}",
        broken.stderr
    );
    if db_url.is_none() {
        let missing = bare(&["audit", "verify", "--data-dir", "/nonexistent"])?;
        assert_eq!(missing.code, 2);
    }
    Ok(())
}
both!(admin_cli_end_to_end);

#[test]
fn help_and_version() -> Result<()> {
    let v = Command::new(BIN).arg("--version").output()?;
    assert!(v.status.success());
    assert!(String::from_utf8_lossy(&v.stdout).starts_with("overlay-controller "));
    let h = Command::new(BIN).arg("--help").output()?;
    assert!(String::from_utf8_lossy(&h.stdout).contains("serve"));
    let bad = Command::new(BIN).arg("frobnicate").output()?;
    assert_eq!(bad.status.code(), Some(2));
    Ok(())
}
