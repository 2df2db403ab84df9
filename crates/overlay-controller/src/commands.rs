//! The admin subcommands: call the API, print a table (or JSON).

use std::io::Read;

use hyper::{Method, StatusCode};
use proto::api::{
    Chamber, CreateEnclave, CreateToken, Enclave, Member, PolicyInfo, PutCredential, PutPolicy,
    TokenCreated, Topology,
};
use proto::inventory::HostInventory;
use proto::ErrorBody;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::audit::{self, Verdict};
use crate::cli::{
    AuditCmd, ChamberCmd, ClientArgs, CredentialCmd, EnclaveCmd, InventoryCmd, MemberCmd,
    PolicyCmd, TokenCmd,
};
use crate::db;
use crate::table::{render, time};
use control_client::Client;

/// A failed subcommand: exit code and one line for stderr.
#[derive(Debug)]
pub struct CliError {
    /// 1 when the job failed, 2 for bad usage or bad input.
    pub exit: u8,
    /// What went wrong.
    pub message: String,
}

impl CliError {
    fn job(message: impl Into<String>) -> Self {
        Self {
            exit: 1,
            message: message.into(),
        }
    }
    fn input(message: impl Into<String>) -> Self {
        Self {
            exit: 2,
            message: message.into(),
        }
    }
}

type Out = Result<String, CliError>;

fn client(args: &ClientArgs) -> Result<Client, CliError> {
    let token = match std::env::var("CORDON_ADMIN_TOKEN") {
        Ok(t) => t,
        Err(_) => std::fs::read_to_string(&args.admin_token_file).map_err(|e| {
            CliError::input(format!(
                "cannot read the admin token from {}: {e} (set --admin-token-file or CORDON_ADMIN_TOKEN)",
                args.admin_token_file.display()
            ))
        })?,
    };
    let ca = std::fs::read(&args.ca_file).map_err(|e| {
        CliError::input(format!(
            "cannot read the CA certificate {}: {e} (set --ca-file)",
            args.ca_file.display()
        ))
    })?;
    Client::new(&args.controller, &ca, Some(token.trim().to_owned()))
        .map_err(|e| CliError::input(e.to_string()))
}

async fn call<T: DeserializeOwned>(
    c: &Client,
    method: Method,
    path: &str,
    body: Option<&impl Serialize>,
) -> Result<Option<T>, CliError> {
    let body = body
        .map(serde_json::to_vec)
        .transpose()
        .map_err(|e| CliError::input(e.to_string()))?;
    let (status, bytes) = c
        .send(method, path, body)
        .await
        .map_err(|e| CliError::job(e.to_string()))?;
    if status.is_success() {
        if status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        return serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| CliError::job(format!("unexpected response from the controller: {e}")));
    }
    let message = serde_json::from_slice::<ErrorBody>(&bytes)
        .map(|b| b.error.message)
        .unwrap_or_else(|_| format!("controller answered {status}"));
    let bad_input = matches!(
        status,
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNPROCESSABLE_ENTITY
    );
    Err(if bad_input {
        CliError::input(message)
    } else {
        CliError::job(message)
    })
}

fn required<T>(v: Option<T>) -> Result<T, CliError> {
    v.ok_or_else(|| CliError::job("the controller sent no body"))
}

fn json(v: &impl Serialize) -> Out {
    serde_json::to_string_pretty(v)
        .map(|s| s + "\n")
        .map_err(|e| CliError::job(e.to_string()))
}

const NONE: Option<&()> = None;

fn enclave_rows(list: &[Enclave]) -> String {
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|e| {
            vec![
                e.name.to_string(),
                e.cidr.to_string(),
                if e.agent_to_agent { "yes" } else { "no" }.into(),
                e.members.to_string(),
                e.version.to_string(),
                time(e.created_at),
            ]
        })
        .collect();
    render(
        &[
            "NAME",
            "CIDR",
            "AGENT-TO-AGENT",
            "MEMBERS",
            "VERSION",
            "CREATED",
        ],
        &rows,
    )
}

