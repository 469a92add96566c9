//! Data-plane measurement: the per-packet and per-connection cost of an nftables ruleset on the
//! same-node pod-to-pod path, with real packets through a node namespace's inet `forward` hook.
//!
//! One node namespace (bridge `cni0`, `br_netfilter` on, as e2e's topology builds it) with a
//! client and a server pod. For each ruleset of a comparison, repetitions interleaved so that
//! drift in the machine's load hits all alike, it measures:
//!
//! - UDP, a new flow per packet ([`udp::Flow::NewPerPacket`]) and one steady flow
//!   ([`udp::Flow::Steady`]): 64-byte packets per second delivered to the server's `eth0`;
//! - TCP: new connections per second (connect, accept, close; [`tcp`]);
//!
//! and checks that the ruleset does its job: packets to [`DENIED_PORT`] must not arrive.
//! Used by the `dataplane-bench` binary and by the bench crate.

pub mod linear;
pub mod synth;
pub mod tcp;
pub mod udp;

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::netns;
use crate::sh;
use crate::topology::{Kind, Network, PodNet};

/// The port (UDP and TCP) the client must be admitted on.
pub const PORT: u16 = 5001;
/// A port the server's policy must not admit: the isolation check.
pub const DENIED_PORT: u16 = 5002;

/// A table that enables conntrack and nothing else: what every kube-proxy (or flannel
/// masquerade) node already pays, without any policy.
pub const CONNTRACK_ONLY: &str = "table inet ct-only {\n\tchain forward {\n\t\t\
    type filter hook forward priority filter; policy accept;\n\t\tct state established,related accept\n\t}\n}\n";

#[derive(Clone, Debug)]
pub struct Options {
    /// Seconds per measurement.
    pub secs: f64,
    /// Client threads of the TCP connection loop.
    pub tcp_clients: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            secs: 2.0,
            tcp_clients: 4,
        }
    }
}

/// The node, the two pods and their sockets; everything is removed on drop.
pub struct Bed {
    pub client: Ipv4Addr,
    pub server: Ipv4Addr,
    pub opts: Options,
    node_ns: String,
    // Sockets and threads go before the namespaces they live in.
    udp: udp::Udp,
    tcp: tcp::Tcp,
    _pods: Vec<PodNet>,
    _net: Network,
}

impl Bed {
    /// Pods `client` and `server` (`/prefix`, on the same link) on one flannel host-gw node.
    pub fn new(client: Ipv4Addr, server: Ipv4Addr, prefix: u8, opts: Options) -> Result<Bed> {
        if let Some(reason) = crate::prereq::missing() {
            bail!("cannot run: {reason}");
        }
        if !(opts.secs > 0.0 && opts.secs <= 60.0) {
            bail!("seconds per measurement must be in (0, 60]");
        }
        let _ = netns::sweep_leftovers();
        let mut net = Network::build(&netns::new_run_id(), Kind::FlannelHostGw, 1, false)?;
        let client_pod = net.add_pod_v4(0, client, prefix, "client")?;
        let server_pod = net.add_pod_v4(0, server, prefix, "server")?;
        let node_ns = net.nodes[0].ns.name.clone();
        // The TCP loop leaves ~20k reset connections per second in the node's conntrack table,
        // held 10 s by default: expiring them after 1 s keeps one measurement's leftovers from
        // growing the table that the next one looks packets up in.
        sh::exec(
            &node_ns,
            "sysctl",
            &["-qw", "net.netfilter.nf_conntrack_tcp_timeout_close=1"],
        )?;
        let udp = udp::Udp::new(&client_pod.ns.name, &server_pod.ns.name, client, server, PORT)?;
        let tcp = tcp::Tcp::new(&client_pod.ns.name, &server_pod.ns.name, server, PORT)?;
        let bed = Bed {
            client,
            server,
            opts,
            node_ns,
            udp,
            tcp,
            _pods: vec![client_pod, server_pod],
            _net: net,
        };
        // Resolves the server's neighbour entry so that no measurement starts with ARP.
        bed.udp.blast(udp::Flow::NewPerPacket, PORT, 0.2)?;
        Ok(bed)
    }

    /// The node's namespace (where the rulesets are loaded).
    pub fn node_ns(&self) -> &str {
        &self.node_ns
    }

    /// Replaces the node's whole ruleset with `script` (none: no table at all); returns the time
    /// `nft -f` took.
    pub fn apply(&self, script: Option<&str>) -> Result<Duration> {
        sh::exec(&self.node_ns, "nft", &["flush", "ruleset"])?;
        let t = Instant::now();
        if let Some(script) = script {
            sh::exec_stdin(&self.node_ns, "nft", &["-f", "-"], Some(script))?;
        }
        Ok(t.elapsed())
    }

    /// Whether the loaded ruleset blocks the client on [`DENIED_PORT`].
    pub fn isolation(&self) -> Result<Isolation> {
        let b = self.udp.blast(udp::Flow::NewPerPacket, DENIED_PORT, 0.3)?;
        Ok(Isolation {
            udp_delivered: b.delivered as f64 / b.sent.max(1) as f64,
            tcp_answered: self.tcp.answered(DENIED_PORT, Duration::from_millis(300))?,
        })
    }

