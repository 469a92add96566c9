//! The node agent (not implemented yet: being written): watch → index → compile → one nft
//! transaction per change.

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("policyc agent is not implemented yet")
}
