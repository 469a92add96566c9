//! The agent under a stream of updates: event → enforced latency and memory of the real release
//! `policyc agent --kubeconfig`, fed by the mock API server (`policyc_e2e::apiserver`) in a
//! throwaway network namespace.
//!
//! Latency is observed from outside the agent: from the moment the mock API writes an event to
//! the agent's watch connection, to the moment `nft monitor` (in the same namespace) reports the
//! transaction that carries it (the `# new generation` line that ends each committed
//! transaction). Every event carries a token that only it can put into the kernel: a fresh pod
//! address, the address of a pod whose labels changed, or a fresh port in a policy.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::Ipv4Addr;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use policyc_e2e::apiserver::{in_netns, ApiServer, Resource};
use policyc_e2e::netns::{new_run_id, Netns};
use policyc_e2e::sh;
use serde_json::{json, Value};

use crate::gen::{self, Generated, Params};
use crate::report::{quantile, stat, Check, Ctx, Section, Table};

/// Updates per second and for how long.
const RATE: f64 = 15.0;
const STREAM: Duration = Duration::from_secs(20);
/// An event not seen in the kernel within this long counts as unobserved.
const GIVE_UP: Duration = Duration::from_secs(10);
/// Added pods that stay before the stream removes the oldest.
const BACKLOG: usize = 3;
const LISTEN: &str = "127.0.0.1:9750";
const TABLE: &str = "policyc";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    PodAdded,
    PodRemoved,
    LabelsChanged,
    PolicyChanged,
}

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::PodAdded,
        Kind::PodRemoved,
        Kind::LabelsChanged,
        Kind::PolicyChanged,
    ];
    fn name(self) -> &'static str {
        match self {
            Kind::PodAdded => "pod added",
            Kind::PodRemoved => "pod removed",
            Kind::LabelsChanged => "labels changed",
            Kind::PolicyChanged => "policy changed",
        }
    }
}

struct Sent {
    kind: Kind,
    token: String,
    rv: u64,
}

/// One run's results.
struct Outcome {
    latencies: Vec<(Kind, f64)>,
    unobserved: Vec<String>,
    ready: Duration,
    /// KiB, after the initial sync (settled 2 s) and after the stream (settled 3 s).
    hwm_initial: u64,
    rss_initial: u64,
    hwm_end: u64,
    rss_end: u64,
    transactions: usize,
}

