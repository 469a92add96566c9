//! A running sandbox cluster: the network, a server in every pod, the enforcement (the real
//! `policyc agent` per node, or the `policyc render | nft -f` stand-in), and the comparison of the
//! matrix observed with real probes against the one `policyc matrix` predicts.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::manifest::{self, PodSpec, State};
pub use crate::observe::{mismatches, probe_all, Mismatch, Session};
use crate::policyc::{self, Agent, Binaries, Matrix};
use crate::probe::{Proto, Request, Target};
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

pub(crate) struct RunningPod {
    pub(crate) spec: PodSpec,
    pub(crate) ns: String,
    pub(crate) ips: Vec<IpAddr>,
    pub(crate) sctp_log: PathBuf,
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

/// Fields drop in order: agents, then pods (servers, namespaces), then the network.
pub struct Sandbox {
    agents: Vec<Agent>,
    pub(crate) pods: BTreeMap<String, RunningPod>,
    pub net: Network,
    pub bins: Binaries,
    pub enforcer: Enforcer,
    pub universe: Universe,
    pub state: State,
    pub dir: tempfile::TempDir,
    logs: tempfile::TempDir,
    /// (step, time from writing the manifests to the observed matrix matching), per converge.
    pub convergence: Vec<(String, Duration)>,
    /// Extra flags for every agent [`start_agents`](Self::start_agents) starts.
    pub agent_args: Vec<String>,
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
            agent_args: Vec::new(),
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
        self.start_agents_with(|_| Vec::new())
    }

    /// Like [`start_agents`](Self::start_agents), each agent with `args(node)` as extra flags
    /// after the sandbox's own `agent_args`.
    pub fn start_agents_with(&mut self, args: impl Fn(usize) -> Vec<String>) -> Result<Vec<Duration>> {
        if self.enforcer != Enforcer::Agent {
            return Ok(Vec::new());
        }
        for n in &self.net.nodes {
            let log = self.logs.path().join(format!("agent-{}.log", n.name));
            self.agents.push(Agent::start_with(
                &self.bins,
                &n.ns.name,
                &n.name,
                self.dir.path(),
                log,
                crate::policyc::AGENT_LISTEN.parse()?,
                self.agent_args.iter().cloned().chain(args(n.index)).collect(),
            )?);
        }
        let mut ready = Vec::new();
        for a in &mut self.agents {
            ready.push(a.wait_ready(&self.bins, Duration::from_secs(30))?);
        }
        Ok(ready)
    }

    /// Replaces node `node`'s agent by a new one with `args` serving on `listen`, as a DaemonSet
    /// rolling update does: `surge` false stops the old one (SIGTERM) first and then starts the
    /// new one (maxUnavailable); true starts the new one, waits until it is ready, then stops
    /// the old one (maxSurge). Returns the time until the new agent was ready.
    pub fn replace_agent(
        &mut self,
        node: usize,
        args: Vec<String>,
        listen: std::net::SocketAddr,
        surge: bool,
    ) -> Result<Duration> {
        let n = &self.net.nodes[node];
        let log = self.logs.path().join(format!("agent-{}.log", n.name));
        let started = Instant::now();
        if !surge {
            let status = self.agents[node].terminate()?;
            if !status.success() {
                bail!("agent on {} exited with {status} on SIGTERM", n.name);
            }
        }
        let mut new = Agent::start_with(
            &self.bins,
            &n.ns.name,
            &n.name,
            self.dir.path(),
            log,
            listen,
            args,
        )?;
        new.wait_ready(&self.bins, Duration::from_secs(30))?;
        let ready = started.elapsed();
        let mut old = std::mem::replace(&mut self.agents[node], new);
        if surge {
            let status = old.terminate()?;
            if !status.success() {
                bail!("agent on {} exited with {status} on SIGTERM", n.name);
            }
        }
        Ok(ready)
    }

    pub fn agents(&self) -> &[Agent] {
        &self.agents
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
    pub fn bind_of(&self, key: &str, v6: bool) -> Option<IpAddr> {
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
        crate::observe::probe_all(&self.bins.pod, requests)
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
        self.converge_to(step, since, timeout, &predicted)
    }

    /// Like [`converge`](Self::converge), to matrices the caller predicted (one per family).
    pub fn converge_to(
        &mut self,
        step: &str,
        since: Instant,
        timeout: Duration,
        predicted: &[Matrix],
    ) -> Result<Duration> {
        loop {
            let observed = self.observe_matrices(predicted)?;
            let mismatches: Vec<Mismatch> = predicted
                .iter()
                .zip(&observed)
                .flat_map(|(m, o)| crate::observe::mismatches(m, o))
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

    /// Convergence times seen so far: (median, max).
    pub fn convergence_summary(&self) -> Option<(Duration, Duration)> {
        summary(self.convergence.iter().map(|(_, d)| *d).collect())
    }
}

pub fn summary(mut v: Vec<Duration>) -> Option<(Duration, Duration)> {
    v.sort();
    Some((*v.get(v.len() / 2)?, *v.last()?))
}
