//! The e2e suite: each topology built once, every scenario run on it with the real agent.
//! Tests that build namespaces take a process-wide lock: running them concurrently on a small
//! machine only makes probe timeouts flaky.

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use policyc_e2e::harness::{Enforcer, Sandbox};
use policyc_e2e::policyc::{self, Binaries};
use policyc_e2e::topology::Kind;
use policyc_e2e::{prereq, scenarios};

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn bins() -> Binaries {
    static BINS: OnceLock<Binaries> = OnceLock::new();
    BINS.get_or_init(|| policyc::build().expect("building policyc and e2e-pod"))
        .clone()
}

fn report(name: &str, sb: &Sandbox, started: Instant) {
    let (median, max) = sb.convergence_summary().unwrap_or_default();
    eprintln!(
        "{name}: {} steps in {:.1?}; convergence median {median:?}, max {max:?}",
        sb.convergence.len(),
        started.elapsed()
    );
    for (step, took) in &sb.convergence {
        eprintln!("  {took:>10.1?}  {step}");
    }
}

/// Without any enforcement everything must pass: checks the topology, servers and probes
/// themselves (so that a denial seen later is the policy's doing).
#[test]
fn plumbing_all_allowed_without_enforcement() {
    if !prereq::check("plumbing_all_allowed_without_enforcement") {
        return;
    }
    let _g = serial();
    let bins = bins();
    for kind in Kind::ALL {
        let started = Instant::now();
        let mut sb = Sandbox::new(bins.clone(), kind, 2, true, scenarios::universe(), Enforcer::None)
            .expect("sandbox");
        let mut state = scenarios::base();
        // Policies are written but nothing enforces them.
        state.policies = vec![scenarios::np(
            "alpha",
            "deny",
            "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n",
        )];
        sb.apply(state).expect("apply");
        for family in sb.families() {
            let mut m = sb.predicted(family).expect("matrix");
            for r in &mut m.results {
                r.allowed.iter_mut().flatten().for_each(|c| *c = true);
            }
            // The first packets can be lost while neighbours resolve (host-gw over IPv6): retry.
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut bad = sb.observe(&m).expect("observe");
            while !bad.is_empty() && Instant::now() < deadline {
                bad = sb.observe(&m).expect("observe");
            }
            assert!(
                bad.is_empty(),
                "{}: {family}: traffic fails without any policy:\n{}",
                kind.name(),
                bad.iter().map(|b| format!("  {b}\n")).collect::<String>()
            );
        }
        let bad = sb.node_to_local_pods().expect("node probes");
        assert!(bad.is_empty(), "{}: {bad:?}", kind.name());
        // Without policies every pod reaches the emulated service.
        sb.apply(scenarios::base()).expect("apply");
        let bad = sb
            .check_service(std::net::Ipv4Addr::new(198, 19, 0, 10), 80, "beta/web", 80)
            .expect("service probes");
        assert!(bad.is_empty(), "{}: service: {bad:?}", kind.name());
        probes_see_drops(&sb);
        eprintln!("{}: plumbing ok in {:.1?}", kind.name(), started.elapsed());
    }
}

fn topology(kind: Kind, dual_stack: bool) {
    let name = kind.name();
    if !prereq::check(name) {
        return;
    }
    let _g = serial();
    let bins = bins();
    let started = Instant::now();
    let mut sb = Sandbox::new(
        bins,
        kind,
        2,
        dual_stack,
        scenarios::universe(),
        Enforcer::from_env(),
    )
    .expect("sandbox");
    let res = scenarios::run_all(&mut sb);
    report(name, &sb, started);
    if let Err(e) = res {
        panic!("{e:#}");
    }
}

#[test]
fn flannel_vxlan_dual_stack() {
    topology(Kind::FlannelVxlan, true);
}

#[test]
fn flannel_host_gw_dual_stack() {
    topology(Kind::FlannelHostGw, true);
}

#[test]
fn kubenet_hostroutes() {
    topology(Kind::Kubenet, false);
}

#[test]
fn agent_restart_keeps_enforcing() {
    if !prereq::check("agent_restart_keeps_enforcing") {
        return;
    }
    let _g = serial();
    let bins = bins();
    let started = Instant::now();
    let mut sb = Sandbox::new(
        bins,
        Kind::FlannelVxlan,
        2,
        false,
        scenarios::universe(),
        Enforcer::from_env(),
    )
    .expect("sandbox");
    let res = scenarios::restart(&mut sb);
    report("agent_restart_keeps_enforcing", &sb, started);
    match res {
        Ok(rounds) => {
            eprintln!("agent restart: {rounds} probe rounds of denied flows during the restart, none passed")
        }
        Err(e) => panic!("{e:#}"),
    }
}

/// The probes detect a drop for each protocol: with a hand-written forward-chain drop of one TCP,
/// one UDP and the SCTP port on every node, forwarded pod-to-pod probes of exactly those fail.
fn probes_see_drops(sb: &Sandbox) {
    use policyc_e2e::probe::{Proto, Request};
    let script = "table inet e2e-check {\n chain forward { type filter hook forward priority 0; \
                  tcp dport 8081 drop; udp dport 53 drop; sctp dport 7777 drop; }\n}\n";
    for n in &sb.net.nodes {
        policyc_e2e::sh::exec_stdin(&n.ns.name, "nft", &["-f", "-"], Some(script)).expect("nft");
    }
    let pods = ["alpha/web", "beta/client", "alpha/api"]; // node-0, node-0, node-1
    let ports = [
        (80, Proto::Tcp),
        (8081, Proto::Tcp),
        (53, Proto::Udp),
        (7777, Proto::Sctp),
    ];
    let mut requests = Vec::new();
    let mut expect = Vec::new();
    for from in pods {
        let mut targets = Vec::new();
        for to in pods.iter().filter(|&&t| t != from) {
            for (port, proto) in ports {
                targets.push(sb.target(to, sb.pod_ip(to, false).expect("ip"), port, proto));
                expect.push((format!("{from} -> {to} {port}/{proto:?}"), port == 80));
            }
        }
        let ns = sb.pod_ns(from).expect("pod").to_string();
        requests.push((
            ns,
            Request {
                bind: None,
                timeout_ms: 400,
                targets,
            },
        ));
    }
    let got: Vec<bool> = sb
        .probe_all(&requests)
        .expect("probe")
        .into_iter()
        .flatten()
        .collect();
    let wrong: Vec<String> = expect
        .iter()
        .zip(&got)
        .filter(|((_, want), got)| want != *got)
        .map(|((l, want), _)| format!("{l}: expected {}", if *want { "pass" } else { "drop" }))
        .collect();
    for n in &sb.net.nodes {
        policyc_e2e::sh::exec(&n.ns.name, "nft", &["delete", "table", "inet", "e2e-check"]).expect("nft");
    }
    assert!(
        wrong.is_empty(),
        "{}: probes do not see nft drops: {wrong:?}",
        sb.net.kind.name()
    );
}
