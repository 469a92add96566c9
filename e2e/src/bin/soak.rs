//! The long churn soak (a documented command, not part of `cargo test`): a two-node
//! flannel-vxlan sandbox with the real agents, random changes at a fixed rate, samples where the
//! probes must equal `policyc matrix`, and the agents' CPU and RSS over time.
//!
//! `sudo cargo run -p policyc-e2e --bin soak -- --minutes 10`

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use policyc_e2e::harness::{Enforcer, Sandbox};
use policyc_e2e::soak::{self, Config};
use policyc_e2e::topology::Kind;

#[derive(Parser)]
struct Args {
    /// Minutes of churn.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// Changes per minute.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Seconds of churn between sample points.
    #[arg(long, default_value_t = 60)]
    sample_secs: u64,
    /// Milliseconds between writes of the manifest directory (the changes made meanwhile land
    /// together; the agent's directory source needs the files stable for two 250 ms polls).
    #[arg(long, default_value_t = 600)]
    write_ms: u64,
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Most pods at any time.
    #[arg(long, default_value_t = 10)]
    max_pods: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(reason) = policyc_e2e::prereq::missing() {
        eprintln!("cannot build the sandbox: {reason}");
        return ExitCode::from(2);
    }
    let _ = ctrlc::set_handler(|| {
        policyc_e2e::netns::destroy_own_runs();
        eprintln!("interrupted; sandbox removed");
        std::process::exit(130);
    });
    let run = || -> anyhow::Result<(soak::Report, anyhow::Result<()>)> {
        let bins = policyc_e2e::policyc::build()?;
        let mut sb = Sandbox::new(
            bins,
            Kind::FlannelVxlan,
            2,
            false,
            soak::universe(),
            Enforcer::from_env(),
        )?;
        let cfg = Config {
            duration: Duration::from_secs_f64(args.minutes * 60.0),
            changes_per_minute: args.rate,
            sample_every: Duration::from_secs(args.sample_secs),
            write_every: Duration::from_millis(args.write_ms),
            verify_rounds: 3,
            seed: args.seed,
            max_pods: args.max_pods,
        };
        eprintln!(
            "soak: {:.1} min at {}/min, samples every {} s ...",
            args.minutes, args.rate, args.sample_secs
        );
        let (report, result) = soak::run(&mut sb, &cfg);
        let bounded = soak::check_rss_bounded(&report, Duration::from_secs(60), 1.5, 20 * 1024);
        Ok((report, result.and(bounded)))
    };
    match run() {
        Ok((report, result)) => {
            println!("{}", report.summary());
            match result {
                Ok(()) => {
                    println!("PASS");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    println!("FAIL: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
