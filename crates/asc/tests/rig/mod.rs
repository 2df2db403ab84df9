//! A running fake upstream (HTTPS, test CA) and a running `asc serve` in
//! front of it, on loopback, with the official SDKs in a venv to drive it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The agent's substitute key.
pub const SUB: &str = "sub-agent1-7f3c9a1e5d2b8c4f";
/// A key the ASC does not know.
pub const WRONG: &str = "sub-nobody-0000000000000000";
/// Real keys (what the fake upstream accepts by default).
pub const REAL_OPENAI: &str = "sk-real-openai-0123456789abcdef";
/// Anthropic's.
pub const REAL_ANTHROPIC: &str = "sk-ant-real-0123456789abcdef";
/// Gemini's.
pub const REAL_GEMINI: &str = "AIzaRealGeminiKey0123456789abcdefghijk";
/// Bedrock's.
pub const REAL_BEDROCK: &str = "AKIAREALBEDROCK00001:real/bedrock+secret0123456789abcdefghij";

/// The policy most tests use.
pub const POLICY: &str = r#"
[models]
allow = ["gpt-4o*", "claude-*", "gemini-*", "anthropic.claude-*"]

[tools]
deny = ["delete_*"]
approve = ["deploy_*"]
approval_timeout = "20s"

[dlp]
packs = ["secrets", "pii"]
action = "block"
literals = ["NIGHTJAR"]
"#;

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    // target/debug/deps/sdk-… → target/debug
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

/// A workspace binary next to the test.
pub fn bin(name: &str) -> PathBuf {
    let p = target_dir().join(name);
    assert!(
        p.is_file(),
        "{} not built: run `cargo build --workspace` (scripts/test.sh does)",
        p.display()
    );
    p
}

/// The venv's python with the official SDKs (scripts/setup.sh makes it).
pub fn python() -> PathBuf {
    let venv = std::env::var_os("CORDON_VENV")
        .map_or_else(|| PathBuf::from("/opt/cordon-venv"), PathBuf::from);
    let p = venv.join("bin/python");
    assert!(
        p.is_file(),
        "{} missing: run scripts/setup.sh (it creates the SDK venv)",
        p.display()
    );
    p
}

/// A loopback port nobody listens on (yet).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn write_private(path: &Path, text: &str) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("key file");
    f.write_all(text.as_bytes()).expect("write");
}

/// The running pair.
pub struct Rig {
    /// Scratch directory (config, CAs, log).
    pub dir: tempfile::TempDir,
    fake: Child,
    asc: Option<Child>,
    /// `https://127.0.0.1:P` of the fake.
    pub fake_url: String,
    /// Reverse proxy URL.
    pub asc_url: String,
    /// Forward proxy URL.
    pub fwd_url: String,
    /// Admin address.
    pub admin: String,
    /// The ASC config file.
    pub config: PathBuf,
}

impl Rig {
    /// Starts the fake and an ASC with `policy`.
    pub fn start(policy: &str) -> Self {
        Self::start_with(policy, "")
    }