pub fn run(ctx: &Ctx) -> Result<Section> {
    let mut lat = Table::new(&[
        "size",
        "stream",
        "events",
        "p50",
        "p99",
        "max",
        "p99 per run",
        "p50 / p99 by kind: pod added · pod removed · labels · policy",
        "unobserved",
        "transactions",
    ]);
    let mut mem = Table::new(&[
        "size",
        "start → ready",
        "VmHWM after initial sync",
        "VmRSS settled",
        "VmHWM after the stream",
        "VmRSS settled after",
    ]);
    let mut checks = Vec::new();
    for p in &ctx.sizes {
        let g = gen::generate(p)?;
        for (mix_name, mix) in MIXES {
            let runs = ctx.runs.min(3);
            let mut all: Vec<(Kind, f64)> = Vec::new();
            let mut p99s = Vec::new();
            let (mut unobserved, mut txns) = (Vec::new(), 0);
            let (mut ready, mut hwm0, mut rss0, mut hwm1, mut rss1) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for r in 0..runs {
                eprintln!("agent: {} ({mix_name}) run {}/{runs}", p.label(), r + 1);
                let o = measure(ctx, &g, p, mix)?;
                if !o.latencies.is_empty() {
                    let v: Vec<f64> = o.latencies.iter().map(|l| l.1).collect();
                    p99s.push(quantile(&v, 0.99));
                }
                all.extend(o.latencies);
                unobserved.extend(o.unobserved);
                txns += o.transactions;
                ready.push(o.ready.as_secs_f64());
                hwm0.push(o.hwm_initial as f64 / 1024.0);
                rss0.push(o.rss_initial as f64 / 1024.0);
                hwm1.push(o.hwm_end as f64 / 1024.0);
                rss1.push(o.rss_end as f64 / 1024.0);
            }
            let values: Vec<f64> = all.iter().map(|l| l.1).collect();
            let (p50, p99, max) = if values.is_empty() {
                (f64::NAN, f64::NAN, f64::NAN)
            } else {
                (
                    quantile(&values, 0.5),
                    quantile(&values, 0.99),
                    quantile(&values, 1.0),
                )
            };
            let by_kind: Vec<String> = Kind::ALL
                .iter()
                .map(|k| {
                    let v: Vec<f64> = all.iter().filter(|l| l.0 == *k).map(|l| l.1).collect();
                    if v.is_empty() {
                        "–".to_string()
                    } else {
                        format!("{:.0}/{:.0}", quantile(&v, 0.5), quantile(&v, 0.99))
                    }
                })
                .collect();
            lat.row(vec![
                p.label(),
                mix_name.to_string(),
                values.len().to_string(),
                format!("{p50:.1} ms"),
                format!("{p99:.1} ms"),
                format!("{max:.1} ms"),
                if p99s.is_empty() {
                    "–".into()
                } else {
                    stat(&p99s).show("ms")
                },
                by_kind.join(" · "),
                if unobserved.is_empty() {
                    "0".into()
                } else {
                    format!(
                        "{} ({})",
                        unobserved.len(),
                        unobserved[..unobserved.len().min(3)].join("; ")
                    )
                },
                txns.to_string(),
            ]);
            mem.row(vec![
                format!("{} ({mix_name})", p.label()),
                stat(&ready).show("s"),
                stat(&hwm0).show("MiB"),
                stat(&rss0).show("MiB"),
                stat(&hwm1).show("MiB"),
                stat(&rss1).show("MiB"),
            ]);
            if p.pods == 10_000 {
                checks.push(Check {
                    figure: format!(
                        "event → enforced p99 under a stream, {mix_name} (10k pods / 2k policies)"
                    ),
                    target: "≤ 100 ms".into(),
                    measured: format!(
                        "{p99:.1} ms (p50 {p50:.1} ms, {} events, {} unobserved)",
                        values.len(),
                        unobserved.len()
                    ),
                    met: p99 <= 100.0,
                });
                let peak = hwm0.iter().chain(&hwm1).cloned().fold(0.0, f64::max);
                checks.push(Check {
                    figure: format!(
                        "agent memory with the 10k-pod cluster loaded (VmHWM, kube mode, {mix_name})"
                    ),
                    target: "≤ 64 MB".into(),
                    measured: format!("peak {peak:.1} MiB, settled {}", stat(&rss1).show("MiB")),
                    met: peak * 1.048_576 <= 64.0,
                });
            }
        }
    }
    Ok(Section {
        title: "Agent: event → enforced, and memory".into(),
        text: format!(
            "The release `policyc agent --kubeconfig` in a throwaway network namespace, watching the \
             mock Kubernetes API server (`e2e/src/apiserver.rs`: real HTTP list + chunked watch, as \
             kube-runtime's watcher uses them) loaded with the generated cluster; the agent enforces \
             `node-0`. After the initial sync, {RATE} updates per second for {} s, cycling through: a \
             pod added on `node-0` (a fresh address), the oldest added pod removed, a `node-0` pod's \
             `app` label changed, and a policy selecting a `node-0` pod changed to a fresh port \
             (\"all four kinds\"); and the same without the policy changes (\"pods only\": element \
             deltas, no rule changes). \
             Latency runs from the moment the mock API writes the event to the watch connection to \
             the moment `nft monitor` in the namespace reports the committed transaction that carries \
             the event's token (its `# new generation` line), matched per transaction: a token in an \
             added element or rule, a removed address in a `delete element` (or absent from a full \
             replacement). Percentiles are over every event of up to 3 runs (nearest rank); an event \
             not seen within {} s is unobserved. Unobserved events are listed, not hidden: so far \
             only label changes, whose address the matcher looks for in the transaction; a label \
             change that leaves the node's ruleset as it was produces no transaction, and one that \
             moves the pod between existing groups may carry the address only inside a merged \
             interval, so such an event is either unobserved or matched to a later transaction \
             that names the address (the rare multi-second maximum of labels at 10k). The check \
             is on the p99 of the observed events. Memory is the agent's /proc status: VmHWM (peak RSS) \
             and VmRSS after 2–3 s without events.",
            STREAM.as_secs(),
            GIVE_UP.as_secs()
        ),
        tables: vec![lat, mem],
        checks,
    })
}

