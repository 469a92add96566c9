//! Faults the agent must survive, with real traffic in the sandbox (issue 8): agents killed,
//! restarted and replaced while every cell of the matrix is probed; nft failing in three ways;
//! invalid policies. "Denied" and "allowed" always mean what `policyc matrix` predicts.
//! Tests that build namespaces take a process-wide lock (see clusters.rs).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use policyc_e2e::harness::{probe_all, Enforcer, Sandbox, Session, PROBE_TIMEOUT_MS};
use policyc_e2e::manifest::State;
use policyc_e2e::policyc::{self, Binaries, Matrix};
use policyc_e2e::probe::{Proto, Request};
use policyc_e2e::scenarios::{self, np};
use policyc_e2e::topology::Kind;
use policyc_e2e::{prereq, sh};

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn bins() -> Binaries {
    static BINS: OnceLock<Binaries> = OnceLock::new();
    BINS.get_or_init(|| policyc::build().expect("building policyc and e2e-pod"))
        .clone()
}

fn sandbox() -> Sandbox {
    Sandbox::new(
        bins(),
        Kind::FlannelVxlan,
        2,
        false,
        scenarios::universe(),
        Enforcer::Agent,
    )
    .expect("sandbox")
}

fn with(mut s: State, policies: &[String]) -> State {
    s.policies = policies.to_vec();
    s
}

fn deny_all(ns: &str, types: &str) -> String {
    np(
        ns,
        "deny-all",
        &format!("  podSelector: {{}}\n  policyTypes: [{types}]\n"),
    )
}

fn db_from_web() -> String {
    np(
        "alpha",
        "db-from-web",
        "  podSelector:\n    matchLabels: {app: db}\n  ingress:\n  - from:\n    - podSelector:\n        matchLabels: {app: web}\n    ports:\n    - port: 80\n",
    )
}

/// One probed cell and what the old and the new state predict for it.
#[derive(Clone, Debug)]
struct Cell {
    label: String,
    before: bool,
    after: bool,
}

/// The matrix of `dir` (ipv4, TCP 80/8080 and UDP 53) as one prober request per source pod,
/// with each cell's prediction under `before` and `after` (the same directory or another).
/// One prober request per source namespace.
type Probes = Vec<(String, Request)>;

fn matrix_probes(sb: &Sandbox, before: &Path, after: &Path) -> Result<(Probes, Vec<Cell>)> {
    let keep =
        |r: &policyc::PortResult| matches!((r.port, r.protocol.as_str()), (80 | 8080, "TCP") | (53, "UDP"));
    let m0: Matrix = policyc::predicted_matrix(&sb.bins, before, "ipv4")?;
    let m1: Matrix = policyc::predicted_matrix(&sb.bins, after, "ipv4")?;
    if m0.pods != m1.pods {
        bail!("the two states have different pods");
    }
    let mut requests = Vec::new();
    let mut cells = Vec::new();
    for (i, src) in m0.pods.iter().enumerate() {
        let mut targets = Vec::new();
        for (r0, r1) in m0.results.iter().zip(&m1.results).filter(|(r, _)| keep(r)) {
            let proto: Proto = serde_json::from_value(serde_json::json!(r0.protocol))?;
            for (j, dst) in m0.pods.iter().enumerate() {
                let ip = sb
                    .pod_ip(dst, false)
                    .with_context(|| format!("{dst} has no IPv4"))?;
                targets.push(sb.target(dst, ip, r0.port, proto));
                cells.push(Cell {
                    label: format!("{src} -> {dst} {}/{}", r0.port, r0.protocol),
                    before: r0.allowed[i][j],
                    after: r1.allowed[i][j],
                });
            }
        }
        requests.push((
            sb.pod_ns(src).context("pod")?.to_string(),
            Request {
                bind: sb.bind_of(src, false),
                timeout_ms: PROBE_TIMEOUT_MS,
                targets,
            },
        ));
    }
    Ok((requests, cells))
}

/// A copy of the manifest directory as it is now (the "old" state of a change).
fn snapshot(sb: &Sandbox) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for e in std::fs::read_dir(sb.dir.path()).expect("manifest dir") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, dir.path().join(p.file_name().expect("file"))).expect("copy");
    }
    dir
}