    /// Same, with `extra` appended to the ASC configuration.
    pub fn start_with(policy: &str, extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut fake = Command::new(bin("fake-upstream"))
            .args(["--tls-dir", &dir.path().join("fake-ca").to_string_lossy()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start fake-upstream");
        let mut line = String::new();
        BufReader::new(fake.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("fake address");
        let fake_addr = line
            .trim()
            .strip_prefix("listening on ")
            .expect("listening line")
            .to_owned();
        for (name, key) in [
            ("openai", REAL_OPENAI),
            ("anthropic", REAL_ANTHROPIC),
            ("gemini", REAL_GEMINI),
            ("bedrock", REAL_BEDROCK),
        ] {
            write_private(&dir.path().join(format!("{name}.key")), key);
        }
        std::fs::write(dir.path().join("policy.toml"), policy).expect("policy");
        let mut cfg = format!(
            "enclave = \"test\"\n[listen]\nreverse = \"127.0.0.1:REV\"\nforward = \"127.0.0.1:FWD\"\nadmin = \"127.0.0.1:ADM\"\n\n\
             [policy]\nfile = \"policy.toml\"\n\n[log]\ndatabase = \"asc-log.db\"\n\n\
             [[agent]]\nname = \"agent-1\"\nsubstitute_key = \"{SUB}\"\nsource = \"127.0.0.1\"\n\n[credentials]\n"
        );
        for name in ["openai", "anthropic", "gemini", "bedrock"] {
            cfg.push_str(&format!("{name}-real = {{ file = \"{name}.key\" }}\n"));
        }
        for name in ["openai", "anthropic", "gemini", "bedrock"] {
            cfg.push_str(&format!(
                "\n[upstream.{name}]\nbase_url = \"https://{fake_addr}\"\nca_file = \"fake-ca/ca.pem\"\ncredential = \"{name}-real\"\n"
            ));
        }
        cfg.push_str(extra);
        let config = dir.path().join("asc.toml");
        let mut rig = Rig {
            fake,
            asc: None,
            fake_url: format!("https://{fake_addr}"),
            asc_url: String::new(),
            fwd_url: String::new(),
            admin: String::new(),
            config,
            dir,
        };
        // A port picked free can be taken by another test before the ASC
        // binds it: then pick new ones.
        for _ in 0..5 {
            let (rev, fwd, adm) = (free_port(), free_port(), free_port());
            let text = cfg
                .replace("127.0.0.1:REV", &format!("127.0.0.1:{rev}"))
                .replace("127.0.0.1:FWD", &format!("127.0.0.1:{fwd}"))
                .replace("127.0.0.1:ADM", &format!("127.0.0.1:{adm}"));
            std::fs::write(&rig.config, text).expect("config");
            rig.asc_url = format!("http://127.0.0.1:{rev}");
            rig.fwd_url = format!("http://127.0.0.1:{fwd}");
            rig.admin = format!("127.0.0.1:{adm}");
            if rig.try_start_asc() {
                return rig;
            }
        }
        panic!("asc did not start listening (5 attempts with fresh ports)");
    }

    /// (Re)starts the ASC process.
    pub fn start_asc(&mut self) {
        assert!(self.try_start_asc(), "asc did not start listening");
    }

    /// Starts the ASC; `false` if it exited (a port was taken) or did not
    /// listen within 20 s.
    fn try_start_asc(&mut self) -> bool {
        let mut child = Command::new(bin("asc"))
            .args(["serve", "--config", &self.config.to_string_lossy()])
            .env(
                "RUST_LOG",
                std::env::var("ASC_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .spawn()
            .expect("start asc");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if child.try_wait().ok().flatten().is_some() {
                return false;
            }
            if std::net::TcpStream::connect(&self.admin).is_ok()
                && std::net::TcpStream::connect(self.asc_url.trim_start_matches("http://")).is_ok()
            {
                self.asc = Some(child);
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        false
    }

    /// The ASC's PID while it runs.
    pub fn asc_pid(&self) -> Option<u32> {
        self.asc.as_ref().map(Child::id)
    }

    /// Kills the ASC (SIGKILL).
    pub fn kill_asc(&mut self) {
        if let Some(mut c) = self.asc.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Environment for the Python scenarios.
    pub fn env(&self) -> Vec<(String, String)> {
        let d = self.dir.path();
        [
            ("ASC", self.asc_url.clone()),
            ("FAKE", self.fake_url.clone()),
            (
                "FAKE_CA",
                d.join("fake-ca/ca.pem").to_string_lossy().into_owned(),
            ),
            ("SUB", SUB.into()),
            ("WRONG", WRONG.into()),
            ("REAL_OPENAI", REAL_OPENAI.into()),
            ("REAL_ANTHROPIC", REAL_ANTHROPIC.into()),
            ("REAL_GEMINI", REAL_GEMINI.into()),
            ("REAL_BEDROCK", REAL_BEDROCK.into()),
            ("FWD", self.fwd_url.clone()),
            (
                "ASC_CA",
                d.join("asc-ca/ca.pem").to_string_lossy().into_owned(),
            ),
            ("ASC_BIN", bin("asc").to_string_lossy().into_owned()),
            ("ASC_CONFIG", self.config.to_string_lossy().into_owned()),
            (
                "TIME_BIN",
                python()
                    .with_file_name("mcp-server-time")
                    .to_string_lossy()
                    .into_owned(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// A Python scenario process, not yet waited for.
    pub fn spawn_python(&self, scenarios: &[&str]) -> Child {
        self.spawn_script("clients.py", scenarios)
    }

    /// A scenario of `tests/py/SCRIPT`, not yet waited for.
    pub fn spawn_script(&self, script: &str, scenarios: &[&str]) -> Child {
        self.spawn_script_with(script, scenarios, &[])
    }

    /// Same, with more environment.
    pub fn spawn_script_with(
        &self,
        script: &str,
        scenarios: &[&str],
        extra: &[(&str, String)],
    ) -> Child {
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/py")
            .join(script);
        let mut cmd = Command::new(python());
        cmd.arg(script)
            .args(scenarios)
            .envs(self.env())
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for k in [
            "HTTPS_PROXY",
            "HTTP_PROXY",
            "ALL_PROXY",
            "https_proxy",
            "http_proxy",
            "all_proxy",
            "NO_PROXY",
            "no_proxy",
        ] {
            cmd.env_remove(k);
        }
        cmd.spawn().expect("python")
    }

    /// Runs scenarios and asserts every one printed `ok`.
    pub fn run(&self, scenarios: &[&str]) {
        let out = self
            .spawn_python(scenarios)
            .wait_with_output()
            .expect("python");
        check(&out, scenarios);
    }

    /// An `asc` subcommand with this rig's config.
    pub fn asc_cli(&self, args: &[&str]) -> Output {
        Command::new(bin("asc"))
            .args(args)
            .args(["--config", &self.config.to_string_lossy()])
            .output()
            .expect("asc cli")
    }

    /// Sends raw bytes to the reverse proxy and returns everything it
    /// answers until it closes or `wait` passes.
    pub fn raw(&self, request: &[u8], wait: Duration) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.asc_url.trim_start_matches("http://"))
            .expect("connect");
        s.set_read_timeout(Some(wait)).expect("timeout");
        s.write_all(request).expect("send");
        let mut out = vec![];
        let mut buf = [0u8; 8192];
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// A POST to the reverse proxy with the agent's key, `Connection: close`.
    pub fn post(&self, path: &str, body: &str) -> String {
        let req = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {SUB}\r\nx-api-key: {SUB}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        self.raw(req.as_bytes(), Duration::from_secs(20))
    }

    /// The session log file's whole text content (records as JSON lines).
    pub fn log_json(&self) -> String {
        let out = self.asc_cli(&["log", "tail", "-n", "100000", "--json"]);
        assert!(
            out.status.success(),
            "log tail: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// Asserts every scenario printed `ok NAME`.
pub fn check(out: &Output, scenarios: &[&str]) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for s in scenarios {
        assert!(
            stdout.lines().any(|l| l == format!("ok {s}")),
            "scenario {s} did not report ok\n{stdout}\n{stderr}"
        );
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.kill_asc();
        let _ = self.fake.kill();
        let _ = self.fake.wait();
    }
}
