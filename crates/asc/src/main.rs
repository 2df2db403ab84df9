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
            // Exit now: a read of the client's stdin may still be pending in
            // a blocking thread, and the runtime would wait for it on the
            // way out (a client that keeps its end open after the server
            // died would hang the wrapper). Everything is logged and
            // written by the time `run` returns.
            std::process::exit(code)
        }
        Command::Log { cmd, config } => {
            asc::commands::log(cmd, &Config::load(&config.config)?).await
        }
        Command::Pins { cmd, config } => {
            asc::commands::pins(cmd, &Config::load(&config.config)?).await
        }
        Command::Approvals { cmd, config } => {
            asc::commands::approvals(cmd, &Config::load(&config.config)?).await
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.log.init();
    // One MCP conversation runs best on one thread: no hand-offs between
    // workers on every message. The gateway uses every core.
    let runtime = if matches!(cli.command, Command::McpStdio { .. }) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    let result = match runtime {
        Ok(rt) => rt.block_on(run(cli)),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("asc: {e:#}");
            ExitCode::from(2)
        }
    }
}
