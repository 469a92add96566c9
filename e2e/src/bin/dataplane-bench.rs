//! Data-plane benchmark (not a test): the per-packet cost of policyc's ruleset against no table
//! and against a naive linear ruleset of the same policies, measured with real packets through the
//! inet `forward` hook of a node namespace, all in one run.
//!
//! One node namespace (bridge `cni0`, `br_netfilter` on, as e2e's topology builds it) with two pod
//! namespaces, client `10.244.0.10` and server `10.244.0.20`. A synthetic cluster of N pods and M
//! ingress policies (generated as YAML, loaded with `load_texts`) contains both real pods: the
//! server is isolated, the client admitted on UDP 5001. Per configuration the client blasts
//! 64-byte UDP packets (IPv4 total length) from a raw socket for a fixed time and the server's
//! `eth0` RX counter gives packets delivered per second:
//!
//! - *new*: the source port cycles through 16,384 values and the server never answers, so every
//!   packet is conntrack state `new` (UDP stays new until a reply is seen) and walks the rules;
//!   the conntrack entries this creates are bounded by the port range.
//! - *established*: one source port, answered once by the server before the blast, so every
//!   packet is `established` and accepted by the first rule of either ruleset.
//!
//! Run as root: `cargo run --release -p policyc-e2e --bin dataplane-bench [-- --secs 3]`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use policyc_compiler::eval::Engine;
use policyc_compiler::load::load_texts;
use policyc_compiler::model::Family;
use policyc_compiler::nft::{render, RenderOptions};
use policyc_compiler::policy::{Direction, PortMatch};
use policyc_compiler::{Cluster, Protocol};
use policyc_e2e::netns;
use policyc_e2e::sh;
use policyc_e2e::topology::{Kind, Network};
use socket2::{Domain, Protocol as SockProto, SockAddr, Socket, Type};

const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 10);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 244, 0, 20);
/// The port the client is admitted on.
const PORT: u16 = 5001;
/// A port the server's policy does not admit: the isolation check.
const DENIED_PORT: u16 = 5002;
const EST_SPORT: u16 = 40000;
const NEW_SPORT_BASE: u16 = 10000;
const NEW_SPORTS: u16 = 16384;
/// IPv4 total length of every packet.
const PACKET_LEN: usize = 64;
/// A blast never sends more than this, whatever the rate.
const MAX_PACKETS: u64 = 50_000_000;
const NODES: usize = 50;

#[derive(Parser)]
#[command(about = "Per-packet cost of policyc's nftables ruleset vs no table vs a linear ruleset")]
struct Args {
    /// Seconds per blast.
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// Repetitions per measurement (the median is reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Cluster sizes as PODS/POLICIES.
    #[arg(long, value_delimiter = ',', default_value = "100/20,1000/200,10000/2000")]
    sizes: Vec<String>,
}

