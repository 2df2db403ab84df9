//! `overlay-controller`: parse arguments, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use overlay_controller::cli::{Cli, Command, ServeArgs};
use overlay_controller::commands::{self, CliError};
use overlay_controller::server::{self, ServeConfig};

async fn serve(args: ServeArgs) -> Result<String, CliError> {
    let shutdown = telemetry::shutdown_on_signal();
    let cfg = ServeConfig {
        listen: args.listen,
        data_dir: args.data_dir.clone(),
        database_url: args.database_url,
        advertise_url: args.advertise_url,
        pool: args.pool,
        metrics_listen: args.metrics_listen,
        max_connections: args.max_connections,
        client_timeout: std::time::Duration::from_secs(args.client_timeout),
    };
    let running = server::start(cfg, shutdown.clone())
        .await
        .map_err(|e| CliError {
            exit: 1,
            message: e.to_string(),
        })?;
    if running.new_admin_token.is_some() {
        // Never printed: stdout of a service ends up in journals. The file
        // (0600) is the only copy.
        println!(
            "admin token created in {} (mode 0600)",
            args.data_dir.join("admin.token").display()
        );
    }
    println!("listening on https://{}", running.addr);
    running.wait().await;
    Ok(String::new())
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    cli.log.init();
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Enclave { cmd, client } => commands::enclave(cmd, &client).await,
        Command::Token { cmd, client } => commands::token(cmd, &client).await,
        Command::Member { cmd, client } => commands::member(cmd, &client).await,
        Command::Chamber { cmd, client } => commands::chamber(cmd, &client).await,
        Command::Credential { cmd, client } => {
            commands::credential(cmd, &client, std::io::stdin()).await
        }
        Command::Policy { cmd, client } => commands::policy(cmd, &client).await,
        Command::Inventory { cmd, client } => commands::inventory(cmd, &client).await,
        Command::Audit { cmd } => commands::audit(cmd).await,
    };
    match result {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", e.message);
            ExitCode::from(e.exit)
        }
    }
}
