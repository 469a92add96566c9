//! A running sandbox cluster: the network, a server in every pod, the enforcement (the real
//! `policyc agent` per node, or the `policyc render | nft -f` stand-in), and the comparison of the
//! matrix observed with real probes against the one `policyc matrix` predicts.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::manifest::{self, PodSpec, State};
use crate::policyc::{self, Agent, Binaries, Matrix};
use crate::probe::{Proto, Request, Response, Target};
use crate::sh;
use crate::topology::{Kind, Network, PodNet};

/// How policy gets into the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enforcer {
    /// `policyc agent` in every node namespace, watching the manifest directory.
    Agent,
    /// `policyc render` piped into `nft -f -` after each change (development stand-in).
    Render,
    /// Nothing: every connection must pass (checks the plumbing itself).
    None,
}

impl Enforcer {
    /// `POLICYC_E2E_ENFORCER=render` selects the stand-in (`none`: no enforcement, to see the
    /// tests fail); the default is the real agent.
    pub fn from_env() -> Enforcer {
        match std::env::var("POLICYC_E2E_ENFORCER").as_deref() {
            Ok("render") => Enforcer::Render,
            Ok("none") => Enforcer::None,
            _ => Enforcer::Agent,
        }
    }
}

/// The ports every server listens on, whatever the pods declare, so that a failed probe means
/// "dropped", never "nothing listening".
#[derive(Clone, Debug)]
pub struct Universe {
    pub tcp: Vec<u16>,
    pub udp: Vec<u16>,
    /// Whether SCTP INITs are logged (probed when the matrix has SCTP ports).
    pub sctp: bool,
}

pub const PROBE_TIMEOUT_MS: u64 = 400;

struct RunningPod {
    spec: PodSpec,
    ns: String,
    ips: Vec<IpAddr>,
    sctp_log: PathBuf,
    server: Child,
    /// None for hostNetwork pods, which run in the node namespace.
    _net: Option<PodNet>,
}

impl Drop for RunningPod {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// One probe's outcome against the prediction.
#[derive(Clone, Debug)]
pub struct Mismatch {
    pub family: String,
    pub from: String,
    pub to: String,
    pub port: u16,
    pub protocol: String,
    pub predicted: bool,
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} -> {} {}/{}: predicted {}, observed {}",
            self.family,
            self.from,
            self.to,
            self.port,
            self.protocol,
            if self.predicted { "allow" } else { "deny" },
            if self.predicted { "deny" } else { "allow" }
        )
    }
}

/// Fields drop in order: agents, then pods (servers, namespaces), then the network.
pub struct Sandbox {
    agents: Vec<Agent>,
    pods: BTreeMap<String, RunningPod>,
    pub net: Network,
    pub bins: Binaries,
    pub enforcer: Enforcer,
    pub universe: Universe,
    pub state: State,
    pub dir: tempfile::TempDir,
    logs: tempfile::TempDir,
    /// (step, time from writing the manifests to the observed matrix matching), per converge.
    pub convergence: Vec<(String, Duration)>,
}

impl Sandbox {
    pub fn new(
        bins: Binaries,
        kind: Kind,
        nodes: usize,
        dual_stack: bool,
        universe: Universe,
        enforcer: Enforcer,
    ) -> Result<Sandbox> {
        crate::netns::sweep_leftovers()?;
        let run_id = crate::netns::new_run_id();
        let net = Network::build(&run_id, kind, nodes, dual_stack)
            .with_context(|| format!("building the {} network", kind.name()))?;
        Ok(Sandbox {
            agents: Vec::new(),
            pods: BTreeMap::new(),
            net,
            bins,
            enforcer,
            universe,
            state: State::default(),
            dir: tempfile::tempdir()?,
            logs: tempfile::tempdir()?,
            convergence: Vec::new(),
        })
    }

