//! The short churn soak for CI (the long one: `cargo run -p policyc-e2e --bin soak`): about 75 s
//! of random changes at 1,000 per minute against the real agents on a two-node flannel-vxlan
//! sandbox; at three sample points the probes must equal `policyc matrix` (no denied probe
//! passes after convergence), and each agent's RSS at the end stays within 1.5× + 20 MiB of its
//! RSS after the first sample.

use policyc_e2e::harness::{Enforcer, Sandbox};
use policyc_e2e::soak::{self, Config};
use policyc_e2e::topology::Kind;
use policyc_e2e::{policyc, prereq};

#[test]
fn churn_soak_matches_the_matrix_with_bounded_memory() {
    if !prereq::check("churn_soak_matches_the_matrix_with_bounded_memory") {
        return;
    }
    let bins = policyc::build().expect("building policyc and e2e-pod");
    let mut sb = Sandbox::new(
        bins,
        Kind::FlannelVxlan,
        2,
        false,
        soak::universe(),
        Enforcer::from_env(),
    )
    .expect("sandbox");
    let cfg = Config::short();
    let (report, result) = soak::run(&mut sb, &cfg);
    eprintln!("{}", report.summary());
    result.expect("soak");
    assert_eq!(report.denied_passes, 0);
    // The rate is a measurement (the machine may be loaded), printed above, not asserted.
    if report.rate_per_minute() < 0.8 * f64::from(cfg.changes_per_minute) {
        eprintln!(
            "note: the churn ran at {:.0}/min, below the {} asked for (a loaded machine)",
            report.rate_per_minute(),
            cfg.changes_per_minute
        );
    }
    assert_eq!(report.samples.len(), 3, "three sample points");
    soak::check_rss_bounded(&report, cfg.sample_every, 1.5, 20 * 1024).expect("agent memory bounded");
}
