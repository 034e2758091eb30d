//! `diego-fixture-app`: the fixture app as a program (see `diego_executor::fixture_app`).

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = diego_executor::fixture_app::Args::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fixture app: no runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(diego_executor::fixture_app::run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fixture app: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