/// Kills the agent however the run ends (the namespace guard kills the rest).
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `BENCH_AGENT_LOG=info` (any filter): the agent logs at that level and each run's agent log,
/// `nft monitor` lines and sent events are kept in the temp dir, for a look at where time goes.
fn debug_log() -> Option<&'static str> {
    static LEVEL: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    LEVEL
        .get_or_init(|| std::env::var("BENCH_AGENT_LOG").ok())
        .as_deref()
}

/// The agent's log file, removed however the run ends.
struct Log(std::path::PathBuf);

impl Drop for Log {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn ready(ns: &str) -> bool {
    let addr = LISTEN.parse().expect("valid address");
    in_netns(Some(ns), move || {
        policyc_e2e::server::http_status(addr, "/readyz")
    })
    .is_ok_and(|s| s == 200)
}

/// `nft monitor` in the namespace, every line stamped when read.
struct Monitor {
    /// Killed on drop: the reader thread then sees the end of its pipe.
    _child: Proc,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Monitor {
    fn start(ns: &str) -> Result<Monitor> {
        let mut child = sh::netns_command(ns, "nft")
            .arg("monitor")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .context("starting nft monitor")?;
        let out = child.stdout.take().expect("piped");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let at = Instant::now();
                sink.lock().expect("monitor lock").push((at, line));
            }
        });
        let m = Monitor {
            _child: Proc(child),
            lines,
        };
        // Live once it reports a probe table of our own.
        let start = Instant::now();
        loop {
            sh::exec(
                ns,
                "nft",
                &["add table inet benchprobe; delete table inet benchprobe"],
            )?;
            std::thread::sleep(Duration::from_millis(100));
            if m.snapshot().iter().any(|(_, l)| l.contains("benchprobe")) {
                return Ok(m);
            }
            if start.elapsed() > Duration::from_secs(10) {
                bail!("nft monitor reported nothing in 10 s");
            }
        }
    }

    fn snapshot(&self) -> Vec<(Instant, String)> {
        self.lines.lock().expect("monitor lock").clone()
    }
}

/// Committed transactions: when their `# new generation` line came, and their lines.
fn transactions(lines: &[(Instant, String)]) -> Vec<(Instant, Vec<&str>)> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for (at, l) in lines {
        if l.starts_with("# new generation") {
            out.push((*at, std::mem::take(&mut cur)));
        } else {
            cur.push(l.as_str());
        }
    }
    out
}

/// `token` as a whole number or address in `line` (so 10.244.0.1 does not match 10.244.0.17).
fn has_token(line: &str, token: &str) -> bool {
    let b = line.as_bytes();
    let part = |c: u8| c.is_ascii_digit() || c == b'.';
    line.match_indices(token).any(|(i, _)| {
        let before = i == 0 || !part(b[i - 1]);
        let j = i + token.len();
        let after = j >= b.len() || !part(b[j]);
        before && after
    })
}