fn main() -> std::process::ExitCode {
    match run(&Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    New,
    Established,
}

/// Medians of one configuration at one size.
struct Row {
    size: String,
    config: &'static str,
    rules: usize,
    new_pps: f64,
    est_pps: f64,
    /// Share of packets to the non-admitted port that were delivered (0 when isolated).
    denied_delivered: f64,
}

fn run(args: &Args) -> Result<()> {
    if let Some(reason) = policyc_e2e::prereq::missing() {
        bail!("cannot run: {reason}");
    }
    if args.reps == 0 || !(args.secs > 0.0 && args.secs <= 60.0) {
        bail!("--reps must be at least 1 and --secs in (0, 60]");
    }
    let _ = netns::sweep_leftovers();
    let run_id = netns::new_run_id();
    // host-gw with a single node: just the node, its `cni0` bridge and br_netfilter on.
    let mut net = Network::build(&run_id, Kind::FlannelHostGw, 1, false)?;
    let client = net.add_pod(0, 10, "client")?;
    let server = net.add_pod(0, 20, "server")?;
    let node = net.nodes[0].ns.name.clone();
    let raw = in_netns(&client.ns.name, || {
        Socket::new(Domain::IPV4, Type::RAW, Some(SockProto::from(libc::IPPROTO_RAW)))
    })?;
    let est = in_netns(&client.ns.name, || {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
        s.bind(&SockAddr::from(SocketAddrV4::new(CLIENT, EST_SPORT)))?;
        s.set_read_timeout(Some(Duration::from_millis(100)))?;
        Ok(s)
    })?;
    // Bound so that arrivals are not answered with ICMP; read only for the handshake, so it
    // overflows and drops (after `eth0` counted the packet).
    let sink = in_netns(&server.ns.name, || {
        let s = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
        s.bind(&SockAddr::from(SocketAddrV4::new(SERVER, PORT)))?;
        Ok(s)
    })?;
    let bench = Bench {
        server_ns: server.ns.name.clone(),
        raw,
        est,
        sink,
        secs: args.secs,
    };
    // Resolves the server's neighbour entry so that no blast starts with ARP.
    bench.blast(Mode::New, PORT, 0.2)?;

    let mut rows = Vec::new();
    for size in &args.sizes {
        let (pods, policies) = size
            .split_once('/')
            .and_then(|(p, q)| Some((p.parse().ok()?, q.parse().ok()?)))
            .with_context(|| format!("--sizes: `{size}` is not PODS/POLICIES"))?;
        let text = synth(pods, policies);
        let (cluster, _, diags) = load_texts([("synth.yaml", text.as_str())]);
        if let Some(d) = diags.first() {
            bail!("synthetic cluster does not load: {d}");
        }
        let ours = render(&cluster, &RenderOptions::new("node-0"));
        let stats = ours.stats();
        let (linear, linear_rules) = linear_ruleset(&cluster);
        let configs: [(&str, usize, Option<String>); 3] = [
            ("no table", 0, None),
            ("policyc", stats.rules, Some(ours.replace().script)),
            ("linear", linear_rules, Some(linear)),
        ];
        // Repetitions are interleaved across configurations, so drift in the machine's load (other
        // work on shared cores) affects all three alike and the ratios stay meaningful.
        let mut samples: Vec<Samples> = configs.iter().map(|_| Samples::default()).collect();
        for rep in 0..args.reps {
            for ((config, rules, script), acc) in configs.iter().zip(&mut samples) {
                sh::exec(&node, "nft", &["flush", "ruleset"])?;
                if let Some(script) = script {
                    let t = Instant::now();
                    sh::exec_stdin(&node, "nft", &["-f", "-"], Some(script))
                        .with_context(|| format!("applying {config} for {size}"))?;
                    if rep == 0 {
                        eprintln!(
                            "{size} {config}: {rules} rules, {} KiB script, applied in {:.1} s",
                            script.len() / 1024,
                            t.elapsed().as_secs_f64()
                        );
                    }
                }
                if rep == 0 {
                    let (sent, got) = bench.blast(Mode::New, DENIED_PORT, 0.3)?;
                    acc.denied_delivered = got as f64 / sent.max(1) as f64;
                }
                acc.new.push(bench.measure(Mode::New)?);
                acc.est.push(bench.measure(Mode::Established)?);
                eprintln!(
                    "{size} {config} rep {}: new {:.0} pps, established {:.0} pps",
                    rep + 1,
                    acc.new.last().map_or(0.0, |m| m.pps),
                    acc.est.last().map_or(0.0, |m| m.pps),
                );
            }
        }
        for ((config, rules, _), acc) in configs.iter().zip(samples) {
            let lost = acc
                .new
                .iter()
                .chain(&acc.est)
                .map(|m| m.sent.saturating_sub(m.delivered))
                .sum::<u64>();
            if lost > 0 {
                eprintln!("warning: {size} {config}: {lost} admitted packets were not delivered");
            }
            rows.push(Row {
                size: size.clone(),
                config,
                rules: *rules,
                new_pps: median(acc.new.iter().map(|m| m.pps).collect()),
                est_pps: median(acc.est.iter().map(|m| m.pps).collect()),
                denied_delivered: acc.denied_delivered,
            });
        }
    }
    sh::exec(&node, "nft", &["flush", "ruleset"])?;
    print_table(&rows);
    drop((client, server));
    drop(net);
    Ok(())
}

struct Measurement {
    /// Packets delivered to the server per second.
    pps: f64,
    sent: u64,
    delivered: u64,
}

#[derive(Default)]
struct Samples {
    new: Vec<Measurement>,
    est: Vec<Measurement>,
    denied_delivered: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

struct Bench {
    server_ns: String,
    raw: Socket,
    est: Socket,
    sink: Socket,
    secs: f64,
}

impl Bench {
    /// One blast to the admitted port.
    fn measure(&self, mode: Mode) -> Result<Measurement> {
        if mode == Mode::Established {
            self.handshake()?;
        }
        let t = Instant::now();
        let (sent, delivered) = self.blast(mode, PORT, self.secs)?;
        Ok(Measurement {
            pps: delivered as f64 / t.elapsed().as_secs_f64(),
            sent,
            delivered,
        })
    }

    /// One request and one reply on the established tuple, so that conntrack in the node has seen
    /// both directions and the blast's packets are `established`.
    fn handshake(&self) -> Result<()> {
        self.sink.set_nonblocking(true)?;
        let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
        while self.sink.recv_from(&mut buf).is_ok() {}
        self.sink.set_nonblocking(false)?;
        self.sink.set_read_timeout(Some(Duration::from_millis(100)))?;
        let to_server = SockAddr::from(SocketAddrV4::new(SERVER, PORT));
        for _ in 0..20 {
            self.est.send_to(b"HELLO", &to_server)?;
            while let Ok((n, from)) = self.sink.recv_from(&mut buf) {
                // SAFETY: recv_from initialised the first n bytes.
                let data = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
                if data == b"HELLO" {
                    self.sink.send_to(b"OLLEH", &from)?;
                    if self.est.recv_from(&mut buf).is_ok() {
                        return Ok(());
                    }
                }
            }
        }
        bail!("the established-mode handshake got no reply (is the client admitted?)")
    }

    /// Sends to `port` for `secs` seconds; returns (sent, delivered to the server's eth0).
    fn blast(&self, mode: Mode, port: u16, secs: f64) -> Result<(u64, u64)> {
        let before = rx_packets(&self.server_ns)?;
        let mut pkt = packet(port);
        let to = SockAddr::from(SocketAddrV4::new(SERVER, 0));
        let fd = self.raw.as_raw_fd();
        let (addr, len) = (to.as_ptr(), to.len());
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let mut sent = 0u64;
        let mut i = 0u64;
        while i < MAX_PACKETS {
            if i.is_multiple_of(256) && Instant::now() >= deadline {
                break;
            }
            let sport = match mode {
                Mode::New => NEW_SPORT_BASE + (i % u64::from(NEW_SPORTS)) as u16,
                Mode::Established => EST_SPORT,
            };
            pkt[20..22].copy_from_slice(&sport.to_be_bytes());
            // SAFETY: a valid socket, buffer and address, all alive for the call. A raw sendto
            // rather than socket2's to keep the loop to one syscall and no allocation.
            let r = unsafe { libc::sendto(fd, pkt.as_ptr().cast(), pkt.len(), 0, addr.cast(), len) };
            if r > 0 {
                sent += 1;
            }
            i += 1;
        }
        // Packets still queued in softirq backlogs land within a few milliseconds.
        std::thread::sleep(Duration::from_millis(50));
        let after = rx_packets(&self.server_ns)?;
        Ok((sent, after.saturating_sub(before)))
    }
}

/// An IPv4/UDP packet client → server:`port` (IP_HDRINCL: the kernel fills in the IP checksum
/// and id; a zero UDP checksum means none).
fn packet(port: u16) -> [u8; PACKET_LEN] {
    let mut p = [0u8; PACKET_LEN];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(PACKET_LEN as u16).to_be_bytes());
    p[8] = 64;
    p[9] = libc::IPPROTO_UDP as u8;
    p[12..16].copy_from_slice(&CLIENT.octets());
    p[16..20].copy_from_slice(&SERVER.octets());
    p[22..24].copy_from_slice(&port.to_be_bytes());
    p[24..26].copy_from_slice(&((PACKET_LEN - 20) as u16).to_be_bytes());
    p
}

/// The RX packet counter of `eth0` in `ns`.
fn rx_packets(ns: &str) -> Result<u64> {
    let out = sh::ip(ns, &["-s", "-j", "link", "show", "eth0"])?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    v[0]["stats64"]["rx"]["packets"]
        .as_u64()
        .context("no rx counter in `ip -s -j link show eth0`")
}

/// Runs `f` on a thread that has joined network namespace `ns`; sockets it creates stay in `ns`
/// wherever they are used afterwards.
fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || -> Result<T> {
        let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
        // SAFETY: setns on a valid namespace fd; it changes only this (short-lived) thread.
        if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(std::io::Error::last_os_error()).context("setns");
        }
        Ok(f()?)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("netns thread panicked"))?
}