/// `enclave …`
pub async fn enclave(cmd: EnclaveCmd, args: &ClientArgs) -> Out {
    let c = client(args)?;
    match cmd {
        EnclaveCmd::Create {
            name,
            cidr,
            no_agent_to_agent,
        } => {
            let req = CreateEnclave {
                name,
                cidr,
                agent_to_agent: Some(!no_agent_to_agent),
            };
            let e: Enclave =
                required(call(&c, Method::POST, "/api/v1/enclaves", Some(&req)).await?)?;
            if args.json {
                json(&e)
            } else {
                Ok(enclave_rows(&[e]))
            }
        }
        EnclaveCmd::List => {
            let list: Vec<Enclave> =
                required(call(&c, Method::GET, "/api/v1/enclaves", NONE).await?)?;
            if args.json {
                json(&list)
            } else {
                Ok(enclave_rows(&list))
            }
        }
        EnclaveCmd::Show { name } => {
            let e: Enclave =
                required(call(&c, Method::GET, &format!("/api/v1/enclaves/{name}"), NONE).await?)?;
            let t: Topology = required(
                call(
                    &c,
                    Method::GET,
                    &format!("/api/v1/enclaves/{name}/topology"),
                    NONE,
                )
                .await?,
            )?;
            if args.json {
                return json(&serde_json::json!({"enclave": e, "topology": t}));
            }
            let rows: Vec<Vec<String>> = t
                .members
                .iter()
                .map(|m| {
                    let peers: Vec<String> = m.peers.iter().map(ToString::to_string).collect();
                    vec![
                        m.name.to_string(),
                        m.role.to_string(),
                        m.address.to_string(),
                        peers.join(","),
                    ]
                })
                .collect();
            Ok(enclave_rows(&[e])
                + "\n"
                + &render(&["MEMBER", "ROLE", "ADDRESS", "REACHES"], &rows))
        }
        EnclaveCmd::Delete { name } => {
            call::<()>(
                &c,
                Method::DELETE,
                &format!("/api/v1/enclaves/{name}"),
                NONE,
            )
            .await?;
            Ok(format!(
                "deleted enclave {name}; every member was revoked\n"
            ))
        }
    }
}

/// `token …`
pub async fn token(cmd: TokenCmd, args: &ClientArgs) -> Out {
    let c = client(args)?;
    let TokenCmd::Create {
        enclave,
        role,
        ttl,
        uses,
        name,
        member_ttl,
    } = cmd;
    let req = CreateToken {
        role,
        ttl_seconds: Some(ttl),
        uses: Some(uses),
        member_name: name,
        member_ttl_seconds: member_ttl,
    };
    let t: TokenCreated = required(
        call(
            &c,
            Method::POST,
            &format!("/api/v1/enclaves/{enclave}/tokens"),
            Some(&req),
        )
        .await?,
    )?;
    if args.json {
        json(&t)
    } else {
        Ok(t.token + "\n")
    }
}

/// `member …`
pub async fn member(cmd: MemberCmd, args: &ClientArgs) -> Out {
    let c = client(args)?;
    match cmd {
        MemberCmd::List { enclave } => {
            let list: Vec<Member> = required(
                call(
                    &c,
                    Method::GET,
                    &format!("/api/v1/enclaves/{enclave}/members"),
                    NONE,
                )
                .await?,
            )?;
            if args.json {
                return json(&list);
            }
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|m| {
                    vec![
                        m.name.to_string(),
                        m.role.to_string(),
                        m.address.to_string(),
                        m.endpoint.clone().unwrap_or_else(|| "-".into()),
                        time(m.joined_at),
                        m.expires_at.map_or_else(|| "-".into(), time),
                        time(m.last_seen),
                    ]
                })
                .collect();
            Ok(render(
                &[
                    "NAME",
                    "ROLE",
                    "ADDRESS",
                    "ENDPOINT",
                    "JOINED",
                    "EXPIRES",
                    "LAST-SEEN",
                ],
                &rows,
            ))
        }
        MemberCmd::Remove { enclave, member } => {
            call::<()>(
                &c,
                Method::DELETE,
                &format!("/api/v1/enclaves/{enclave}/members/{member}"),
                NONE,
            )
            .await?;
            Ok(format!(
                "removed {member} from {enclave}: out of every netmap, node token revoked\n"
            ))
        }
    }
}

/// `chamber …`
pub async fn chamber(cmd: ChamberCmd, args: &ClientArgs) -> Out {
    let c = client(args)?;
    let ChamberCmd::Create {
        enclave,
        name,
        asset,
        allow,
    } = cmd;
    let req = Chamber { name, asset, allow };
    let ch: Chamber = required(
        call(
            &c,
            Method::POST,
            &format!("/api/v1/enclaves/{enclave}/chambers"),
            Some(&req),
        )
        .await?,
    )?;
    if args.json {
        return json(&ch);
    }
    let allow: Vec<String> = ch.allow.iter().map(ToString::to_string).collect();
    Ok(render(
        &["CHAMBER", "ASSET", "ALLOW"],
        &[vec![
            ch.name.to_string(),
            ch.asset.to_string(),
            allow.join(","),
        ]],
    ))
}