fn carries(kind: Kind, token: &str, txn: &[&str]) -> bool {
    // nft monitor wraps long element lists: continuation lines belong to the command above.
    let added = |l: &&str| !l.starts_with("delete") && has_token(l, token);
    match kind {
        Kind::PodAdded | Kind::PolicyChanged => txn.iter().any(added),
        Kind::PodRemoved => {
            txn.iter()
                .any(|l| l.starts_with("delete element") && has_token(l, token))
                || (txn.iter().any(|l| *l == format!("delete table inet {TABLE}"))
                    && !txn.iter().any(|l| has_token(l, token)))
        }
        Kind::LabelsChanged => txn.iter().any(|l| has_token(l, token)),
    }
}

fn ip_of(pod: &Value) -> String {
    pod["status"]["podIP"].as_str().unwrap_or_default().to_string()
}

/// The stream of updates: fresh addresses and ports, and which pods to touch.
struct Plan {
    node: String,
    namespaces: Vec<String>,
    local: Vec<Value>,
    free: Vec<Ipv4Addr>,
    added: std::collections::VecDeque<(String, String, String)>,
    seq: usize,
    /// The kinds the stream cycles through.
    mix: &'static [Kind],
    /// Events sent so far, per kind (which pod is touched next).
    count: [usize; 4],
}

impl Plan {
    fn new(g: &Generated, mix: &'static [Kind]) -> Result<Plan> {
        let node = g.node();
        let pods: Vec<Value> = g
            .pods
            .iter()
            .map(serde_json::to_value)
            .collect::<serde_json::Result<_>>()?;
        let used: BTreeSet<String> = pods.iter().map(ip_of).collect();
        let local: Vec<Value> = pods
            .into_iter()
            .filter(|p| {
                p["spec"]["nodeName"] == node.as_str()
                    && p["spec"]["hostNetwork"] != true
                    && p["metadata"]["namespace"]
                        .as_str()
                        .is_some_and(|n| n.starts_with("ns-"))
            })
            .collect();
        anyhow::ensure!(!local.is_empty(), "no application pods on {node}");
        let free: Vec<Ipv4Addr> = (0..gen::MAX_PODS_PER_NODE)
            .map(|j| gen::pod_address(0, j))
            .filter(|ip| !used.contains(&ip.to_string()))
            .rev()
            .collect();
        let namespaces = g
            .namespaces
            .iter()
            .filter_map(|n| n.metadata.name.clone())
            .filter(|n| n.starts_with("ns-"))
            .collect();
        Ok(Plan {
            node,
            namespaces,
            local,
            free,
            added: Default::default(),
            seq: 0,
            mix,
            count: [0; 4],
        })
    }

