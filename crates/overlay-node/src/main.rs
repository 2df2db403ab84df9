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
        Command::Down { state_dir } => status::down(&state_dir).await.map_err(|e| (1, e)),
        Command::Exec {
            state_dir,
            netns,
            user,
            command,
        } => match overlay_node::sandbox::exec(&state_dir, netns.as_deref(), &user, &command) {
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
