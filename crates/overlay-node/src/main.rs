//! `overlay-node`: parse arguments, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use overlay_node::cli::{Cli, Command};
use overlay_node::run::{self, UpConfig, UpError};
use overlay_node::status;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.log.init();
    let res: Result<String, (u8, String)> = match cli.command {
        Command::Up {
            token,
            state_dir,
            interface,
            listen_port,
            endpoint,
            metrics_listen,
        } => {
            let stop = telemetry::shutdown_on_signal();
            let cfg = UpConfig {
                token,
                state_dir,
                interface,
                listen_port,
                endpoint,
                metrics_listen,
            };
            run::up(cfg, stop)
                .await
                .map(|()| String::new())
                .map_err(|e| {
                    let code = if matches!(e, UpError::Usage | UpError::AlreadyJoined(_)) {
                        2
                    } else {
                        1
                    };
                    (code, e.to_string())
                })
        }
        Command::Status { state_dir, json } => match status::collect(&state_dir).await {
            Ok(s) if json => serde_json::to_string_pretty(&s)
                .map(|j| j + "\n")
                .map_err(|e| (1, e.to_string())),
            Ok(s) => Ok(status::render(&s)),
            Err(e) => Err((1, e.to_string())),
        },
        Command::Discover {
            json,
            catalog,
            report,
            state_dir,
        } => discover(json, &catalog, report, state_dir).await,
        Command::Down { state_dir } => status::down(&state_dir).await.map_err(|e| (1, e)),
        Command::Exec {
            state_dir,
            netns,
            user,
            env,
            command,
        } => match overlay_node::sandbox::exec(
            &state_dir,
            netns.as_deref(),
            &user,
            &env,
            &command,
            telemetry::shutdown_on_signal(),
        )
        .await
        {
            Ok(status) => {
                return ExitCode::from(status.code().map_or(1, |c| u8::try_from(c).unwrap_or(1)))
            }
            Err(e) => Err((1, e.to_string())),
        },
    };
    match res {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err((code, msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(code)
        }
    }
}

/// `overlay-node discover`.
async fn discover(
    json: bool,
    catalog: &[std::path::PathBuf],
    report: bool,
    state_dir: Option<std::path::PathBuf>,
) -> Result<String, (u8, String)> {
    use overlay_node::discover;
    let catalog = discover::catalog::Catalog::load(catalog).map_err(|e| (2, e.to_string()))?;
    let scope = discover::Scope {
        state_dirs: state_dir.iter().cloned().collect(),
        ..discover::Scope::default()
    };
    let inv = discover::scan(&catalog, &scope, overlay_node::discover::unix_now());
    let mut out = if json {
        serde_json::to_string_pretty(&inv).map_err(|e| (1, e.to_string()))? + "\n"
    } else {
        discover::render::table(&inv)
    };
    if report {
        let dir = state_dir.unwrap_or_default();
        let state = overlay_node::state::StateDir::open(&dir).map_err(|e| (1, e.to_string()))?;
        overlay_node::control::report_inventory(&state, &inv)
            .await
            .map_err(|e| (1, format!("reporting the inventory: {e}")))?;
        if !json {
            out.push_str("reported to the controller\n");
        }
    }
    Ok(out)
}
