//! `treza`: the enclave deployment control plane on one machine.

use treza::cli::{self, ClientOpts};

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "treza",
    version,
    about = "Deploy confidential workloads into enclaves: the control plane on one machine."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server in the foreground: HTTP API, stream processor, workflow engine, runner.
    Up {
        #[arg(long, env = "TREZA_DATA_DIR", default_value = ".treza")]
        data_dir: PathBuf,
        #[arg(long, env = "TREZA_LISTEN", default_value = "127.0.0.1:7420")]
        listen: SocketAddr,
        /// How many Terraform runs may proceed at once.
        #[arg(long, default_value_t = 4)]
        max_concurrent_runs: usize,
    },
    /// Manage API keys (works while the server runs).
    Keys {
        #[command(subcommand)]
        command: cli::KeysCommand,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Create, inspect and destroy enclaves through the server.
    Enclave {
        #[command(subcommand)]
        command: cli::EnclaveCommand,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Validate, run and benchmark Step Functions state machines locally (no AWS account needed).
    Asl {
        #[command(subcommand)]
        command: cli::asl::AslCommand,
    },
    /// The Terraform runner (what the ECS task runs); configured by environment variables.
    #[command(hide = true)]
    Runner,
    /// The local provider's workload supervisor (called by providers/local).
    #[command(hide = true, disable_help_flag = true)]
    Workload {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Runner => ExitCode::from(clamp_code(treza_runner::runner_main())),
        Command::Workload { args } => {
            let mut full = vec!["workload".to_string()];
            full.extend(args);
            ExitCode::from(clamp_code(treza_runner::workload::workload_main(&full)))
        }
        Command::Up {
            data_dir,
            listen,
            max_concurrent_runs,
        } => {
            init_tracing();
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => return fail(&e.into()),
            };
            match rt.block_on(cli::up(data_dir, listen, max_concurrent_runs)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Command::Keys { command, opts } => {
            cli::keys(command, &opts).map_or_else(|e| fail(&e), |()| ExitCode::SUCCESS)
        }
        Command::Asl { command } => ExitCode::from(cli::asl::run(command)),
        Command::Enclave { command, opts } => match cli::enclave(command, &opts) {
            Ok(code) => ExitCode::from(code),
            Err(e) => fail(&e),
        },
    }
}

fn clamp_code(c: i32) -> u8 {
    u8::try_from(c).unwrap_or(1)
}

fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}");
    ExitCode::from(1)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TREZA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .init();
}
