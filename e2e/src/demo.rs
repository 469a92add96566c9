//! The sandbox demo behind `cargo run -p policyc-e2e --bin sandbox`: `examples/` on a two-node
//! flannel-vxlan cluster, observed vs predicted.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::harness::{mismatches, Enforcer, Sandbox, Universe};
use crate::manifest::{PodSpec, PortSpec, State};
use crate::policyc::{self, Matrix};
use crate::probe::Proto;
use crate::topology::Kind;

/// Turns the examples' objects into the sandbox's state. The examples' pods sit on `node-N` with
/// addresses in `10.244.N.0/24`, which is exactly how the sandbox numbers things.
pub fn examples_state() -> Result<State> {
    let dir = policyc::workspace_root().join("examples");
    let mut texts = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let path = e.path();
        if matches!(
            path.extension().and_then(|x| x.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            texts.push((path.display().to_string(), std::fs::read_to_string(&path)?));
        }
    }
    let (cluster, objects, diags) =
        policyc_compiler::load::load_texts(texts.iter().map(|(n, t)| (n.as_str(), t.as_str())));
    if let Some(d) = diags.first() {
        bail!("examples/ has problems: {d}");
    }
    let mut state = State::default();
    for ns in cluster.namespaces.values().filter(|n| !n.implicit) {
        state.namespaces.insert(ns.name.clone(), ns.labels.clone());
    }
    for p in &cluster.pods {
        let node_name = p
            .node_name
            .as_deref()
            .with_context(|| format!("pod {} has no nodeName", p.key()))?;
        let node: usize = node_name
            .strip_prefix("node-")
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("pod {}: node {node_name:?} is not node-N", p.key()))?;
        let host = match p.ips.first() {
            Some(IpAddr::V4(ip)) if ip.octets()[..3] == [10, 244, node as u8] => ip.octets()[3],
            other => bail!(
                "pod {}: address {other:?} is not in node-{node}'s 10.244.{node}.0/24",
                p.key()
            ),
        };
        state.pods.push(PodSpec {
            namespace: p.namespace.clone(),
            name: p.name.clone(),
            labels: p.labels.clone(),
            node,
            host,
            host_network: p.host_network,
            ports: p
                .ports
                .iter()
                .map(|c| PortSpec {
                    name: c.name.clone(),
                    port: c.port,
                    proto: match c.protocol {
                        policyc_compiler::Protocol::Tcp => Proto::Tcp,
                        policyc_compiler::Protocol::Udp => Proto::Udp,
                        policyc_compiler::Protocol::Sctp => Proto::Sctp,
                    },
                })
                .collect(),
        });
    }
    for (np, _) in &objects.policies {
        state.policies.push(serde_yaml::to_string(np)?);
    }
    Ok(state)
}

fn universe(state: &State) -> Universe {
    let ports = |proto| -> Vec<u16> {
        let set: BTreeSet<u16> = state
            .pods
            .iter()
            .flat_map(|p| &p.ports)
            .filter(|c| c.proto == proto)
            .map(|c| c.port)
            .collect();
        set.into_iter().collect()
    };
    Universe {
        tcp: ports(Proto::Tcp),
        udp: ports(Proto::Udp),
        sctp: state
            .pods
            .iter()
            .flat_map(|p| &p.ports)
            .any(|c| c.proto == Proto::Sctp),
    }
}

/// Side by side: predicted | observed, `.` allowed, `X` denied; an observed cell that differs
/// from the prediction is followed by `!`.
pub fn render_side_by_side(m: &Matrix, observed: &[Vec<Vec<bool>>]) -> String {
    let w = m.pods.iter().map(|p| p.len()).max().unwrap_or(0);
    let n = m.pods.len();
    let cell = |b: bool| if b { '.' } else { 'X' };
    let mut out = String::new();
    for (r, obs) in m.results.iter().zip(observed) {
        out.push_str(&format!(
            "\n{}/{}   (rows: from, columns: to; . allowed, X denied, ! differs)\n",
            r.port, r.protocol
        ));
        let pw = 2 * n;
        let pred_head: String = (0..n).map(|j| format!("{j:>2}")).collect();
        let obs_head: String = (0..n).map(|j| format!("{j:>2} ")).collect();
        out.push_str(&format!(
            "{:pad$}{:<pw$}    observed\n",
            "",
            " predicted",
            pad = w + 3
        ));
        out.push_str(&format!(
            "{:pad$}{pred_head:<pw$}    {obs_head}\n",
            "",
            pad = w + 3
        ));
        for (i, row) in r.allowed.iter().enumerate() {
            let p: String = row.iter().map(|&b| format!(" {}", cell(b))).collect();
            let o: String = row
                .iter()
                .zip(&obs[i])
                .map(|(&want, &got)| format!(" {}{}", cell(got), if want == got { ' ' } else { '!' }))
                .collect();
            out.push_str(&format!("{i:>2} {:w$}{p:<pw$}    {}\n", m.pods[i], o.trim_end()));
        }
    }
    out
}

/// Runs the demo; `Ok(true)` when observation matches prediction.
pub fn run() -> Result<bool> {
    if let Some(reason) = crate::prereq::missing() {
        bail!("cannot build the sandbox: {reason}");
    }
    // Ctrl-C: the children get the signal too (same process group); remove the namespaces.
    ctrlc::set_handler(|| {
        crate::netns::destroy_own_runs();
        eprintln!("interrupted; sandbox removed");
        std::process::exit(130);
    })?;
    println!("building policyc and e2e-pod ...");
    let bins = policyc::build()?;
    let state = examples_state()?;
    println!("building a 2-node flannel-vxlan cluster in network namespaces ...");
    let mut sb = Sandbox::new(
        bins,
        Kind::FlannelVxlan,
        2,
        false,
        universe(&state),
        Enforcer::from_env(),
    )?;
    let since = sb.apply(state)?;
    println!(
        "starting policyc agent on node-0 and node-1 (manifests: {}) ...",
        sb.dir.path().display()
    );
    let ready = sb.start_agents()?;
    println!("agents ready after {ready:?}");
    let m = sb.predicted("ipv4")?;
    // Enforcement is asynchronous: poll until the observation matches, for a while.
    let (observed, took) = loop {
        let observed = sb.observe_matrix(&m)?;
        if mismatches(&m, &observed).is_empty() || since.elapsed() > Duration::from_secs(15) {
            break (observed, since.elapsed());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    println!("\npods:");
    for (i, p) in m.pods.iter().enumerate() {
        println!(
            "  {i:>2} {p} ({})",
            sb.pod_ip(p, false).map(|ip| ip.to_string()).unwrap_or_default()
        );
    }
    print!("{}", render_side_by_side(&m, &observed));
    let bad = mismatches(&m, &observed);
    let started = Instant::now();
    drop(sb);
    println!("\nsandbox removed in {:?}", started.elapsed());
    if bad.is_empty() {
        println!("MATCH: the traffic observed with real probes equals `policyc matrix` ({} cells, converged after {took:?})", m.results.len() * m.pods.len() * m.pods.len());
        Ok(true)
    } else {
        println!("MISMATCH: {} cell(s) differ:", bad.len());
        for b in &bad {
            println!("  {b}");
        }
        Ok(false)
    }
}
