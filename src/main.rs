//! The `policyc` binary. Everything lives in the library crate (so tests can reach it); `main`
//! only hands over to the CLI.

fn main() -> std::process::ExitCode {
    policyc::cli::main()
}
