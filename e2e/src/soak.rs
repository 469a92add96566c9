//! The churn soak: random changes (pods added and removed, pod and namespace labels, policies
//! added and removed) written to the agents' manifest directory at a fixed rate (default 1,000
//! per minute) for a while; at sample points the churn pauses, the observed matrix must converge
//! to `policyc matrix`, and then a few more probe rounds count denied passes (must be 0) and
//! allowed failures. The agents' CPU time and RSS are sampled throughout, from /proc.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::harness::{Sandbox, Universe};
use crate::manifest::{labels, port, PodSpec, State};
use crate::policyc::Matrix;
use crate::probe::Proto;

#[derive(Clone, Debug)]
pub struct Config {
    /// Total time of churn (pauses at sample points not included).
    pub duration: Duration,
    pub changes_per_minute: u32,
    /// Churn time between sample points.
    pub sample_every: Duration,
    /// The changes made meanwhile are written to the manifest directory at most this often: the
    /// agent's directory source loads only once two polls 250 ms apart see the same files, so
    /// writing every change (every 60 ms at 1,000/min) would starve it until the churn pauses.
    pub write_every: Duration,
    /// Probe rounds after convergence at each sample point.
    pub verify_rounds: usize,
    pub seed: u64,
    pub max_pods: usize,
}

impl Config {
    pub fn short() -> Config {
        Config {
            duration: Duration::from_secs(75),
            changes_per_minute: 1000,
            sample_every: Duration::from_secs(25),
            write_every: Duration::from_millis(600),
            verify_rounds: 2,
            seed: 7,
            max_pods: 10,
        }
    }
}

pub fn universe() -> Universe {
    Universe {
        tcp: vec![80, 8080],
        udp: vec![53],
        sctp: false,
    }
}

/// Agent resource use at one moment (summed over the agents).
#[derive(Clone, Debug)]
pub struct Usage {
    pub at: Duration,
    /// The agents' own CPU time (user + system).
    pub cpu: Duration,
    /// CPU time of the agents' finished children: the `nft` processes that apply the rules.
    pub children_cpu: Duration,
    pub rss_kib: Vec<u64>,
}

#[derive(Clone, Debug)]
pub struct Sample {
    pub at: Duration,
    pub changes: usize,
    pub pods: usize,
    pub policies: usize,
    pub converged_in: Duration,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub changes: usize,
    /// Manifest directory writes (each a snapshot holding the changes made since the last).
    pub writes: usize,
    pub by_kind: BTreeMap<&'static str, usize>,
    pub churn_time: Duration,
    pub samples: Vec<Sample>,
    pub probes: usize,
    pub denied_passes: usize,
    pub allowed_failures: usize,
    pub usage: Vec<Usage>,
    pub leaks: Vec<String>,
}

impl Report {
    pub fn rate_per_minute(&self) -> f64 {
        self.changes as f64 * 60.0 / self.churn_time.as_secs_f64().max(1e-9)
    }

    fn rss_mib(u: &Usage) -> Vec<f64> {
        u.rss_kib.iter().map(|k| *k as f64 / 1024.0).collect()
    }

    /// RSS per agent at the first sample after `after` of churn, and at the end.
    pub fn rss_growth(&self, after: Duration) -> Option<(Vec<u64>, Vec<u64>)> {
        let first = self.usage.iter().find(|u| u.at >= after).or(self.usage.first())?;
        let last = self.usage.last()?;
        Some((first.rss_kib.clone(), last.rss_kib.clone()))
    }

    pub fn summary(&self) -> String {
        let mut s = String::new();
        let kinds: Vec<String> = self.by_kind.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(
            s,
            "changes: {} in {:.1?} of churn = {:.0}/min ({}), written in {} snapshots",
            self.changes,
            self.churn_time,
            self.rate_per_minute(),
            kinds.join(", "),
            self.writes
        );
        for p in &self.samples {
            let _ = writeln!(
                s,
                "  sample at {:>6.1?}: {} changes so far, {} pods, {} policies, converged in {:.1?}",
                p.at, p.changes, p.pods, p.policies, p.converged_in
            );
        }
        let _ = writeln!(
            s,
            "probes: {} sent; after convergence: {} denied passes, {} allowed failures",
            self.probes, self.denied_passes, self.allowed_failures
        );
        if let (Some(first), Some(last)) = (self.usage.first(), self.usage.last()) {
            let cpu = last.cpu.saturating_sub(first.cpu);
            let nft = last.children_cpu.saturating_sub(first.children_cpu);
            let wall = last.at.saturating_sub(first.at);
            let pct = |d: Duration| 100.0 * d.as_secs_f64() / wall.as_secs_f64().max(1e-9);
            let _ = writeln!(
                s,
                "agent CPU (both agents) over {wall:.1?}: {cpu:.1?} own ({:.1}% of one core) + {nft:.1?} in nft children ({:.1}%)",
                pct(cpu),
                pct(nft)
            );
            let every = (self.usage.len() / 12).max(1);
            let points: Vec<String> = self
                .usage
                .iter()
                .step_by(every)
                .chain(std::iter::once(last))
                .map(|u| {
                    let mib: Vec<String> = Self::rss_mib(u).iter().map(|m| format!("{m:.1}")).collect();
                    format!("{:.0?}: {} MiB", u.at, mib.join("/"))
                })
                .collect();
            let _ = writeln!(s, "agent RSS (per agent) over time: {}", points.join(", "));
        }
        s
    }
}