/// A deterministic LCG, so every run measures the same cluster.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// `pods` pods in namespaces of 100, over 50 nodes (node-0 is the bench's node), and `policies`
/// ingress policies: a default deny per namespace, then app-to-tier allows on one TCP port. The
/// bench namespace adds the real client and server and the policy that admits the client.
fn synth(pods: usize, policies: usize) -> String {
    let namespaces = pods.div_ceil(100).max(1);
    let mut rng = Rng(0x5eed);
    let mut out = String::new();
    let tiers = ["web", "api", "db"];
    for n in 0..NODES {
        let _ = writeln!(
            out,
            "---\napiVersion: v1\nkind: Node\nmetadata: {{name: node-{n}}}\nstatus: {{addresses: [{{type: InternalIP, address: 198.18.0.{}}}]}}",
            n + 1
        );
    }
    for n in 0..namespaces {
        let _ = writeln!(
            out,
            "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: ns-{n}}}"
        );
    }
    let pod = |out: &mut String, ns: &str, name: &str, labels: &str, node: usize, ip: Ipv4Addr| {
        let _ = writeln!(
            out,
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, labels: {{{labels}}}}}\n\
             spec: {{nodeName: node-{node}, containers: [{{name: c, image: x}}]}}\n\
             status: {{phase: Running, podIP: {ip}, podIPs: [{{ip: {ip}}}]}}"
        );
    };
    // Outside the node's real 10.244.0.0/24 (which holds client and server), still in the /16.
    let base = u32::from(Ipv4Addr::new(10, 244, 1, 0));
    for i in 0..pods {
        let labels = format!("app: app{}, tier: {}", rng.below(20), tiers[rng.below(3)]);
        let ip = Ipv4Addr::from(base + i as u32);
        pod(
            &mut out,
            &format!("ns-{}", i % namespaces),
            &format!("p{i}"),
            &labels,
            i % NODES,
            ip,
        );
    }
    pod(&mut out, "bench", "client", "app: bench-client", 0, CLIENT);
    pod(&mut out, "bench", "server", "app: bench-server", 0, SERVER);
    for k in 0..policies {
        let ns = k % namespaces;
        let spec = if k < namespaces {
            "podSelector: {}\n  policyTypes: [Ingress]".to_string()
        } else {
            format!(
                "podSelector: {{matchLabels: {{app: app{}}}}}\n  ingress:\n  - from: [{{podSelector: {{matchLabels: {{tier: {}}}}}}}]\n    ports: [{{port: {}}}]",
                rng.below(20),
                tiers[rng.below(3)],
                [8080, 9090, 5432][rng.below(3)]
            )
        };
        let _ = writeln!(
            out,
            "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: np-{k}, namespace: ns-{ns}}}\nspec:\n  {spec}"
        );
    }
    let _ = writeln!(
        out,
        "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: admit-client, namespace: bench}}\n\
         spec:\n  podSelector: {{matchLabels: {{app: bench-server}}}}\n  ingress:\n  - from: [{{podSelector: {{matchLabels: {{app: bench-client}}}}}}]\n    ports: [{{port: {PORT}, protocol: UDP}}]"
    );
    out
}