#[derive(Default, Debug, Clone)]
struct Tally {
    rounds: usize,
    probes: usize,
    denied_probes: usize,
    denied_passes: Vec<String>,
    allowed_probes: usize,
    allowed_failures: Vec<String>,
}

fn table(sb: &Sandbox, node: usize) -> String {
    sh::exec(
        &sb.net.nodes[node].ns.name,
        "nft",
        &["list", "table", "inet", "policyc"],
    )
    .unwrap_or_default()
}

/// Issue 8, "restart under traffic": every cell of the matrix is probed continuously while
/// (1) every agent is SIGKILLed, a change is written, and the agents restart; (2) a rolling
/// update replaces each agent (SIGTERM, then a new one with `--log-drops`, so the table
/// changes); (3) a surge update starts the new agent (without `--log-drops`, another port)
/// before the old one stops. Denied cells never pass; two established TCP connections keep
/// exchanging data throughout; allowed cells that failed are printed, not hidden.
#[test]
fn restart_and_rolling_update_under_traffic() {
    if !prereq::check("restart_and_rolling_update_under_traffic") {
        return;
    }
    let _g = serial();
    let mut sb = sandbox();
    let client_egress = np(
        "beta",
        "client-egress",
        "  podSelector:\n    matchLabels: {app: client}\n  policyTypes: [Egress]\n  egress:\n  - to:\n    - namespaceSelector: {}\n      podSelector:\n        matchLabels: {app: web}\n    ports:\n    - {port: 80, protocol: TCP}\n",
    );
    let state = with(
        scenarios::base(),
        &[db_from_web(), deny_all("beta", "Ingress"), client_egress],
    );
    let since = sb.apply(state.clone()).unwrap();
    sb.start_agents().unwrap();
    sb.converge("initial", since, Duration::from_secs(10)).unwrap();
    let before = snapshot(&sb);
    // The change written while the agents are dead: api loses all ingress.
    let mut changed = state.clone();
    changed.policies.push(np(
        "alpha",
        "api-deny",
        "  podSelector:\n    matchLabels: {app: api}\n  policyTypes: [Ingress]\n",
    ));
    // The changed manifests, written aside only to compute the predictions.
    let after_dir = tempfile::tempdir().unwrap();
    let nodes: Vec<Vec<std::net::IpAddr>> = sb.net.nodes.iter().map(|n| n.ips()).collect();
    let ips: std::collections::BTreeMap<String, Vec<std::net::IpAddr>> = changed
        .pods
        .iter()
        .map(|p| (p.key(), sb.pod_ip(&p.key(), false).into_iter().collect()))
        .collect();
    policyc_e2e::manifest::write(after_dir.path(), &changed, &nodes, |p| ips[&p.key()].clone()).unwrap();
    let (requests, cells) = matrix_probes(&sb, before.path(), after_dir.path()).unwrap();
    let (changing, stable): (Vec<_>, Vec<_>) = cells.iter().partition(|c| c.before != c.after);
    assert!(!changing.is_empty(), "the change must change some cells");
    assert!(
        stable.iter().any(|c| !c.before) && stable.iter().any(|c| c.before),
        "both allowed and denied cells are probed"
    );

    let ip = |k: &str| sb.pod_ip(k, false).unwrap();
    // Established connections: cross-node into an isolated pod, and same-node out of an
    // egress-isolated pod.
    let mut sessions = vec![
        (
            "alpha/web -> alpha/db:80",
            Session::open(
                &sb.bins.pod,
                sb.pod_ns("alpha/web").unwrap(),
                (ip("alpha/db"), 80).into(),
            )
            .unwrap(),
        ),
        (
            "beta/client -> alpha/web:80",
            Session::open(
                &sb.bins.pod,
                sb.pod_ns("beta/client").unwrap(),
                (ip("alpha/web"), 80).into(),
            )
            .unwrap(),
        ),
    ];
    let mut exchanges = 0usize;
    let mut exchange = |sessions: &mut Vec<(&str, Session)>, when: &str| -> Result<()> {
        for (name, s) in sessions.iter_mut() {
            s.exchange(when)
                .with_context(|| format!("established {name}: {when}"))?;
            exchanges += 1;
        }
        Ok(())
    };
    exchange(&mut sessions, "before").unwrap();

    const PHASES: [&str; 3] = [
        "SIGKILL all agents, change, restart",
        "rolling update: SIGTERM, then new agent with --log-drops",
        "surge update: new agent (no --log-drops, port 9751) ready, then SIGTERM old",
    ];
    let phase = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let pod_bin = sb.bins.pod.clone();
    let started = Instant::now();
    let (tallies, result) = std::thread::scope(|s| {
        let prober = s.spawn(|| -> Result<Vec<Tally>> {
            let mut t = vec![Tally::default(); PHASES.len()];
            while !stop.load(Ordering::Relaxed) {
                let p = phase.load(Ordering::Relaxed);
                let res = probe_all(&pod_bin, &requests)?;
                let at = started.elapsed();
                let t = &mut t[p];
                t.rounds += 1;
                for (ok, c) in res.iter().flatten().zip(&cells) {
                    t.probes += 1;
                    // A changing cell may flip at any moment of the handover: not counted.
                    if c.before != c.after {
                        continue;
                    }
                    if c.before {
                        t.allowed_probes += 1;
                        if !ok {
                            t.allowed_failures.push(format!("{at:.1?}: {}", c.label));
                        }
                    } else {
                        t.denied_probes += 1;
                        if *ok {
                            t.denied_passes.push(format!("{at:.1?}: {}", c.label));
                        }
                    }
                }
            }
            Ok(t)
        });
        let mut run = || -> Result<()> {
            std::thread::sleep(Duration::from_millis(800));
            for n in 0..sb.net.nodes.len() {
                sb.agent_mut(n).kill();
            }
            exchange(&mut sessions, "agents dead")?;
            let written = sb.apply(changed.clone())?;
            std::thread::sleep(Duration::from_millis(1000));
            for n in 0..sb.net.nodes.len() {
                sb.restart_agent(n)?;
            }
            exchange(&mut sessions, "restarted")?;
            sb.converge("change made while no agent ran", written, Duration::from_secs(15))?;
            exchange(&mut sessions, "converged")?;

            phase.store(1, Ordering::Relaxed);
            let listen: SocketAddr = policyc::AGENT_LISTEN.parse()?;
            for n in 0..sb.net.nodes.len() {
                let took = sb.replace_agent(n, vec!["--log-drops".into()], listen, false)?;
                eprintln!("rolling update of node-{n}: new agent ready after {took:.1?}");
                exchange(&mut sessions, &format!("node-{n} rolled"))?;
                if !table(&sb, n).contains("log prefix") {
                    bail!(
                        "node-{n}: the new agent's --log-drops table is not in place:\n{}",
                        table(&sb, n)
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(2000));

            phase.store(2, Ordering::Relaxed);
            let surge: SocketAddr = "127.0.0.1:9751".parse()?;
            for n in 0..sb.net.nodes.len() {
                let took = sb.replace_agent(n, Vec::new(), surge, true)?;
                eprintln!("surge update of node-{n}: new agent ready after {took:.1?}");
                exchange(&mut sessions, &format!("node-{n} surged"))?;
                if table(&sb, n).contains("log prefix") {
                    bail!("node-{n}: the new agent's table (no --log-drops) is not in place");
                }
            }
            std::thread::sleep(Duration::from_millis(2000));
            exchange(&mut sessions, "after")?;
            Ok(())
        };
        let result = run();
        stop.store(true, Ordering::Relaxed);
        match prober.join() {
            Ok(Ok(t)) => (t, result),
            Ok(Err(e)) => (Vec::new(), result.and(Err(e))),
            Err(_) => (Vec::new(), result.and(Err(anyhow::anyhow!("prober panicked")))),
        }
    });
    if let Err(e) = result {
        panic!("{e:#}\n{}", sb.agent_logs());
    }
    let mut leaks = Vec::new();
    for (name, t) in PHASES.iter().zip(&tallies) {
        eprintln!(
            "{name}: {} rounds, {} probes ({} of always-denied cells, {} of always-allowed cells); denied passes {}, allowed failures {}",
            t.rounds,
            t.probes,
            t.denied_probes,
            t.allowed_probes,
            t.denied_passes.len(),
            t.allowed_failures.len()
        );
        for f in &t.allowed_failures {
            eprintln!("  allowed failed: {f}");
        }
        leaks.extend(t.denied_passes.iter().map(|l| format!("{name}: {l}")));
        assert!(t.rounds >= 2, "{name}: only {} probe rounds", t.rounds);
    }
    eprintln!("established connections: {} exchanges, all echoed", exchanges);
    assert!(
        leaks.is_empty(),
        "denied traffic passed:\n  {}\n{}",
        leaks.join("\n  "),
        sb.agent_logs()
    );
    let since = Instant::now();
    sb.converge("after the updates", since, Duration::from_secs(10))
        .unwrap();
}

/// The log lines (after byte `from`) that report a failed apply, with their timestamps in
/// seconds of the day (tracing's RFC 3339 prefix).
fn failed_applies(log: &str, from: usize) -> Vec<(f64, String)> {
    log.get(from..)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("apply failed"))
        .filter_map(|l| {
            let ts = l.split_whitespace().next()?;
            let time = ts.split_once('T')?.1.trim_end_matches('Z');
            let mut parts = time.split(':');
            let h: f64 = parts.next()?.parse().ok()?;
            let m: f64 = parts.next()?.parse().ok()?;
            let s: f64 = parts.next()?.parse().ok()?;
            Some((h * 3600.0 + m * 60.0 + s, l.to_string()))
        })
        .collect()
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// Probes until the observed matrix equals `dir`'s prediction; a denied cell that passes fails
/// at once, a missed allowed one is retried for a few seconds (a loaded machine).
fn enforces(sb: &Sandbox, dir: &Path, what: &str) -> Result<usize> {
    let (requests, cells) = matrix_probes(sb, dir, dir)?;
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut rounds = 0;
    loop {
        let res = probe_all(&sb.bins.pod, &requests)?;
        rounds += 1;
        let wrong: Vec<String> = res
            .iter()
            .flatten()
            .zip(&cells)
            .filter(|(ok, c)| **ok != c.before)
            .map(|(ok, c)| format!("{}: predicted {}, observed {}", c.label, c.before, ok))
            .collect();
        let leak = wrong.iter().any(|w| w.ends_with("observed true"));
        if wrong.is_empty() {
            return Ok(cells.len());
        }
        if leak || Instant::now() > deadline {
            bail!("{what}: after {rounds} rounds:\n  {}", wrong.join("\n  "));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

const WRAPPER: &str = r#"#!/bin/sh
# nft as the agent sees it: the real one, or a failure chosen by the test (file "mode").
case " $* " in *' -f '*)
  case "$(cat "$(dirname "$0")/mode" 2>/dev/null)" in
    fail) echo 'Error: injected failure' >&2; exit 1;;
    noperm) exec setpriv --inh-caps=-net_admin --bounding-set=-net_admin nft "$@";;
  esac;;
esac
exec nft "$@"
"#;

/// Issue 8, "nft failures": the binary failing, nft lacking CAP_NET_ADMIN (the kernel refuses
/// the netlink requests with EPERM) and the binary missing. Each time a change is written while
/// nft fails: real packets still see the previous ruleset; the log names the failure; the
/// attempts back off (timestamps from the log); `/metrics` counts them; after
/// `--unready-after-failures 3` `/readyz` is 503 while `/healthz` stays 200; once nft works
/// again the change lands and the agent is Ready.
#[test]
fn nft_failures_keep_the_ruleset_and_cost_readiness() {
    if !prereq::check("nft_failures_keep_the_ruleset_and_cost_readiness") {
        return;
    }
    if sh::run("setpriv", &["--version"]).is_err() {
        if prereq::in_ci() {
            panic!("setpriv (util-linux) is missing under CI=true");
        }
        eprintln!("SKIPPED nft_failures_keep_the_ruleset_and_cost_readiness: no setpriv");
        return;
    }
    let _g = serial();
    let mut sb = sandbox();
    let tools = tempfile::tempdir().unwrap();
    let wrapper = tools.path().join("nft");
    std::fs::write(&wrapper, WRAPPER).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mode = tools.path().join("mode");
    let away = tools.path().join("nft.away");

    let mut policies = vec![db_from_web(), deny_all("beta", "Ingress")];
    let since = sb.apply(with(scenarios::base(), &policies)).unwrap();
    let w = wrapper.to_str().unwrap().to_string();
    sb.start_agents_with(|_| {
        vec![
            "--nft".into(),
            w.clone(),
            "--unready-after-failures".into(),
            "3".into(),
        ]
    })
    .unwrap();
    sb.converge("initial", since, Duration::from_secs(10)).unwrap();

    let changes = [
        (
            "nft fails",
            "injected failure",
            // Each change selects pods on both nodes, so both agents must apply it.
            np(
                "alpha",
                "alpha-from-team-b",
                "  podSelector: {}\n  ingress:\n  - from:\n    - namespaceSelector:\n        matchLabels: {team: b}\n",
            ),
        ),
        (
            "no CAP_NET_ADMIN",
            "Operation not permitted",
            np("beta", "web-from-any", "  podSelector: {}\n  ingress:\n  - {}\n"),
        ),
        ("nft missing", "cannot run", deny_all("alpha", "Egress")),
    ];
    for (what, message, policy) in changes {
        let old = snapshot(&sb);
        match what {
            "nft fails" => std::fs::write(&mode, "fail").unwrap(),
            "no CAP_NET_ADMIN" => std::fs::write(&mode, "noperm").unwrap(),
            _ => std::fs::rename(&wrapper, &away).unwrap(),
        }
        let offsets: Vec<usize> = sb.agents().iter().map(|a| a.full_log().len()).collect();
        policies.push(policy);
        let started = Instant::now();
        sb.apply(with(scenarios::base(), &policies)).unwrap();
        let new_dir = snapshot(&sb);
        let m_old = policyc::predicted_matrix(&sb.bins, old.path(), "ipv4").unwrap();
        let m_new = policyc::predicted_matrix(&sb.bins, new_dir.path(), "ipv4").unwrap();
        assert_ne!(m_old, m_new, "{what}: the change must change the matrix");

        // Not ready after three consecutive failures, on every node.
        for a in sb.agents() {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let (status, body) = a.http(&sb.bins, "/readyz").unwrap();
                if status == 503 {
                    assert!(body.contains("applies failed"), "{what}: {body}");
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{what}: {} still ready\n{}",
                    a.node,
                    a.full_log()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            let (status, _) = a.http(&sb.bins, "/healthz").unwrap();
            assert_eq!(status, 200, "{what}: /healthz");
        }
        let unready_after = started.elapsed();
        // The previous ruleset still decides, with real packets.
        let cells = enforces(&sb, old.path(), what).unwrap_or_else(|e| panic!("{e:#}\n{}", sb.agent_logs()));
        for (a, &from) in sb.agents().iter().zip(&offsets) {
            let (_, metrics) = a.http(&sb.bins, "/metrics").unwrap();
            let consecutive = metric(&metrics, "policyc_apply_consecutive_failures").unwrap_or(0.0);
            let total = metric(&metrics, "policyc_apply_failures_total").unwrap_or(0.0);
            assert!(consecutive >= 3.0, "{what}: {}: {metrics}", a.node);
            assert!(total >= consecutive, "{what}: {}: {metrics}", a.node);
            let log = a.full_log();
            let failures = failed_applies(&log, from);
            assert!(failures.len() >= 3, "{what}: {}: {failures:?}", a.node);
            assert!(
                failures.iter().all(|(_, l)| l.contains(message)),
                "{what}: {}: the log must carry {message:?}:\n{failures:#?}",
                a.node
            );
            // Backoff: the k-th retry waits at least 100 ms * 2^k after the failure before it.
            let gaps: Vec<f64> = failures
                .windows(2)
                .map(|w| (w[1].0 - w[0].0).rem_euclid(86400.0))
                .collect();
            for (k, g) in gaps.iter().enumerate() {
                let min = 0.1 * f64::from(1u32 << k.min(8));
                assert!(*g >= min * 0.99, "{what}: {}: attempt gaps {gaps:?}", a.node);
            }
            assert!(
                log[from..].contains("not Ready until an apply succeeds"),
                "{what}: {}",
                a.node
            );
            eprintln!(
                "{what} on {}: {} failed attempts so far, gaps {:?} s, consecutive {consecutive}, total {total}; not Ready after {unready_after:.1?}; {cells} cells probed: previous ruleset enforced",
                a.node,
                failures.len(),
                gaps.iter().map(|g| (g * 1000.0).round() / 1000.0).collect::<Vec<_>>()
            );
        }
        // Repaired: the change lands, Ready again.
        match what {
            "nft missing" => std::fs::rename(&away, &wrapper).unwrap(),
            _ => std::fs::remove_file(&mode).unwrap(),
        }
        let repaired = Instant::now();
        let bins = sb.bins.clone();
        for n in 0..sb.net.nodes.len() {
            sb.agent_mut(n)
                .wait_ready(&bins, Duration::from_secs(40))
                .unwrap();
        }
        sb.converge(&format!("{what}: repaired"), repaired, Duration::from_secs(40))
            .unwrap();
        eprintln!(
            "{what}: repaired; change enforced {:.1?} after the repair",
            repaired.elapsed()
        );
    }
}

/// The policy classes the compiler's validation rejects (the rows of
/// compiler/tests/semantics.rs `diagnostics_name_object_field_and_line`): the policy body and
/// the field its diagnostic names. Each is applied in namespace alpha as `broken`.
const INVALID: &[(&str, &str)] = &[
    (
        "  podSelector: {}\n  ingress:\n  - from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16, 11.0.0.0/24]}}]\n",
        "spec.ingress[0].from[0].ipBlock.except[1]",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - from: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.0.0.0/8]}}]\n",
        "spec.ingress[0].from[0].ipBlock.except[0]",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - from: [{ipBlock: {cidr: 'fd00::/8', except: [10.0.0.0/8]}}]\n",
        "spec.ingress[0].from[0].ipBlock.except[0]",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - from: [{podSelector: {matchLabels: {app: web}}}]\n    ports: [{port: 80}]\n  - from: [{ipBlock: {cidr: 300.0.0.0/8}}]\n",
        "spec.ingress[1].from[0].ipBlock.cidr",
    ),
    (
        "  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: 10.244.0.1}}]\n",
        "spec.egress[0].to[0].ipBlock.cidr",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - ports: [{port: 80}, {port: http, endPort: 90}]\n",
        "spec.ingress[0].ports[1].endPort",
    ),
    (
        "  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - ports: [{port: 80, endPort: 79}]\n",
        "spec.egress[0].ports[0].endPort",
    ),
    (
        "  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - ports: [{endPort: 79}]\n",
        "spec.egress[0].ports[0].endPort",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - ports: [{port: 70000}]\n",
        "spec.ingress[0].ports[0].port",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - ports: [{port: HTTP}]\n",
        "spec.ingress[0].ports[0].port",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - ports: [{port: 53, protocol: ICMP}]\n",
        "spec.ingress[0].ports[0].protocol",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - from: [{podSelector: {matchExpressions: [{key: app, operator: Equals, values: [web]}]}}]\n",
        "spec.ingress[0].from[0].podSelector.matchExpressions[0].operator",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - from: [{namespaceSelector: {matchExpressions: [{key: team, operator: Exists, values: [b]}]}}]\n",
        "spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - from: [{podSelector: {matchLabels: {app: 'bad value!'}}}]\n",
        "spec.ingress[0].from[0].podSelector.matchLabels[app]",
    ),
    (
        "  podSelector: {}\n  ingress:\n  - from: [{podSelector: {}}, {}]\n",
        "spec.ingress[0].from[1]",
    ),
    (
        "  podSelector: {}\n  policyTypes: [Egress]\n  egress:\n  - to: [{ipBlock: {cidr: 10.0.0.0/8}, namespaceSelector: {}}]\n",
        "spec.egress[0].to[0]",
    ),
    (
        "  podSelector: {}\n  policyTypes: [Ingress, Sideways]\n",
        "spec.policyTypes[1]",
    ),
    (
        "  podSelector: {matchExpressions: [{key: app, operator: NotIn}]}\n  ingress:\n  - {}\n",
        "spec.podSelector.matchExpressions[0].values",
    ),
];