/// A deterministic random source (no dependency needed for this much).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[self.below(v.len())]
    }
}

const NAMESPACES: [&str; 3] = ["alpha", "beta", "gamma"];
const APPS: [&str; 4] = ["web", "api", "db", "client"];

fn pod_ports() -> Vec<crate::manifest::PortSpec> {
    vec![
        port("http", 80, Proto::Tcp),
        port("alt", 8080, Proto::Tcp),
        port("dns", 53, Proto::Udp),
    ]
}

fn new_pod(rng: &mut Rng, seq: usize, state: &State) -> PodSpec {
    let node = rng.below(2);
    // A host number no pod of that node uses (10..250).
    let used: Vec<u8> = state
        .pods
        .iter()
        .filter(|p| p.node == node)
        .map(|p| p.host)
        .collect();
    let host = (10..250u8)
        .cycle()
        .skip(rng.below(240))
        .find(|h| !used.contains(h))
        .expect("free host numbers");
    PodSpec {
        namespace: rng.pick(&NAMESPACES).into(),
        name: format!("p{seq}"),
        labels: labels(&[("app", rng.pick(&APPS)), ("tier", rng.pick(&["front", "back"]))]),
        node,
        host,
        host_network: false,
        ports: pod_ports(),
    }
}

pub fn initial(rng_seed: u64) -> State {
    let mut rng = Rng(rng_seed);
    let mut s = State::default();
    for (i, ns) in NAMESPACES.iter().enumerate() {
        s.namespaces.insert(
            ns.to_string(),
            labels(&[("team", ["a", "b"][i % 2]), ("env", "prod")]),
        );
    }
    for seq in 0..6 {
        let p = new_pod(&mut rng, seq, &s);
        s.pods.push(p);
    }
    s
}

/// A random policy from a few shapes that cover the semantics the agent renders differently
/// (pod and namespace selectors, both, ipBlocks with except, named and numbered ports, ranges,
/// deny-alls, egress).
fn random_policy(rng: &mut Rng, seq: usize) -> String {
    let ns = rng.pick(&NAMESPACES);
    let app = rng.pick(&APPS);
    let other = rng.pick(&APPS);
    let team = rng.pick(&["a", "b"]);
    let port = rng.pick(&["80", "8080", "http", "alt", "53"]);
    let proto = if port == "53" { "UDP" } else { "TCP" };
    let spec = match rng.below(8) {
        0 => "  podSelector: {}\n  policyTypes: [Ingress]\n".to_string(),
        1 => format!("  podSelector:\n    matchLabels: {{app: {app}}}\n  policyTypes: [Egress]\n"),
        2 => format!(
            "  podSelector:\n    matchLabels: {{app: {app}}}\n  ingress:\n  - from:\n    - podSelector:\n        matchLabels: {{app: {other}}}\n    ports:\n    - {{port: {port}, protocol: {proto}}}\n"
        ),
        3 => format!(
            "  podSelector:\n    matchLabels: {{app: {app}}}\n  ingress:\n  - from:\n    - namespaceSelector:\n        matchLabels: {{team: {team}}}\n"
        ),
        4 => format!(
            "  podSelector:\n    matchExpressions:\n    - {{key: tier, operator: In, values: [front]}}\n  ingress:\n  - from:\n    - namespaceSelector:\n        matchLabels: {{team: {team}}}\n      podSelector:\n        matchLabels: {{app: {other}}}\n    ports:\n    - {{port: 80, endPort: 8080}}\n"
        ),
        5 => format!(
            "  podSelector:\n    matchLabels: {{app: {app}}}\n  policyTypes: [Egress]\n  egress:\n  - to:\n    - ipBlock:\n        cidr: 10.244.0.0/16\n        except: [10.244.{}.0/24]\n    ports:\n    - {{port: {port}, protocol: {proto}}}\n",
            rng.below(2)
        ),
        6 => format!(
            "  podSelector:\n    matchLabels: {{tier: back}}\n  policyTypes: [Ingress, Egress]\n  ingress:\n  - from:\n    - podSelector:\n        matchLabels: {{tier: front}}\n  egress:\n  - to:\n    - podSelector: {{}}\n      namespaceSelector: {{}}\n    ports:\n    - {{port: {port}, protocol: {proto}}}\n"
        ),
        _ => format!(
            "  podSelector:\n    matchLabels: {{app: {app}}}\n  ingress:\n  - {{}}\n  egress:\n  - to:\n    - podSelector:\n        matchLabels: {{app: {other}}}\n  policyTypes: [Ingress, Egress]\n"
        ),
    };
    crate::scenarios::np(ns, &format!("soak-{seq}"), &spec)
}

