//! What every Cordon binary does the same way at start: logs through
//! `tracing` to stderr (`RUST_LOG` honoured, `--log-format json` for
//! machines, no colour when stderr is not a terminal) and a cancellation
//! token fired by SIGINT or SIGTERM. Nothing else belongs here.

use std::io::IsTerminal;

use tokio_util::sync::CancellationToken;

/// Log output format (`--log-format`).
#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The logging options every binary takes.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Print debug logs (and error context).
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

impl LogArgs {
    /// Installs the global subscriber for these options.
    pub fn init(&self) {
        init(self.log_format, self.verbose);
    }
}

/// Installs the global subscriber: `RUST_LOG` if set, else `info`
/// (`debug` with `verbose`).
pub fn init(format: LogFormat, verbose: bool) {
    let default = if verbose { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// A token cancelled on the first SIGINT or SIGTERM.
pub fn shutdown_on_signal() -> CancellationToken {
    let stop = CancellationToken::new();
    let token = stop.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let terminated = async {
            match term.as_mut() {
                Some(t) => {
                    t.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminated => {}
        }
        token.cancel();
    });
    stop
}
