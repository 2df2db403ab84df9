//! `asc`: parse arguments, set up logging, run.

use std::process::ExitCode;

use asc::cli::{Cli, Command};
use asc::config::Config;
use clap::Parser;

async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Serve {
            config,
            check_config,
        } => {
            let cfg = Config::load(&config.config)?;
            if check_config {
                asc::run::check(&cfg)?;
                println!(
                    "{}: configuration, policy and keys are valid",
                    config.config.display()
                );
                return Ok(0);
            }
            asc::run::serve(cfg, telemetry::shutdown_on_signal()).await?;
            Ok(0)
        }
        Command::McpStdio {
            config,
            server,
            command,
        } => {
            let code =
                asc::mcp::stdio::run(&Config::load(&config.config)?, &server, &command).await?;
            Ok(u8::try_from(code).unwrap_or(1))
        }
        Command::Log { cmd, config } => {
            asc::commands::log(cmd, &Config::load(&config.config)?).await
        }
        Command::Approvals { cmd, config } => {
            asc::commands::approvals(cmd, &Config::load(&config.config)?).await
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.log.init();
    match run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("asc: {e:#}");
            ExitCode::from(2)
        }
    }
}
