//! The agent's opt-in options, with real traffic: `--unprogrammed-pods=drop` (a pod the agent
//! does not know yet is cut off both ways, then policed as `policyc matrix` says once listed) and
//! `--flush-conntrack` (a policy change that denies an established connection stops it; without
//! the flag it survives). Each is run with and without its option.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::process::{Child, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use policyc_e2e::harness::{Enforcer, Sandbox, Session, PROBE_TIMEOUT_MS};
use policyc_e2e::manifest::{self, labels, port, PodSpec};
use policyc_e2e::policyc::{self, Binaries};
use policyc_e2e::probe::{Proto, Request, Target};
use policyc_e2e::topology::{pod_ip4, pod_ip6, Kind};
use policyc_e2e::{prereq, scenarios, sh};

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn bins() -> Binaries {
    static BINS: OnceLock<Binaries> = OnceLock::new();
    BINS.get_or_init(|| policyc::build().expect("building policyc and e2e-pod"))
        .clone()
}

/// The stray pod's host part in node-0's pod CIDR (10.244.0.50, fd00:10:244:0::50).
const STRAY_HOST: u8 = 50;

/// A server process outside the sandbox's pod list; killed on drop.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(sb: &Sandbox, ns: &str) -> Result<Server> {
    let mut child = sh::netns_command(ns, sb.bins.pod.to_str().context("non-UTF-8 path")?)
        .args(["serve", "--tcp", "80,8080", "--udp", "53"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
    let server = Server(child);
    if line.trim() != "ready" {
        bail!("stray server did not start: {line:?}");
    }
    Ok(server)
}

/// One probe: from a namespace to an address, and whether it must pass.
struct Probe {
    label: String,
    ns: String,
    target: Target,
    pass: bool,
}

fn tcp(ip: IpAddr, port: u16) -> Target {
    Target {
        ip,
        port,
        proto: Proto::Tcp,
        sctp_log: None,
    }
}

/// Runs every probe at once until each gives its expected result, for up to 5 s while the only
/// differences are missed passes (a probe can miss on a loaded machine); a drop that passes
/// fails at once. Returns the differences.
fn check(sb: &Sandbox, probes: &[Probe]) -> Result<Vec<String>> {
    let requests: Vec<(String, Request)> = probes
        .iter()
        .map(|p| {
            (
                p.ns.clone(),
                Request {
                    bind: None,
                    timeout_ms: PROBE_TIMEOUT_MS,
                    targets: vec![p.target.clone()],
                },
            )
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let got: Vec<bool> = sb.probe_all(&requests)?.into_iter().flatten().collect();
        let bad: Vec<String> = probes
            .iter()
            .zip(&got)
            .filter(|(p, ok)| p.pass != **ok)
            .map(|(p, _)| {
                let want = if p.pass { "pass" } else { "drop" };
                format!("{}: expected {want}", p.label)
            })
            .collect();
        let leak = probes.iter().zip(&got).any(|(p, ok)| !p.pass && *ok);
        if bad.is_empty() || leak || Instant::now() > deadline {
            return Ok(bad);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn unprogrammed_pods(drop: bool) -> Result<()> {
    let mut sb = Sandbox::new(
        bins(),
        Kind::FlannelVxlan,
        2,
        true,
        scenarios::universe(),
        Enforcer::Agent,
    )?;
    if drop {
        sb.agent_args = vec!["--unprogrammed-pods".into(), "drop".into()];
    }
    let mut state = scenarios::base();
    // alpha/web admits only app=late (the stray pod, once listed), alpha/api only app=web; the
    // other pods are not isolated.
    state.policies = vec![
        scenarios::np(
            "alpha",
            "web-from-late",
            "  podSelector:\n    matchLabels: {app: web}\n  ingress:\n  - from:\n    - podSelector:\n        matchLabels: {app: late}\n    ports:\n    - port: 80\n",
        ),
        scenarios::np(
            "alpha",
            "api-from-web",
            "  podSelector:\n    matchLabels: {app: api}\n  ingress:\n  - from:\n    - podSelector:\n        matchLabels: {app: web}\n",
        ),
    ];
    let since = sb.apply(state.clone())?;
    sb.start_agents()?;
    sb.converge("initial policy", since, Duration::from_secs(10))?;

    // A pod namespace with an address in node-0's pod CIDR, wired like any pod, that the
    // manifests do not list: the agent cannot know it.
    let stray = sb.net.add_pod(0, STRAY_HOST, "stray")?;
    let _server = serve(&sb, &stray.ns.name)?;
    let pod_ns = |k: &str| sb.pod_ns(k).expect("pod").to_string();
    let mut probes = Vec::new();
    for &ip in &stray.ips {
        let v6 = ip.is_ipv6();
        let fam = if v6 { "IPv6" } else { "IPv4" };
        for (peer, where_) in [("beta/client", "same node"), ("alpha/db", "other node")] {
            let peer_ip = sb.pod_ip(peer, v6).expect("dual-stack pod");
            probes.push(Probe {
                label: format!("stray -> {peer} ({where_}) {fam}"),
                ns: stray.ns.name.clone(),
                target: tcp(peer_ip, 80),
                pass: !drop,
            });
            probes.push(Probe {
                label: format!("{peer} ({where_}) -> stray {fam}"),
                ns: pod_ns(peer),
                target: tcp(ip, 80),
                pass: !drop,
            });
        }
        let node_ip = sb.net.nodes[0]
            .ips()
            .into_iter()
            .find(|a| a.is_ipv6() == v6)
            .unwrap();
        // Its own node's address, where the hostNetwork pod infra/host-0 serves (`input`).
        probes.push(Probe {
            label: format!("stray -> node-0 {node_ip}"),
            ns: stray.ns.name.clone(),
            target: tcp(node_ip, 80),
            pass: !drop,
        });
        // The node's own addresses inside its pod CIDR (the bridge's gateway address, flannel's
        // vxlan address) keep working: from the node itself (over `lo`) and from a known pod.
        // (flannel-v6.1's fd00:10:244:: is the subnet-router anycast address, which takes no
        // TCP connections, with or without any table.)
        let (gw, own): (IpAddr, Vec<IpAddr>) = if v6 {
            (pod_ip6(0, 1).into(), vec![pod_ip6(0, 1).into()])
        } else {
            (
                pod_ip4(0, 1).into(),
                vec![pod_ip4(0, 1).into(), pod_ip4(0, 0).into()],
            )
        };
        for own in own {
            probes.push(Probe {
                label: format!("node-0 -> its own {own}"),
                ns: sb.net.nodes[0].ns.name.clone(),
                target: tcp(own, 80),
                pass: true,
            });
        }
        probes.push(Probe {
            label: format!("beta/client -> node-0's gateway {gw}"),
            ns: pod_ns("beta/client"),
            target: tcp(gw, 80),
            pass: true,
        });
        // Kubelet-style: the node reaches its pods whatever the option.
        probes.push(Probe {
            label: format!("node-0 -> stray {fam}"),
            ns: sb.net.nodes[0].ns.name.clone(),
            target: tcp(ip, 80),
            pass: true,
        });
    }
    let bad = check(&sb, &probes)?;
    if !bad.is_empty() {
        bail!(
            "unlisted pod, drop={drop}:\n  {}\n{}",
            bad.join("\n  "),
            sb.agent_logs()
        );
    }

    // Listed (as alpha/late, app=late): it is programmed and policed like any pod.
    let mut listed = state.clone();
    listed.pods.push(PodSpec {
        namespace: "alpha".into(),
        name: "late".into(),
        labels: labels(&[("app", "late")]),
        node: 0,
        host: STRAY_HOST,
        host_network: false,
        ports: vec![port("http", 80, Proto::Tcp)],
    });
    let nodes: Vec<Vec<IpAddr>> = sb.net.nodes.iter().map(|n| n.ips()).collect();
    let ips: BTreeMap<String, Vec<IpAddr>> = listed
        .pods
        .iter()
        .map(|p| {
            let ips = match p.key().as_str() {
                "alpha/late" => stray.ips.clone(),
                k => [false, true].iter().filter_map(|&v6| sb.pod_ip(k, v6)).collect(),
            };
            (p.key(), ips)
        })
        .collect();
    manifest::write(sb.dir.path(), &listed, &nodes, |p| ips[&p.key()].clone())?;
    let mut probes = Vec::new();
    let mut checked_allow = 0;
    let mut checked_deny = 0;
    for family in sb.families() {
        let v6 = family == "ipv6";
        let m = sb.predicted(family)?;
        let late = m
            .pods
            .iter()
            .position(|p| p == "alpha/late")
            .context("late in matrix")?;
        let late_ip = stray.ips.iter().copied().find(|a| a.is_ipv6() == v6).unwrap();
        for (i, peer) in m.pods.iter().enumerate() {
            // hostNetwork pods probe from their node; the pod-to-pod cells are what this checks.
            if i == late || peer.starts_with("infra/") {
                continue;
            }
            let peer_ip = sb.pod_ip(peer, v6).expect("pod ip");
            for r in m
                .results
                .iter()
                .filter(|r| r.protocol == "TCP" && [80, 8080].contains(&r.port))
            {
                for (from, to, ns, ip) in [
                    (late, i, stray.ns.name.clone(), peer_ip),
                    (i, late, pod_ns(peer), late_ip),
                ] {
                    let pass = r.allowed[from][to];
                    checked_allow += usize::from(pass);
                    checked_deny += usize::from(!pass);
                    probes.push(Probe {
                        label: format!("{} -> {} {}/TCP {family}", m.pods[from], m.pods[to], r.port),
                        ns,
                        target: tcp(ip, r.port),
                        pass,
                    });
                }
            }
        }
    }
    // The policies make both verdicts appear (late -> web:80 allowed, late -> api denied).
    assert!(
        checked_allow > 0 && checked_deny > 0,
        "{checked_allow} {checked_deny}"
    );
    let written = Instant::now();
    let deadline = written + Duration::from_secs(10);
    loop {
        let bad = check(&sb, &probes)?;
        if bad.is_empty() {
            eprintln!(
                "drop={drop}: listed pod policed as predicted after {:?} ({} probes)",
                written.elapsed(),
                probes.len()
            );
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "listed pod, drop={drop}: observed differs from `policyc matrix`:\n  {}\n{}",
                bad.join("\n  "),
                sb.agent_logs()
            );
        }
    }
}

#[test]
fn unprogrammed_pod_fails_closed_with_the_option() {
    if !prereq::check("unprogrammed_pod_fails_closed_with_the_option") {
        return;
    }
    let _g = serial();
    unprogrammed_pods(true).unwrap_or_else(|e| panic!("{e:#}"));
}

#[test]
fn unprogrammed_pod_passes_by_default() {
    if !prereq::check("unprogrammed_pod_passes_by_default") {
        return;
    }
    let _g = serial();
    unprogrammed_pods(false).unwrap_or_else(|e| panic!("{e:#}"));
}

/// `conntrack` runs (conntrack-tools); like the other prerequisites, required under `CI=true`.
fn have_conntrack(test: &str) -> bool {
    let ok = std::process::Command::new("conntrack")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok && prereq::in_ci() {
        panic!("{test}: prerequisite missing under CI=true: `conntrack` does not run");
    }
    if !ok {
        eprintln!("SKIPPED {test}: `conntrack` (conntrack-tools) is not installed");
    }
    ok
}

const DB_FROM: &str = "  podSelector:\n    matchLabels: {app: db}\n  ingress:\n  - from:\n    - podSelector:\n        matchExpressions: [{key: app, operator: In, values: [APPS]}]\n    ports:\n    - port: 80\n";

/// Four established connections to alpha/db (from alpha/web on the other node, alpha/api on
/// the same node, over IPv4 and IPv6), then a change that denies them all. Returns how long after writing the change each
/// stopped (`None`: it kept working for the whole window).
fn established_after_deny(flush: bool) -> Result<Vec<(String, Option<Duration>)>> {
    let mut sb = Sandbox::new(
        bins(),
        Kind::FlannelVxlan,
        2,
        true,
        scenarios::universe(),
        Enforcer::Agent,
    )?;
    if flush {
        sb.agent_args = vec!["--flush-conntrack".into()];
    }
    let mut state = scenarios::base();
    state.policies = vec![scenarios::np("alpha", "db", &DB_FROM.replace("APPS", "web, api"))];
    let since = sb.apply(state.clone())?;
    sb.start_agents()?;
    sb.converge("db admits web and api", since, Duration::from_secs(10))?;
    let mut sessions = Vec::new();
    for v6 in [false, true] {
        let db = sb.pod_ip("alpha/db", v6).expect("dual-stack pod");
        for from in ["alpha/web", "alpha/api"] {
            let mut s = Session::open(&sb.bins.pod, sb.pod_ns(from).expect("pod"), (db, 80).into())?;
            s.exchange("before the change")?;
            sessions.push((format!("{from} -> {db}"), s));
        }
    }
    // Now only beta/client may connect: new connections from web and api are denied (checked
    // by the matrix), and the established ones must stop iff the option is on.
    let mut denied = state.clone();
    denied.policies = vec![scenarios::np("alpha", "db", &DB_FROM.replace("APPS", "client"))];
    let written = sb.apply(denied)?;
    sb.converge("db admits only client", written, Duration::from_secs(10))?;
    // Every session exchanges once per round for the whole window (until it stops).
    let window = Duration::from_secs(8);
    let mut stopped: Vec<Option<Duration>> = vec![None; sessions.len()];
    let mut rounds = 0;
    while written.elapsed() < window && stopped.iter().any(Option::is_none) {
        rounds += 1;
        for ((_, s), stop) in sessions.iter_mut().zip(&mut stopped) {
            // When the data that did not get through was sent (the echo then times out in 1 s).
            let sent = written.elapsed();
            if stop.is_none() && s.exchange(&format!("after the change {rounds}")).is_err() {
                *stop = Some(sent);
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if stopped.iter().any(Option::is_none) && rounds < 3 {
        bail!("only {rounds} exchange rounds in {window:?}");
    }
    let out: Vec<(String, Option<Duration>)> = sessions.iter().map(|(f, _)| f.clone()).zip(stopped).collect();
    let logs = sb.agent_logs();
    let logged = logs.contains("deleted conntrack entries");
    if flush != logged {
        bail!("flush={flush}, deletion logged={logged}:\n{logs}");
    }
    Ok(out)
}

#[test]
fn flush_conntrack_stops_denied_established_connections() {
    let name = "flush_conntrack_stops_denied_established_connections";
    if !prereq::check(name) || !have_conntrack(name) {
        return;
    }
    let _g = serial();
    let res = established_after_deny(true).unwrap_or_else(|e| panic!("{e:#}"));
    eprintln!("--flush-conntrack: {res:?}");
    for (from, stopped) in res {
        let took = stopped.unwrap_or_else(|| panic!("{from} kept working after the deny"));
        // Convergence is about 1-2 s; the flush follows the apply at once.
        assert!(took < Duration::from_secs(8), "{from}: {took:?}");
    }
}

#[test]
fn established_connections_survive_a_deny_by_default() {
    let name = "established_connections_survive_a_deny_by_default";
    if !prereq::check(name) {
        return;
    }
    let _g = serial();
    let res = established_after_deny(false).unwrap_or_else(|e| panic!("{e:#}"));
    for (from, stopped) in res {
        assert_eq!(
            stopped, None,
            "{from} -> alpha/db stopped without --flush-conntrack"
        );
    }
}
