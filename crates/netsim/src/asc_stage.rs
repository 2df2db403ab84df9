//! The stage of the ASC demo, shared by `netsim demo asc` and `netsim
//! hostile`: the demo-asc topology up, a provider on an "internet"
//! namespace only the underlay reaches, the real keys in the controller's
//! vault, the policy in the controller, and the gateway member's ASC
//! following the controller.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use proto::api::Provider;

use crate::lab::Ns;
use crate::run::{wait_for, Bins, Running};
use crate::topology::Topology;

/// The protected design registered with the policy's fingerprints.
const DESIGN: &str = include_str!("../../../configs/protected/nightjar_alu.v");

/// The policy's model allow-list, and the one a policy change adds.
pub(crate) const MODELS: &str = r#""gpt-4o*", "claude-*""#;

fn random_hex(n: usize) -> Result<String> {
    use std::io::Read;
    let mut b = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

pub(crate) fn policy(protected: &Path, models: &str) -> String {
    format!(
        r#"[models]
allow = [{models}]

[tools]
deny = ["delete_*"]

[dlp]
packs = ["secrets"]
action = "block"
fingerprint_dirs = ["{}"]

[credentials]
openai = "openai-prod"
anthropic = "anthropic-prod"
"#,
        protected.display()
    )
}

fn asc_config(dir: &Path, gateway_state: &Path, upstream: &str, ca: &Path) -> String {
    let mut s = String::from("enclave = \"project-a\"\n\n[listen]\nadmin = \"127.0.0.1:8081\"\n\n");
    for p in ["openai", "anthropic"] {
        s.push_str(&format!(
            "[upstream.{p}]\nbase_url = \"https://{upstream}\"\nca_file = \"{}\"\n\n",
            ca.display()
        ));
    }
    s.push_str(&format!(
        "[policy]\ncontroller = true\n\n[controller]\nstate_dir = \"{}\"\n\n\
         [interception]\nca_dir = \"{}\"\n\n[log]\ndatabase = \"{}\"\n\n[admin]\ntoken_file = \"{}\"\n",
        gateway_state.display(),
        dir.join("asc-ca").display(),
        dir.join("asc-log.db").display(),
        dir.join("asc-admin.token").display()
    ));
    s
}

/// Runs `python3 -c CODE ARGS…` in namespace `ns`; its stdout.
pub(crate) fn python_in(ns: &str, code: &str, args: &[&str]) -> Result<String> {
    let mut argv = vec!["netns", "exec", ns, "/usr/bin/python3", "-c", code];
    argv.extend_from_slice(args);
    crate::lab::command("ip", &argv)
}

const GET_TLS: &str = "import ssl,sys,urllib.request\n\
ctx=ssl.create_default_context(cafile=sys.argv[2])\n\
print(urllib.request.urlopen(sys.argv[1],context=ctx,timeout=5).read().decode())";

/// Every request the provider received, as its `/_fake/requests` lists
/// them.
///
/// # Errors
/// When the provider does not answer.
pub(crate) fn provider_requests(
    inet: &Ns,
    upstream: &str,
    tls: &Path,
) -> Result<Vec<serde_json::Value>> {
    let ca = tls.join("ca.pem").display().to_string();
    Ok(serde_json::from_str(&python_in(
        &inet.name,
        GET_TLS,
        &[&format!("https://{upstream}/_fake/requests"), &ca],
    )?)?)
}

/// The demo's stage, also used by `netsim hostile`: the topology up, a
/// provider on an "internet" namespace only the underlay reaches, the real
/// keys in the vault, the policy in the controller, and the gateway's ASC
/// following the controller.
pub struct Stage {
    /// The running topology.
    pub run: Running,
    /// Index of the agent member (`agent-1`).
    pub agent: usize,
    /// Index of the gateway member (`asc`).
    pub gw: usize,
    /// The provider's namespace.
    pub inet: Ns,
    /// The provider's `address:443`.
    pub upstream: String,
    /// The provider's TLS dir (its CA in `ca.pem`).
    pub tls: PathBuf,
    /// The real OpenAI key (in the vault).
    pub real_openai: String,
    /// The real Anthropic key (in the vault).
    pub real_anthropic: String,
    /// Where the protected design is registered.
    pub protected: PathBuf,
    /// The ASC's configuration file.
    pub config: PathBuf,
    /// The ASC process.
    pub asc_proc: usize,
}

/// Brings [`Stage`] up on `topo` (the demo's topology).
///
/// # Errors
/// When a step fails; everything made so far is removed.
pub async fn bring_up(topo: Topology, bins: Bins) -> Result<Stage> {
    let mut run = Running::start(topo, bins, false).await?;
    let agent = run.index("agent-1").context("agent-1 in the topology")?;
    let gw = run.index("asc").context("asc in the topology")?;
    let enclave = run.members[agent].enclave.clone();
    let dir = run.lab.dir.clone();
    let gw_ns = run.hosts[run.members[gw].host].name.clone();

    // The provider, on a namespace only the underlay reaches.
    let inet = run.lab.add_ns("internet")?;
    let tls = dir.join("internet-tls");
    let upstream = format!("{}:443", inet.addr);
    let real_openai = format!("sk-real-openai-{}", random_hex(16)?);
    let real_anthropic = format!("sk-ant-real-{}", random_hex(16)?);
    let fake = run.bins.fake_upstream.display().to_string();
    let tls_s = tls.display().to_string();
    let fake_proc = run.lab.spawn(
        "fake-upstream",
        &inet.name,
        &[
            &fake,
            "--listen",
            &upstream,
            "--tls-dir",
            &tls_s,
            "--openai-key",
            &real_openai,
            "--anthropic-key",
            &real_anthropic,
        ],
        &[],
    )?;
    let fake_log = run.lab.log_path("fake-upstream");
    wait_for(
        "the fake provider to listen",
        Duration::from_secs(20),
        || Ok(std::fs::read_to_string(&fake_log).is_ok_and(|l| l.contains("listening on"))),
    )
    .await
    .with_context(|| run.lab.log_tail("fake-upstream", 10))?;
    let _ = fake_proc;
    eprintln!("netsim: provider APIs up at https://{upstream} (internet namespace)");

    // Keys into the vault, policy into the controller.
    let protected = dir.join("protected");
    std::fs::create_dir_all(&protected)?;
    std::fs::write(protected.join("nightjar_alu.v"), DESIGN)?;
    run.admin
        .put_credential("openai-prod", Provider::Openai, &real_openai)
        .await?;
    run.admin
        .put_credential("anthropic-prod", Provider::Anthropic, &real_anthropic)
        .await?;
    run.admin
        .set_policy(&enclave, &policy(&protected, MODELS))
        .await?;

    // The gateway's ASC, in controller mode.
    let config = dir.join("asc.toml");
    std::fs::write(
        &config,
        asc_config(
            &dir,
            &run.members[gw].state_dir,
            &upstream,
            &tls.join("ca.pem"),
        ),
    )?;
    let asc_bin = run.bins.asc.display().to_string();
    let config_s = config.display().to_string();
    let asc_proc = run.lab.spawn(
        "asc",
        &gw_ns,
        &[&asc_bin, "serve", "--config", &config_s],
        &[],
    )?;
    let asc_log = run.lab.log_path("asc");
    wait_for(
        "the ASC to apply the enclave's configuration",
        Duration::from_secs(30),
        || {
            Ok(std::fs::read_to_string(&asc_log).is_ok_and(|l| {
                l.contains("gateway configuration applied") && l.contains("agents=1")
            }))
        },
    )
    .await
    .with_context(|| run.lab.log_tail("asc", 20))?;
    eprintln!("netsim: the gateway's ASC follows the controller");
    Ok(Stage {
        run,
        agent,
        gw,
        inet,
        upstream,
        tls,
        real_openai,
        real_anthropic,
        protected,
        config,
        asc_proc,
    })
}