    /// Sends the `i`-th update.
    fn send(&mut self, api: &ApiServer, i: usize) -> Result<Option<Sent>> {
        self.seq += 1;
        let kind = self.mix[i % self.mix.len()];
        let k = self.count[kind as usize];
        self.count[kind as usize] += 1;
        Ok(match kind {
            Kind::PodAdded => {
                let Some(ip) = self.free.pop() else {
                    return Ok(None);
                };
                let ns = self.namespaces[k % self.namespaces.len()].clone();
                let name = format!("bench-{}", self.seq);
                let pod = json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "namespace": ns,
                                 "labels": {"app": "app-0", "tier": "web"}},
                    "spec": {"nodeName": self.node, "containers": [{"name": "main", "image": "x",
                             "ports": [{"name": "http", "containerPort": 8080}]}]},
                    "status": {"phase": "Running", "podIP": ip.to_string(), "podIPs": [{"ip": ip.to_string()}]}
                });
                let rv = api.apply(&pod)?;
                self.added.push_back((ns, name, ip.to_string()));
                Some(Sent {
                    kind,
                    token: ip.to_string(),
                    rv,
                })
            }
            Kind::PodRemoved => {
                // Pods live a few events long, so an addition and its removal are never
                // coalesced into one sync (the addition would then never reach the kernel).
                if self.added.len() < BACKLOG {
                    return Ok(None);
                }
                let Some((ns, name, ip)) = self.added.pop_front() else {
                    return Ok(None);
                };
                let rv = api
                    .delete(Resource::Pods, &ns, &name)
                    .context("bench pod vanished")?;
                self.free.insert(0, ip.parse()?);
                Some(Sent { kind, token: ip, rv })
            }
            Kind::LabelsChanged => {
                let n = self.local.len();
                let pod = &mut self.local[k % n];
                let app = pod["metadata"]["labels"]["app"]
                    .as_str()
                    .and_then(|a| a.strip_prefix("app-"))
                    .and_then(|a| a.parse::<usize>().ok())
                    .unwrap_or(0);
                pod["metadata"]["labels"]["app"] = json!(format!("app-{}", (app + 1) % 5));
                let rv = api.apply(&*pod)?;
                Some(Sent {
                    kind,
                    token: ip_of(pod),
                    rv,
                })
            }
            Kind::PolicyChanged => {
                let n = self.local.len();
                let pod = &self.local[(k * 7) % n];
                let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
                let port = 40_000 + (k % 20_000);
                let policy = json!({
                    "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                    "metadata": {"name": "bench-allow", "namespace": ns},
                    "spec": {"podSelector": {"matchLabels": {"tier": pod["metadata"]["labels"]["tier"]}},
                             "policyTypes": ["Ingress"],
                             "ingress": [{"ports": [{"port": port, "protocol": "TCP"}]}]}
                });
                let rv = api.apply(&policy)?;
                Some(Sent {
                    kind,
                    token: port.to_string(),
                    rv,
                })
            }
        })
    }
}

/// Every kind of update, and the pod-level ones only (no policy change: element deltas).
const MIXES: [(&str, &[Kind]); 2] = [
    ("all four kinds", &Kind::ALL),
    (
        "pods only",
        &[Kind::PodAdded, Kind::PodRemoved, Kind::LabelsChanged],
    ),
];