/// One random change to `state`; returns its kind.
fn change(rng: &mut Rng, seq: &mut usize, state: &mut State, max_pods: usize) -> &'static str {
    *seq += 1;
    loop {
        match rng.below(20) {
            0..=7 if !state.pods.is_empty() => {
                let i = rng.below(state.pods.len());
                let key = rng.pick(&["app", "tier", "extra"]);
                let value = match key {
                    "app" => rng.pick(&APPS),
                    "tier" => rng.pick(&["front", "back"]),
                    _ => rng.pick(&["x", "y"]),
                };
                state.pods[i].labels.insert(key.into(), value.into());
                return "pod label";
            }
            8..=9 => {
                let ns = rng.pick(&NAMESPACES);
                let team = rng.pick(&["a", "b"]);
                state
                    .namespaces
                    .get_mut(ns)
                    .expect("known namespace")
                    .insert("team".into(), team.into());
                return "namespace label";
            }
            10..=13 if state.policies.len() < 12 => {
                state.policies.push(random_policy(rng, *seq));
                return "policy added";
            }
            14..=16 if !state.policies.is_empty() => {
                let i = rng.below(state.policies.len());
                state.policies.remove(i);
                return "policy removed";
            }
            17..=18 if state.pods.len() < max_pods => {
                let p = new_pod(rng, *seq, state);
                state.pods.push(p);
                return "pod added";
            }
            19 if state.pods.len() > 4 => {
                let i = rng.below(state.pods.len());
                state.pods.remove(i);
                return "pod removed";
            }
            _ => continue,
        }
    }
}