    fn spawn_server(&self, ns: &str, udp_addrs: &[IpAddr], log: &std::path::Path) -> Result<Child> {
        let join = |v: &[u16]| v.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
        let mut cmd = sh::netns_command(ns, self.bins.pod.to_str().context("non-UTF-8 path")?);
        cmd.arg("serve");
        if !self.universe.tcp.is_empty() {
            cmd.args(["--tcp", &join(&self.universe.tcp)]);
        }
        if !self.universe.udp.is_empty() {
            cmd.args(["--udp", &join(&self.universe.udp)]);
            if !udp_addrs.is_empty() {
                let a: Vec<String> = udp_addrs.iter().map(IpAddr::to_string).collect();
                cmd.args(["--udp-addr", &a.join(",")]);
            }
        }
        if self.universe.sctp {
            cmd.arg("--sctp-log").arg(log);
        }
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line)?;
        if line.trim() != "ready" {
            let _ = child.kill();
            bail!("server in {ns} did not start: {line:?}");
        }
        Ok(child)
    }

    fn start_pod(&mut self, spec: &PodSpec) -> Result<RunningPod> {
        let label = format!("{}-{}", spec.namespace, spec.name);
        let sctp_log = self.logs.path().join(format!("{label}.sctp"));
        let (ns, ips, net) = if spec.host_network {
            let node = &self.net.nodes[spec.node];
            (node.ns.name.clone(), node.ips(), None)
        } else {
            let pn = self.net.add_pod(spec.node, spec.host, &label)?;
            (pn.ns.name.clone(), pn.ips.clone(), Some(pn))
        };
        let udp_addrs = if spec.host_network {
            ips.clone()
        } else {
            Vec::new()
        };
        let server = self
            .spawn_server(&ns, &udp_addrs, &sctp_log)
            .with_context(|| format!("pod {}", spec.key()))?;
        Ok(RunningPod {
            spec: spec.clone(),
            ns,
            ips,
            sctp_log,
            server,
            _net: net,
        })
    }

    /// Brings the running pods in line with `state` and writes the manifests; returns when they
    /// were written (the start of the convergence clock).
    pub fn apply(&mut self, state: State) -> Result<Instant> {
        let wanted: BTreeMap<String, &PodSpec> = state.pods.iter().map(|p| (p.key(), p)).collect();
        let stale: Vec<String> = self
            .pods
            .iter()
            .filter(|(k, rp)| {
                // Labels may change in place; placement and networking may not.
                wanted.get(*k).is_none_or(|w| {
                    (w.node, w.host, w.host_network) != (rp.spec.node, rp.spec.host, rp.spec.host_network)
                })
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            self.pods.remove(&k);
        }
        for (k, spec) in &wanted {
            if !self.pods.contains_key(k) {
                let rp = self.start_pod(spec)?;
                self.pods.insert(k.clone(), rp);
            }
        }
        let nodes: Vec<Vec<IpAddr>> = self.net.nodes.iter().map(|n| n.ips()).collect();
        let pod_ips: BTreeMap<String, Vec<IpAddr>> = self
            .pods
            .iter()
            .map(|(k, rp)| (k.clone(), rp.ips.clone()))
            .collect();
        manifest::write(self.dir.path(), &state, &nodes, |p| {
            pod_ips.get(&p.key()).cloned().unwrap_or_default()
        })?;
        self.state = state;
        let written = Instant::now();
        if self.enforcer == Enforcer::Render {
            for n in &self.net.nodes {
                policyc::render_apply(&self.bins, &n.ns.name, &n.name, self.dir.path())?;
            }
        }
        Ok(written)
    }

    /// Starts the agents (after the first [`apply`](Self::apply)) and waits until all are ready.
    pub fn start_agents(&mut self) -> Result<Vec<Duration>> {
        if self.enforcer != Enforcer::Agent {
            return Ok(Vec::new());
        }
        for n in &self.net.nodes {
            let log = self.logs.path().join(format!("agent-{}.log", n.name));
            self.agents.push(Agent::start(
                &self.bins,
                &n.ns.name,
                &n.name,
                self.dir.path(),
                log,
            )?);
        }
        let mut ready = Vec::new();
        for a in &mut self.agents {
            ready.push(a.wait_ready(&self.bins, Duration::from_secs(30))?);
        }
        Ok(ready)
    }

    pub fn agent_mut(&mut self, node: usize) -> &mut Agent {
        &mut self.agents[node]
    }

    pub fn restart_agent(&mut self, node: usize) -> Result<Duration> {
        let (bins, dir) = (self.bins.clone(), self.dir.path().to_path_buf());
        let a = &mut self.agents[node];
        a.restart(&bins, &dir)?;
        a.wait_ready(&bins, Duration::from_secs(30))
    }

    pub fn agent_logs(&self) -> String {
        self.agents
            .iter()
            .map(|a| format!("--- agent {} ---\n{}\n", a.node, a.log_text()))
            .collect()
    }

    pub fn pod_ip(&self, key: &str, v6: bool) -> Option<IpAddr> {
        self.pods
            .get(key)?
            .ips
            .iter()
            .copied()
            .find(|ip| ip.is_ipv6() == v6)
    }

    pub fn pod_ns(&self, key: &str) -> Option<&str> {
        self.pods.get(key).map(|p| p.ns.as_str())
    }

    /// Source address a pod probes from: hostNetwork pods bind their node's address (else the
    /// kernel would pick the bridge or vxlan address, which is no address of the pod).
    fn bind_of(&self, key: &str, v6: bool) -> Option<IpAddr> {
        let rp = self.pods.get(key)?;
        if rp.spec.host_network {
            rp.ips.iter().copied().find(|ip| ip.is_ipv6() == v6)
        } else {
            None
        }
    }

    pub fn target(&self, key: &str, ip: IpAddr, port: u16, proto: Proto) -> Target {
        Target {
            ip,
            port,
            proto,
            sctp_log: (proto == Proto::Sctp).then(|| self.pods[key].sctp_log.clone()),
        }
    }

    /// Runs one prober per source namespace, all at once; returns `ok` per target, per source.
    pub fn probe_all(&self, requests: &[(String, Request)]) -> Result<Vec<Vec<bool>>> {
        probe_all(&self.bins.pod, requests)
    }

    /// Probes every (source, destination, port) of `m`: `observed[result][from][to]`, laid out as
    /// `m.results[..].allowed`.
    pub fn observe_matrix(&self, m: &Matrix) -> Result<Vec<Vec<Vec<bool>>>> {
        Ok(self.observe_matrices(std::slice::from_ref(m))?.remove(0))
    }

    /// Like [`observe_matrix`](Self::observe_matrix) for several matrices (the families of a
    /// dual-stack cluster) in one round of probes, so a round costs one probe timeout.
    pub fn observe_matrices(&self, ms: &[Matrix]) -> Result<Vec<Vec<Vec<Vec<bool>>>>> {
        let mut requests = Vec::new();
        // Per request: (matrix, source row, cells as (result, destination column)).
        let mut cells = Vec::new();
        for (mi, m) in ms.iter().enumerate() {
            let v6 = m.family == "ipv6";
            for (i, src) in m.pods.iter().enumerate() {
                let ns = self
                    .pod_ns(src)
                    .with_context(|| format!("matrix names unknown pod {src}"))?;
                let mut targets = Vec::new();
                let mut these = Vec::new();
                for (k, r) in m.results.iter().enumerate() {
                    let proto: Proto = serde_json::from_value(serde_json::json!(r.protocol))?;
                    if proto == Proto::Sctp && !self.universe.sctp {
                        bail!(
                            "the matrix has SCTP port {} but the servers do not log SCTP",
                            r.port
                        );
                    }
                    for (j, dst) in m.pods.iter().enumerate() {
                        let ip = self
                            .pod_ip(dst, v6)
                            .with_context(|| format!("{dst} has no address of {}", m.family))?;
                        targets.push(self.target(dst, ip, r.port, proto));
                        these.push((k, j));
                    }
                }
                requests.push((
                    ns.to_string(),
                    Request {
                        bind: self.bind_of(src, v6),
                        timeout_ms: PROBE_TIMEOUT_MS,
                        targets,
                    },
                ));
                cells.push((mi, i, these));
            }
        }
        let results = self.probe_all(&requests)?;
        let mut observed: Vec<Vec<Vec<Vec<bool>>>> = ms
            .iter()
            .map(|m| vec![vec![vec![false; m.pods.len()]; m.pods.len()]; m.results.len()])
            .collect();
        for ((mi, i, these), oks) in cells.iter().zip(results) {
            for (&(k, j), ok) in these.iter().zip(oks) {
                observed[*mi][k][*i][j] = ok;
            }
        }
        Ok(observed)
    }

    /// Probes every cell of `m` and lists where reality differs from the prediction.
    pub fn observe(&self, m: &Matrix) -> Result<Vec<Mismatch>> {
        let observed = self.observe_matrix(m)?;
        Ok(mismatches(m, &observed))
    }

    pub fn families(&self) -> Vec<&'static str> {
        if self.net.dual_stack {
            vec!["ipv4", "ipv6"]
        } else {
            vec!["ipv4"]
        }
    }

    pub fn predicted(&self, family: &str) -> Result<Matrix> {
        policyc::predicted_matrix(&self.bins, self.dir.path(), family)
    }

    /// Polls until the observed matrix equals the prediction in every family (or fails after
    /// `timeout` listing the differences); records how long it took since `since`.
    pub fn converge(&mut self, step: &str, since: Instant, timeout: Duration) -> Result<Duration> {
        let predicted: Vec<Matrix> = self
            .families()
            .iter()
            .map(|f| self.predicted(f))
            .collect::<Result<_>>()?;
        loop {
            let observed = self.observe_matrices(&predicted)?;
            let mismatches: Vec<Mismatch> = predicted
                .iter()
                .zip(&observed)
                .flat_map(|(m, o)| mismatches(m, o))
                .collect();
            if mismatches.is_empty() {
                let took = since.elapsed();
                self.convergence.push((step.to_string(), took));
                return Ok(took);
            }
            if since.elapsed() > timeout {
                let mut list: Vec<String> = mismatches.iter().take(40).map(|m| format!("  {m}")).collect();
                if mismatches.len() > 40 {
                    list.push(format!("  ... and {} more", mismatches.len() - 40));
                }
                bail!(
                    "{}: step {step:?}: observed matrix still differs from `policyc matrix` after {timeout:?} ({} cells):\n{}\n{}",
                    self.net.kind.name(),
                    mismatches.len(),
                    list.join("\n"),
                    self.agent_logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Applies `state` and waits for enforcement to match the prediction.
    pub fn step(&mut self, name: &str, state: State) -> Result<Duration> {
        let since = self.apply(state)?;
        self.converge(name, since, Duration::from_secs(10))
    }

    /// Kubelet-style traffic: each node probes its own (non-hostNetwork) pods on every served
    /// port; NetworkPolicy never blocks it. Returns the failures.
    pub fn node_to_local_pods(&self) -> Result<Vec<String>> {
        let mut requests = Vec::new();
        let mut labels = Vec::new();
        for node in &self.net.nodes {
            let mut targets = Vec::new();
            let mut these = Vec::new();
            for rp in self
                .pods
                .values()
                .filter(|p| p.spec.node == node.index && !p.spec.host_network)
            {
                for &ip in &rp.ips {
                    for &port in &self.universe.tcp {
                        targets.push(self.target(&rp.spec.key(), ip, port, Proto::Tcp));
                        these.push(format!("{} -> {} {ip} {port}/TCP", node.name, rp.spec.key()));
                    }
                    for &port in &self.universe.udp {
                        targets.push(self.target(&rp.spec.key(), ip, port, Proto::Udp));
                        these.push(format!("{} -> {} {ip} {port}/UDP", node.name, rp.spec.key()));
                    }
                }
            }
            requests.push((
                node.ns.name.clone(),
                Request {
                    bind: None,
                    timeout_ms: PROBE_TIMEOUT_MS,
                    targets,
                },
            ));
            labels.push(these);
        }
        let results = self.probe_all(&requests)?;
        Ok(labels
            .into_iter()
            .flatten()
            .zip(results.into_iter().flatten())
            .filter(|(_, ok)| !ok)
            .map(|(l, _)| l)
            .collect())
    }

    /// Emulated kube-proxy: `vip:port` → `backend`'s IPv4 `target` port on every node, then each
    /// pod (and the backend's node) dials the VIP; the backend's policy must decide exactly as
    /// for a direct connection. Returns the differences from the prediction.
    pub fn check_service(&self, vip: Ipv4Addr, port: u16, backend: &str, target: u16) -> Result<Vec<String>> {
        let Some(IpAddr::V4(be_ip)) = self.pod_ip(backend, false) else {
            bail!("service backend {backend} has no IPv4 address");
        };
        self.net.install_service(vip, port, be_ip, target)?;
        let m = self.predicted("ipv4")?;
        let col = m
            .pods
            .iter()
            .position(|p| p == backend)
            .context("backend not in the matrix")?;
        let r = m
            .results
            .iter()
            .find(|r| r.port == target && r.protocol == "TCP")
            .context("service target port not in the matrix")?;
        let mut requests = Vec::new();
        let mut expect = Vec::new();
        for (i, src) in m.pods.iter().enumerate() {
            let rp = &self.pods[src];
            if rp.spec.host_network || src == backend {
                continue;
            }
            let t = Target {
                ip: IpAddr::V4(vip),
                port,
                proto: Proto::Tcp,
                sctp_log: None,
            };
            requests.push((
                rp.ns.clone(),
                Request {
                    bind: None,
                    timeout_ms: PROBE_TIMEOUT_MS,
                    targets: vec![t],
                },
            ));
            expect.push((
                format!("{src} -> {vip}:{port} (= {backend}:{target})"),
                r.allowed[i][col],
            ));
        }
        let be_node = &self.net.nodes[self.pods[backend].spec.node];
        let t = Target {
            ip: IpAddr::V4(vip),
            port,
            proto: Proto::Tcp,
            sctp_log: None,
        };
        requests.push((
            be_node.ns.name.clone(),
            Request {
                bind: None,
                timeout_ms: PROBE_TIMEOUT_MS,
                targets: vec![t],
            },
        ));
        expect.push((
            format!(
                "{} -> {vip}:{port} (= {backend}:{target}, node-local)",
                be_node.name
            ),
            true,
        ));
        let results = self.probe_all(&requests)?;
        Ok(expect
            .into_iter()
            .zip(results.into_iter().flatten())
            .filter(|((_, want), got)| want != got)
            .map(|((l, want), _)| format!("{l}: predicted {}", if want { "allow" } else { "deny" }))
            .collect())
    }

    /// Convergence times seen so far: (median, max).
    pub fn convergence_summary(&self) -> Option<(Duration, Duration)> {
        summary(self.convergence.iter().map(|(_, d)| *d).collect())
    }
}

pub fn summary(mut v: Vec<Duration>) -> Option<(Duration, Duration)> {
    v.sort();
    Some((*v.get(v.len() / 2)?, *v.last()?))
}

/// The cells where `observed` differs from `m`'s prediction.
pub fn mismatches(m: &Matrix, observed: &[Vec<Vec<bool>>]) -> Vec<Mismatch> {
    let mut out = Vec::new();
    for (r, obs) in m.results.iter().zip(observed) {
        for (i, row) in r.allowed.iter().enumerate() {
            for (j, &predicted) in row.iter().enumerate() {
                if obs[i][j] != predicted {
                    out.push(Mismatch {
                        family: m.family.clone(),
                        from: m.pods[i].clone(),
                        to: m.pods[j].clone(),
                        port: r.port,
                        protocol: r.protocol.clone(),
                        predicted,
                    });
                }
            }
        }
    }
    out
}

/// Runs one prober per source namespace, all at once; returns `ok` per target, per source.
pub fn probe_all(pod_bin: &std::path::Path, requests: &[(String, Request)]) -> Result<Vec<Vec<bool>>> {
    let mut children = Vec::new();
    for (ns, req) in requests {
        let mut child = sh::netns_command(ns, pod_bin.to_str().context("non-UTF-8 path")?)
            .arg("probe")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().expect("piped");
        stdin.write_all(serde_json::to_string(req)?.as_bytes())?;
        drop(stdin);
        children.push(child);
    }
    let mut out = Vec::new();
    for (child, (ns, req)) in children.into_iter().zip(requests) {
        let o = child.wait_with_output()?;
        if !o.status.success() {
            bail!("prober in {ns} failed: {}", String::from_utf8_lossy(&o.stderr));
        }
        let r: Response = serde_json::from_slice(&o.stdout).context("prober output")?;
        if r.ok.len() != req.targets.len() {
            bail!(
                "prober in {ns} answered {} of {} targets",
                r.ok.len(),
                req.targets.len()
            );
        }
        out.push(r.ok);
    }
    Ok(out)
}

/// A long-lived TCP connection from inside a namespace (`e2e-pod session`), driven line by line.
pub struct Session {
    child: Child,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Session {
    pub fn open(pod_bin: &std::path::Path, ns: &str, target: std::net::SocketAddr) -> Result<Session> {
        let mut child = sh::netns_command(ns, pod_bin.to_str().context("non-UTF-8 path")?)
            .args(["session", &target.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take().expect("piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped"));
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        if !line.starts_with("connected") {
            bail!("session from {ns} to {target} did not connect: {line:?}");
        }
        Ok(Session { child, stdin, stdout })
    }

    /// Sends `msg` over the connection and checks its echo (bounded by the session's timeout).
    pub fn exchange(&mut self, msg: &str) -> Result<()> {
        writeln!(self.stdin, "{msg}")?;
        self.stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        if line.trim_end() != format!("OK {msg}") {
            bail!("exchange {msg:?} failed: {line:?}");
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