/// `credential …` (the secret comes from standard input)
pub async fn credential(cmd: CredentialCmd, args: &ClientArgs, stdin: impl Read) -> Out {
    let CredentialCmd::Set { name, provider } = cmd;
    let mut secret = String::new();
    stdin
        .take(64 * 1024)
        .read_to_string(&mut secret)
        .map_err(|e| CliError::input(format!("cannot read the secret from standard input: {e}")))?;
    let secret = secret.trim().to_owned();
    if secret.is_empty() {
        return Err(CliError::input("no secret on standard input"));
    }
    let c = client(args)?;
    let req = PutCredential { provider, secret };
    let info: proto::api::CredentialInfo = required(
        call(
            &c,
            Method::PUT,
            &format!("/api/v1/credentials/{name}"),
            Some(&req),
        )
        .await?,
    )?;
    if args.json {
        json(&info)
    } else {
        Ok(format!(
            "stored credential {name} ({provider}) in the vault\n"
        ))
    }
}

/// `policy …`
pub async fn policy(cmd: PolicyCmd, args: &ClientArgs) -> Out {
    let c = client(args)?;
    match cmd {
        PolicyCmd::Set { enclave, file } => {
            let content = std::fs::read_to_string(&file)
                .map_err(|e| CliError::input(format!("cannot read {}: {e}", file.display())))?;
            let p: PolicyInfo = required(
                call(
                    &c,
                    Method::PUT,
                    &format!("/api/v1/enclaves/{enclave}/policy"),
                    Some(&PutPolicy { content }),
                )
                .await?,
            )?;
            if args.json {
                json(&p)
            } else {
                Ok(format!(
                    "policy of {enclave} is now version {}\n",
                    p.version
                ))
            }
        }
        PolicyCmd::Show { enclave } => {
            let p: PolicyInfo = required(
                call(
                    &c,
                    Method::GET,
                    &format!("/api/v1/enclaves/{enclave}/policy"),
                    NONE,
                )
                .await?,
            )?;
            if args.json {
                json(&p)
            } else {
                Ok(format!(
                    "# policy of {enclave}, version {}, set {}\n{}",
                    p.version,
                    time(p.updated_at),
                    p.content
                ))
            }
        }
    }
}

/// `inventory list [--unmanaged]`.
pub async fn inventory(cmd: InventoryCmd, args: &ClientArgs) -> Out {
    let c = client(args)?;
    let InventoryCmd::List { unmanaged } = cmd;
    let path = format!("/api/v1/inventory?unmanaged={unmanaged}");
    let list: Vec<HostInventory> = required(call(&c, Method::GET, &path, NONE).await?)?;
    if args.json {
        return json(&list);
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .flat_map(|h| {
            h.inventory.agents.iter().map(move |a| {
                vec![
                    h.inventory.host.clone(),
                    a.pid.to_string(),
                    a.user.clone(),
                    a.kind.as_str().to_owned(),
                    a.entry.clone().unwrap_or_else(|| "-".into()),
                    a.enclave.clone().unwrap_or_else(|| "UNMANAGED".into()),
                    a.env_names.join(","),
                    a.command.chars().take(60).collect(),
                ]
            })
        })
        .collect();
    Ok(render(
        &[
            "HOST", "PID", "USER", "KIND", "ENTRY", "ENCLAVE", "LLM-ENV", "COMMAND",
        ],
        &rows,
    ))
}

/// `audit verify`: reads the database directly, not the API.
pub async fn audit(cmd: AuditCmd) -> Out {
    let AuditCmd::Verify {
        data_dir,
        database_url,
    } = cmd;
    let url = match database_url {
        Some(u) => u,
        None => {
            let file = data_dir.join("controller.db");
            if !file.exists() {
                return Err(CliError::input(format!(
                    "no controller database at {}",
                    file.display()
                )));
            }
            // Read-only: verifying must never create or change anything.
            format!("sqlite://{}?mode=ro", file.display())
        }
    };
    let mut conn = db::connect_once(&url)
        .await
        .map_err(|e| CliError::job(e.to_string()))?;
    match audit::verify(&mut conn)
        .await
        .map_err(|e| CliError::job(e.to_string()))?
    {
        Verdict::Intact { records } => Ok(format!("audit log intact: {records} records\n")),
        Verdict::Broken { seq, reason } => Err(CliError::job(format!(
            "audit log BROKEN at record {seq}: {reason}"
        ))),
    }
}
