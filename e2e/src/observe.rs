//! Observation: probe rounds from every source namespace at once, the observed matrix against
//! `policyc matrix`, kubelet-style node traffic, emulated Service traffic, and long-lived TCP
//! sessions.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Stdio};

use anyhow::{bail, Context, Result};

use crate::harness::{Sandbox, PROBE_TIMEOUT_MS};
use crate::policyc::Matrix;
use crate::probe::{Proto, Request, Response, Target};
use crate::sh;

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

impl Sandbox {
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

    /// A process on `node` (not bound to an address, like a node-local agent) dials `to`'s IPv4
    /// `port`: the kernel picks the source address from the route (with flannel vxlan that is
    /// `flannel.1`'s 10.244.N.0, not the node's InternalIP), and `policyc trace` from that
    /// address must give the verdict the packet gets. Returns (source, allowed) or a mismatch.
    pub fn check_host_process(
        &self,
        node: usize,
        to: &str,
        port: u16,
    ) -> Result<std::result::Result<(IpAddr, bool), String>> {
        let ns = &self.net.nodes[node].ns.name;
        let dst = self
            .pod_ip(to, false)
            .with_context(|| format!("{to} has no IPv4 address"))?;
        let route = sh::ip(ns, &["route", "get", &dst.to_string()])?;
        let src: IpAddr = route
            .split_whitespace()
            .skip_while(|w| *w != "src")
            .nth(1)
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("no source address in {route:?}"))?;
        let predicted = crate::policyc::trace_allowed(
            &self.bins,
            self.dir.path(),
            &src.to_string(),
            to,
            &port.to_string(),
        )?;
        let t = self.target(to, dst, port, Proto::Tcp);
        let req = Request {
            bind: None,
            timeout_ms: PROBE_TIMEOUT_MS,
            targets: vec![t],
        };
        let observed = self.probe_all(&[(ns.clone(), req)])?[0][0];
        Ok(if observed == predicted {
            Ok((src, observed))
        } else {
            Err(format!(
                "{} (source {src}) -> {to} {port}/TCP: predicted {}",
                self.net.nodes[node].name,
                if predicted { "allow" } else { "deny" }
            ))
        })
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