/// Clock ticks per second, for /proc/PID/stat.
fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// (user+system CPU, the same of its waited-for children, RSS in KiB) of a process, from /proc.
pub fn proc_usage(pid: u32) -> Result<(Duration, Duration, u64)> {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may contain spaces: fields count from after its ')'.
    let rest = stat.rsplit_once(')').context("malformed stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f[11].parse::<u64>()? + f[12].parse::<u64>()?;
    let child_ticks: u64 = f[13].parse::<u64>()? + f[14].parse::<u64>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")?;
    let d = |t: u64| Duration::from_millis(t * 1000 / clock_ticks());
    Ok((d(ticks), d(child_ticks), rss))
}

fn usage(sb: &Sandbox, started: Instant) -> Result<Usage> {
    let mut cpu = Duration::ZERO;
    let mut children_cpu = Duration::ZERO;
    let mut rss = Vec::new();
    for a in sb.agents() {
        let pid = a.pid().context("an agent is not running")?;
        // `ip netns exec` execs the agent in place; make sure this is the agent, not `ip`.
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() != "policyc" {
            bail!("process {pid} is {comm:?}, not the agent");
        }
        let (c, cc, r) = proc_usage(pid)?;
        cpu += c;
        children_cpu += cc;
        rss.push(r);
    }
    Ok(Usage {
        at: started.elapsed(),
        cpu,
        children_cpu,
        rss_kib: rss,
    })
}

fn cells(ms: &[Matrix]) -> usize {
    ms.iter()
        .map(|m| m.results.len() * m.pods.len() * m.pods.len())
        .sum()
}

/// Pauses the churn: waits until the observed matrix equals the prediction, then probes
/// `rounds` more times and counts what differs.
fn sample(sb: &mut Sandbox, rounds: usize, report: &mut Report, timeout: Duration) -> Result<Duration> {
    let since = Instant::now();
    let predicted: Vec<Matrix> = sb
        .families()
        .iter()
        .map(|f| sb.predicted(f))
        .collect::<Result<_>>()?;
    loop {
        let observed = sb.observe_matrices(&predicted)?;
        report.probes += cells(&predicted);
        let bad: Vec<_> = predicted
            .iter()
            .zip(&observed)
            .flat_map(|(m, o)| crate::observe::mismatches(m, o))
            .collect();
        if bad.is_empty() {
            break;
        }
        if since.elapsed() > timeout {
            let list: Vec<String> = bad.iter().take(30).map(|m| format!("  {m}")).collect();
            bail!(
                "no convergence within {timeout:?} after {} changes:\n{}\n{}",
                report.changes,
                list.join("\n"),
                sb.agent_logs()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let took = since.elapsed();
    for _ in 0..rounds {
        let observed = sb.observe_matrices(&predicted)?;
        report.probes += cells(&predicted);
        for (m, o) in predicted.iter().zip(&observed) {
            for mm in crate::observe::mismatches(m, o) {
                if mm.predicted {
                    report.allowed_failures += 1;
                } else {
                    report.denied_passes += 1;
                    report.leaks.push(mm.to_string());
                }
            }
        }
    }
    Ok(took)
}

/// Runs the soak on `sb` (no manifests applied yet, agents not started). Returns the report
/// even when a property fails, with the failure.
pub fn run(sb: &mut Sandbox, cfg: &Config) -> (Report, Result<()>) {
    let mut report = Report::default();
    let r = run_inner(sb, cfg, &mut report);
    (report, r)
}

fn run_inner(sb: &mut Sandbox, cfg: &Config, report: &mut Report) -> Result<()> {
    let mut rng = Rng(cfg.seed);
    let mut state = initial(cfg.seed);
    sb.apply(state.clone())?;
    sb.start_agents()?;
    let started = Instant::now();
    sample(sb, 0, report, Duration::from_secs(20)).context("initial convergence")?;
    report.usage.push(usage(sb, started)?);
    let interval = Duration::from_secs_f64(60.0 / f64::from(cfg.changes_per_minute.max(1)));
    let mut seq = 1000;
    let mut churned = Duration::ZERO;
    let mut last_usage = Instant::now();
    let mut last_write = Instant::now();
    while churned < cfg.duration {
        let window = cfg.sample_every.min(cfg.duration - churned);
        let window_start = Instant::now();
        let mut n = 0u32;
        while window_start.elapsed() < window {
            let kind = change(&mut rng, &mut seq, &mut state, cfg.max_pods);
            *report.by_kind.entry(kind).or_default() += 1;
            report.changes += 1;
            if last_write.elapsed() >= cfg.write_every {
                sb.apply(state.clone())?;
                report.writes += 1;
                last_write = Instant::now();
            }
            n += 1;
            // Paced against the window's start, so a slow change (a pod's namespace) is caught
            // up on rather than lowering the rate.
            let due = interval * n;
            if let Some(wait) = due.checked_sub(window_start.elapsed()) {
                std::thread::sleep(wait);
            }
            if last_usage.elapsed() > Duration::from_secs(5) {
                report.usage.push(usage(sb, started)?);
                last_usage = Instant::now();
            }
        }
        churned += window_start.elapsed();
        report.churn_time = churned;
        sb.apply(state.clone())?;
        report.writes += 1;
        let converged_in = sample(sb, cfg.verify_rounds, report, Duration::from_secs(30))?;
        report.samples.push(Sample {
            at: churned,
            changes: report.changes,
            pods: state.pods.len(),
            policies: state.policies.len(),
            converged_in,
        });
        report.usage.push(usage(sb, started)?);
    }
    if report.denied_passes > 0 {
        bail!(
            "{} denied probes passed after convergence:\n  {}",
            report.denied_passes,
            report.leaks.join("\n  ")
        );
    }
    Ok(())
}

/// The bound on memory: every agent's RSS at the end within `factor` × (plus `slack_kib`) of its
/// RSS after `after` of the run.
pub fn check_rss_bounded(report: &Report, after: Duration, factor: f64, slack_kib: u64) -> Result<()> {
    let (first, last) = report.rss_growth(after).context("no usage samples")?;
    for (i, (f, l)) in first.iter().zip(&last).enumerate() {
        let bound = (*f as f64 * factor) as u64 + slack_kib;
        if *l > bound {
            bail!("agent {i}: RSS grew from {f} KiB to {l} KiB (bound {bound} KiB)");
        }
    }
    Ok(())
}
