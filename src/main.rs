use std::process::ExitCode;

use clap::Parser;
use ispd::cli::{BadConfig, Cli};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(err) = dotenvy::dotenv() {
        if !err.not_found() {
            eprintln!("ispd: configuration error: .env: {err}");
            return ExitCode::from(2);
        }
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ispd: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(ispd::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is::<BadConfig>() => {
            eprintln!("ispd: {err}");
            ExitCode::from(2)
        }
        Err(err) => {
            eprintln!("ispd: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