    /// One measurement of each figure under the loaded ruleset.
    pub fn measure(&self) -> Result<Figures> {
        Ok(Figures {
            udp_new: self.udp.measure(udp::Flow::NewPerPacket, self.opts.secs)?,
            udp_steady: self.udp.measure(udp::Flow::Steady, self.opts.secs)?,
            tcp: self.tcp.measure(self.opts.tcp_clients, self.opts.secs)?,
        })
    }

    /// Runs `runs` rounds over `setups`, each round loading each setup and measuring it (the
    /// order rotates per round); the isolation check runs in the first round.
    pub fn compare(&self, setups: &[Setup], runs: usize, mut log: impl FnMut(&str)) -> Result<Vec<Outcome>> {
        let mut out: Vec<Outcome> = setups
            .iter()
            .map(|s| Outcome {
                name: s.name.clone(),
                rules: s.rules,
                ..Outcome::default()
            })
            .collect();
        for round in 0..runs {
            for k in 0..setups.len() {
                let i = (k + round) % setups.len();
                let (setup, acc) = (&setups[i], &mut out[i]);
                let load = self
                    .apply(setup.script.as_deref())
                    .with_context(|| format!("loading {}", setup.name))?;
                acc.load_secs.push(load.as_secs_f64());
                if acc.isolation.is_none() {
                    acc.isolation = Some(self.isolation()?);
                }
                let f = self.measure()?;
                log(&format!(
                    "{} round {}: udp new {:.0} pps ({:.0}/cpu-s), udp steady {:.0} pps ({:.0}/cpu-s), \
                     tcp {:.0} conn/s ({:.0}/cpu-s), load {:.2} s",
                    setup.name,
                    round + 1,
                    f.udp_new.pps(),
                    f.udp_new.per_cpu_sec(),
                    f.udp_steady.pps(),
                    f.udp_steady.per_cpu_sec(),
                    f.tcp.per_sec(),
                    f.tcp.per_cpu_sec(),
                    load.as_secs_f64()
                ));
                acc.figures.push(f);
            }
        }
        self.apply(None)?;
        Ok(out)
    }
}

/// A ruleset to compare.
pub struct Setup {
    pub name: String,
    pub rules: usize,
    /// An nft script; `None` is no table.
    pub script: Option<String>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Figures {
    pub udp_new: udp::Blast,
    pub udp_steady: udp::Blast,
    pub tcp: tcp::Connects,
}

#[derive(Clone, Copy, Debug)]
pub struct Isolation {
    /// Share of UDP packets to [`DENIED_PORT`] that were delivered (0 when isolated).
    pub udp_delivered: f64,
    /// Whether a TCP SYN to [`DENIED_PORT`] got an answer.
    pub tcp_answered: bool,
}

impl Isolation {
    pub fn blocked(&self) -> bool {
        self.udp_delivered == 0.0 && !self.tcp_answered
    }
}

/// All measurements of one setup.
#[derive(Default)]
pub struct Outcome {
    pub name: String,
    pub rules: usize,
    pub load_secs: Vec<f64>,
    pub figures: Vec<Figures>,
    pub isolation: Option<Isolation>,
}

impl Outcome {
    pub fn udp_new(&self) -> Vec<f64> {
        self.figures.iter().map(|f| f.udp_new.pps()).collect()
    }

    pub fn udp_steady(&self) -> Vec<f64> {
        self.figures.iter().map(|f| f.udp_steady.pps()).collect()
    }

    pub fn tcp(&self) -> Vec<f64> {
        self.figures.iter().map(|f| f.tcp.per_sec()).collect()
    }

    pub fn udp_new_cpu(&self) -> Vec<f64> {
        self.figures.iter().map(|f| f.udp_new.per_cpu_sec()).collect()
    }

    pub fn udp_steady_cpu(&self) -> Vec<f64> {
        self.figures.iter().map(|f| f.udp_steady.per_cpu_sec()).collect()
    }

    pub fn tcp_cpu(&self) -> Vec<f64> {
        self.figures.iter().map(|f| f.tcp.per_cpu_sec()).collect()
    }

    /// Admitted packets or connections that did not make it (all runs).
    pub fn lost(&self) -> (u64, u64) {
        let udp = self
            .figures
            .iter()
            .flat_map(|f| [f.udp_new, f.udp_steady])
            .map(|b| b.sent.saturating_sub(b.delivered))
            .sum();
        (udp, self.figures.iter().map(|f| f.tcp.failed).sum())
    }
}

pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// CPU time of this process so far. The whole path of a packet runs on the CPU of the thread
/// that sent it (veth queues each packet to that CPU's backlog, processed in its softirq as the
/// send returns), and without IRQ time accounting (this kernel has none) that softirq time is
/// charged to the sending thread: CPU time per packet is the path's cost, and unlike the wall
/// rate it does not depend on how much of the CPU other work on the machine leaves.
pub fn process_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Runs `f` on a thread that has joined network namespace `ns` and waits for it; sockets it
/// creates stay in `ns` wherever they are used afterwards.
pub fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    spawn_in_netns(ns, f)
        .join()
        .map_err(|_| anyhow::anyhow!("netns thread panicked"))?
}

/// Like [`in_netns`] without waiting.
pub fn spawn_in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> JoinHandle<Result<T>> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || -> Result<T> {
        let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
        // SAFETY: setns on a valid namespace fd; it changes only this thread.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error()).context("setns");
        }
        Ok(f()?)
    })
}