/// The naive baseline: the same ingress semantics as one flat chain, one rule per (policy rule ×
/// peer pod address × port), `ip saddr PEER ip daddr @sel-K PROTO dport P accept`, then `drop` for
/// every isolated pod. Cluster-wide (not filtered by node), and the bench's admitting rule comes
/// last: an admitted packet walks every other rule first, the worst case. Returns the script and
/// its rule count. Handles what `synth` generates (pod peers, port ranges; no ipBlocks).
fn linear_ruleset(cluster: &Cluster) -> (String, usize) {
    let engine = Engine::indexed(cluster);
    let v4 = |i: usize| engine.pod_endpoint(i, Family::Ipv4);
    let mut selected: Vec<BTreeSet<Ipv4Addr>> = vec![BTreeSet::new(); cluster.policies.len()];
    for i in 0..cluster.pods.len() {
        let Some(ep) = v4(i) else { continue };
        let std::net::IpAddr::V4(ip) = ep.ip else {
            continue;
        };
        for &pi in engine.selecting(i, Direction::Ingress).iter() {
            selected[pi].insert(ip);
        }
    }
    let mut order: Vec<usize> = (0..cluster.policies.len()).collect();
    order.sort_by_key(|&pi| cluster.policies[pi].namespace == "bench");
    let mut sets = String::new();
    let mut rules = String::new();
    let mut count = 0;
    for pi in order {
        let policy = &cluster.policies[pi];
        if selected[pi].is_empty() {
            continue;
        }
        let elements: Vec<String> = selected[pi].iter().map(Ipv4Addr::to_string).collect();
        let _ = writeln!(
            sets,
            "\tset sel-{pi} {{ type ipv4_addr; elements = {{ {} }} }}",
            elements.join(", ")
        );
        for rule in policy.ingress.iter().flatten() {
            let mut peers: BTreeSet<Ipv4Addr> = BTreeSet::new();
            for peer in rule.peers.iter().flatten() {
                for j in 0..cluster.pods.len() {
                    if let Some(ep) = v4(j) {
                        if let (true, std::net::IpAddr::V4(ip)) = (engine.peer_matches(peer, &ep), ep.ip) {
                            peers.insert(ip);
                        }
                    }
                }
            }
            let ports: Vec<String> = rule
                .ports
                .iter()
                .flatten()
                .filter_map(|p| match p {
                    PortMatch::Range { protocol, start, end } => {
                        let proto = match protocol {
                            Protocol::Tcp => "tcp",
                            Protocol::Udp => "udp",
                            Protocol::Sctp => "sctp",
                        };
                        Some(if start == end {
                            format!("{proto} dport {start}")
                        } else {
                            format!("{proto} dport {start}-{end}")
                        })
                    }
                    _ => None,
                })
                .collect();
            for peer in &peers {
                for port in &ports {
                    let _ = writeln!(rules, "\t\tip saddr {peer} ip daddr @sel-{pi} {port} accept");
                    count += 1;
                }
            }
        }
    }
    let isolated: BTreeSet<&Ipv4Addr> = selected.iter().flatten().collect();
    let isolated: Vec<String> = isolated.iter().map(|ip| ip.to_string()).collect();
    let script = format!(
        "table inet linear {{\n{sets}\tset isolated {{ type ipv4_addr; elements = {{ {} }} }}\n\
         \tchain forward {{\n\t\ttype filter hook forward priority filter; policy accept;\n\
         \t\tct state established,related accept\n\t\tct state invalid drop\n{rules}\
         \t\tip daddr @isolated drop\n\t}}\n}}\n",
        isolated.join(", ")
    );
    (script, count + 3)
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| pods/policies | ruleset | rules in table | pps new flows | pps established | denied delivered | new: ours/no-table | new: ours/linear |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let same = |c: &str| rows.iter().find(|r| r.size == row.size && r.config == c);
        let ratios = match (row.config, same("no table"), same("linear")) {
            ("policyc", Some(none), Some(lin)) => format!(
                "{:.2} | {:.1}×",
                row.new_pps / none.new_pps,
                row.new_pps / lin.new_pps
            ),
            _ => " | ".to_string(),
        };
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.1}% | {ratios} |",
            row.size,
            row.config,
            row.rules,
            row.new_pps,
            row.est_pps,
            row.denied_delivered * 100.0
        );
    }
}