fn measure(ctx: &Ctx, g: &Generated, p: &Params, mix: &'static [Kind]) -> Result<Outcome> {
    let ns = Netns::create(&format!("{}-agent", new_run_id()))?;
    let api = ApiServer::start_in(Some(&ns.name))?;
    api.load(&g.namespaces)?;
    api.load(&g.nodes)?;
    api.load(&g.pods)?;
    api.load(&g.policies)?;
    let log = Log(std::env::temp_dir().join(format!("{}.log", ns.name)));
    let started = Instant::now();
    // BENCH_AGENT_POLICYC: another build to compare (before/after a change).
    let policyc =
        std::env::var("BENCH_AGENT_POLICYC").unwrap_or_else(|_| ctx.policyc.to_string_lossy().into_owned());
    let agent = Proc(
        sh::netns_command(&ns.name, &policyc)
            .args([
                "agent",
                "--node-name",
                &g.node(),
                "--listen",
                LISTEN,
                "--kubeconfig",
            ])
            .arg(api.kubeconfig())
            .env("RUST_LOG", debug_log().unwrap_or("warn"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log.0)?)
            .spawn()
            .context("starting policyc agent")?,
    );
    let pid = agent.0.id();
    let timeout = Duration::from_secs(60 + p.pods as u64 / 100);
    while !ready(&ns.name) {
        if started.elapsed() > timeout {
            bail!(
                "agent not ready after {timeout:?}: {}",
                std::fs::read_to_string(&log.0).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let ready_after = started.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let hwm_initial = status_kib(pid, "VmHWM:");
    let rss_initial = status_kib(pid, "VmRSS:");

    let monitor = Monitor::start(&ns.name)?;
    let mut plan = Plan::new(g, mix)?;
    let mut sent = Vec::new();
    let t0 = Instant::now();
    let n = (STREAM.as_secs_f64() * RATE) as usize;
    for i in 0..n {
        let at = t0 + Duration::from_secs_f64(i as f64 / RATE);
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if let Some(s) = plan.send(&api, i)? {
            sent.push(s);
        }
    }
    std::thread::sleep(GIVE_UP);
    let lines = monitor.snapshot();
    drop(monitor);
    std::thread::sleep(Duration::from_secs(1));
    let hwm_end = status_kib(pid, "VmHWM:");
    let rss_end = status_kib(pid, "VmRSS:");
    if !std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| s.contains("VmRSS")) {
        bail!(
            "the agent died during the stream: {}",
            std::fs::read_to_string(&log.0).unwrap_or_default()
        );
    }
    drop(agent);

    if debug_log().is_some() {
        // Kept for a look at the agent's own timings and what the kernel reported.
        let keep = std::env::temp_dir().join(format!("{}-kept", ns.name));
        let _ = std::fs::copy(&log.0, keep.with_extension("log"));
        let text: String = lines
            .iter()
            .map(|(at, l)| format!("{:?} {l}\n", *at - t0))
            .collect();
        let _ = std::fs::write(keep.with_extension("monitor"), text);
        let sent_text: String = sent
            .iter()
            .map(|s| {
                format!(
                    "{:?} {} {}\n",
                    api.written_at(s.rv).map(|w| w - t0),
                    s.kind.name(),
                    s.token
                )
            })
            .collect();
        let _ = std::fs::write(keep.with_extension("sent"), sent_text);
        eprintln!("agent: kept {}.{{log,monitor,sent}}", keep.display());
    }
    let txns = transactions(&lines);
    let mut latencies = Vec::new();
    let mut unobserved = Vec::new();
    for s in &sent {
        let Some(w) = api.written_at(s.rv) else {
            unobserved.push(format!("{} {} never sent to a watch", s.kind.name(), s.token));
            continue;
        };
        let hit = txns
            .iter()
            .filter(|(at, _)| *at >= w && *at <= w + GIVE_UP)
            .find(|(_, lines)| carries(s.kind, &s.token, lines));
        match hit {
            Some((at, _)) => latencies.push((s.kind, (*at - w).as_secs_f64() * 1e3)),
            None => unobserved.push(format!("{} {}", s.kind.name(), s.token)),
        }
    }
    let transactions = txns
        .iter()
        .filter(|(_, l)| !l.iter().any(|x| x.contains("benchprobe")))
        .count();
    Ok(Outcome {
        latencies,
        unobserved,
        ready: ready_after,
        hwm_initial,
        rss_initial,
        hwm_end,
        rss_end,
        transactions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_whole_addresses_and_numbers() {
        assert!(has_token(
            "add element inet policyc s { 10.244.0.17 }",
            "10.244.0.17"
        ));
        assert!(!has_token(
            "add element inet policyc s { 10.244.0.17 }",
            "10.244.0.1"
        ));
        assert!(has_token("tcp dport 40001 accept", "40001"));
        assert!(!has_token("tcp dport 140001 accept", "40001"));
        assert!(has_token("{ 10.244.0.5 : goto x }", "10.244.0.5"));
    }

    #[test]
    fn a_removal_is_seen_in_a_delete_or_a_replacement_without_it() {
        let delta = ["delete element inet policyc s { 10.244.0.9 }"];
        assert!(carries(Kind::PodRemoved, "10.244.0.9", &delta));
        let replace = [
            "delete table inet policyc",
            "add table inet policyc",
            "add element inet policyc s { 10.244.0.8 }",
        ];
        assert!(carries(Kind::PodRemoved, "10.244.0.9", &replace));
        assert!(!carries(Kind::PodRemoved, "10.244.0.8", &replace));
        assert!(!carries(Kind::PodAdded, "10.244.0.9", &replace));
        let wrapped = [
            "add element inet policyc s { 10.244.0.2, 10.244.0.3,",
            "\t\t10.244.0.9 }",
        ];
        assert!(carries(Kind::PodAdded, "10.244.0.9", &wrapped));
        assert!(!carries(Kind::PodAdded, "10.244.0.9", &delta));
    }
}