/// Issue 8, "bad input": each invalid-policy class through the running agent. Alongside two
/// valid policies (beta/web admits only alpha/web; alpha/db admits only web on 80), the invalid
/// alpha/broken is written; the agent logs a line naming `NetworkPolicy alpha/broken` and the
/// field; real probes of the whole matrix equal `policyc matrix` (whose oracle fails the
/// invalid part closed); and the valid policies still decide their cells. The matrix is also
/// checked against the matrix without the broken policy: the broken one must only remove
/// connections, never add any (fail closed).
#[test]
fn invalid_policies_fail_closed_through_the_agent() {
    if !prereq::check("invalid_policies_fail_closed_through_the_agent") {
        return;
    }
    let _g = serial();
    let mut sb = sandbox();
    let good = vec![
        db_from_web(),
        np(
            "beta",
            "web-from-alpha-web",
            "  podSelector:\n    matchLabels: {app: web}\n  ingress:\n  - from:\n    - namespaceSelector:\n        matchLabels: {team: a}\n      podSelector:\n        matchLabels: {app: web}\n",
        ),
    ];
    let since = sb.apply(with(scenarios::base(), &good)).unwrap();
    sb.start_agents().unwrap();
    sb.converge("valid policies only", since, Duration::from_secs(10))
        .unwrap();
    let valid = sb.predicted("ipv4").unwrap();
    // `policyc matrix` refuses invalid input; the in-process oracle that stands in for it below
    // gives the same matrix where both answer.
    let (lenient, diags) = policyc::lenient_matrix(sb.dir.path(), "ipv4").unwrap();
    assert!(diags.is_empty(), "{diags:?}");
    assert_eq!(lenient, valid, "the in-process oracle equals `policyc matrix`");
    let mut stepped = 0;
    for (i, (spec, field)) in INVALID.iter().enumerate() {
        let offsets: Vec<usize> = sb.agents().iter().map(|a| a.full_log().len()).collect();
        let mut policies = good.clone();
        policies.push(np("alpha", "broken", spec));
        let step = format!("invalid #{i}: {field}");
        let since = sb.apply(with(scenarios::base(), &policies)).unwrap();
        let (m, diags) = policyc::lenient_matrix(sb.dir.path(), "ipv4").unwrap();
        assert!(
            !diags.is_empty()
                && diags
                    .iter()
                    .all(|d| d.contains("NetworkPolicy alpha/broken") && d.contains(field)),
            "{step}: {diags:?}"
        );
        // Consecutive steps may predict the same matrix, so convergence alone does not show that
        // the agents have loaded this step: wait until each has logged it.
        for (a, &from) in sb.agents().iter().zip(&offsets) {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !a.full_log()[from..].contains("invalid policy (fails closed)") {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{step}: {}: no log line within 10 s:\n{}",
                    a.node,
                    &a.full_log()[from..]
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        sb.converge_to(&step, since, Duration::from_secs(10), std::slice::from_ref(&m))
            .unwrap_or_else(|e| panic!("{e:#}"));
        // Fail closed: nothing the valid policies deny becomes allowed, and the broken policy
        // isolates something (else the class would not be exercised).
        let mut removed = 0;
        for (r, rv) in m.results.iter().zip(&valid.results) {
            for (row, vrow) in r.allowed.iter().zip(&rv.allowed) {
                for (&now, &was) in row.iter().zip(vrow) {
                    assert!(was || !now, "{step}: the invalid policy admits a connection");
                    removed += usize::from(was && !now);
                }
            }
        }
        assert!(removed > 0, "{step}: the invalid policy isolated nothing");
        let beta_web = m.pods.iter().position(|p| p == "beta/web").unwrap();
        let client = m.pods.iter().position(|p| p == "beta/client").unwrap();
        let r80 = m
            .results
            .iter()
            .find(|r| r.port == 80 && r.protocol == "TCP")
            .unwrap();
        assert!(
            !r80.allowed[client][beta_web],
            "{step}: beta/web's policy still isolates"
        );
        for (a, &from) in sb.agents().iter().zip(&offsets) {
            let log = a.full_log();
            let new = &log[from..];
            let line = new
                .lines()
                .find(|l| l.contains("invalid policy (fails closed)"))
                .unwrap_or_else(|| panic!("{step}: {}: no log line:\n{new}", a.node));
            assert!(
                line.contains("NetworkPolicy alpha/broken") && line.contains(field),
                "{step}: {}: the log line must name the object and {field}: {line}",
                a.node
            );
        }
        if i == 0 {
            eprintln!("log line: {}", {
                let log = sb.agents()[0].full_log();
                log.lines()
                    .rfind(|l| l.contains("invalid policy"))
                    .unwrap_or_default()
                    .to_string()
            });
        }
        stepped += 1;
    }
    let (median, max) = sb.convergence_summary().unwrap_or_default();
    eprintln!(
        "{stepped} invalid-policy classes enforced as `policyc matrix` predicts; convergence median {median:?}, max {max:?}"
    );
}
