//! `policyc-bench`: see the library's overview.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    policyc_bench::run(policyc_bench::Args::parse())
}
