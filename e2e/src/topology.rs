//! The simulated cluster network: node namespaces on an underlay bridge, pod namespaces on each
//! node's bridge, and the inter-node routing that flannel (vxlan, host-gw) or kubenet programs.
//!
//! Addresses (all inside the ranges tests may use):
//! - node `i` underlay: `198.18.0.(i+1)/24`, `fd00:10:244:ff::(i+1)/64`;
//! - node `i` pod CIDR: `10.244.i.0/24`, `fd00:10:244:i::/64`; bridge `.1`/`::1`;
//! - flannel vxlan: `flannel.1` holds `10.244.i.0/32`, `flannel-v6.1` holds `fd00:10:244:i::/128`,
//!   with fixed MACs so the neighbour and fdb entries flanneld would write are known up front.
//! - emulated service VIPs: `198.19.0.0/16` (not the usual 10.96.0.0/12, which is outside the
//!   ranges these tests may use).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{Context, Result};

use crate::netns::Netns;
use crate::sh;

/// Which network plugin's data path to mirror.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    FlannelVxlan,
    FlannelHostGw,
    Kubenet,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::FlannelVxlan, Kind::FlannelHostGw, Kind::Kubenet];

    pub fn name(self) -> &'static str {
        match self {
            Kind::FlannelVxlan => "flannel-vxlan",
            Kind::FlannelHostGw => "flannel-host-gw",
            Kind::Kubenet => "kubenet",
        }
    }

    /// The pod bridge's name: flannel's CNI config calls it `cni0`, kubenet `cbr0`.
    pub fn bridge(self) -> &'static str {
        match self {
            Kind::Kubenet => "cbr0",
            _ => "cni0",
        }
    }
}

pub const SERVICE_CIDR: &str = "198.19.0.0/16";

pub fn node_name(i: usize) -> String {
    format!("node-{i}")
}

pub fn node_ip4(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, i as u8 + 1)
}

pub fn node_ip6(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x10, 0x244, 0xff, 0, 0, 0, i as u16 + 1)
}

pub fn pod_ip4(node: usize, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 244, node as u8, host)
}

pub fn pod_ip6(node: usize, host: u8) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x10, 0x244, node as u16, 0, 0, 0, host as u16)
}

fn vxlan_mac(node: usize, v6: bool) -> String {
    format!("0e:00:00:00:0{}:{:02x}", u8::from(v6), node)
}

#[derive(Debug)]
pub struct NodeNet {
    pub index: usize,
    pub name: String,
    pub ns: Netns,
    pub ip4: Ipv4Addr,
    pub ip6: Option<Ipv6Addr>,
}

impl NodeNet {
    pub fn ips(&self) -> Vec<IpAddr> {
        let mut v = vec![IpAddr::V4(self.ip4)];
        v.extend(self.ip6.map(IpAddr::V6));
        v
    }
}

#[derive(Debug)]
pub struct PodNet {
    pub node: usize,
    pub ns: Netns,
    pub ips: Vec<IpAddr>,
    /// The pod's veth end in the node namespace, removed with the pod.
    pub host_veth: String,
}

/// The cluster network; dropping it removes every namespace (pods first).
#[derive(Debug)]
pub struct Network {
    pub run_id: String,
    pub kind: Kind,
    pub dual_stack: bool,
    pub nodes: Vec<NodeNet>,
    underlay: Netns,
    veth_seq: usize,
}

impl Network {
    pub fn build(run_id: &str, kind: Kind, nodes: usize, dual_stack: bool) -> Result<Network> {
        let underlay = Netns::create(&format!("{run_id}-ul"))?;
        sh::ip(&underlay.name, &["link", "add", "ul0", "type", "bridge"])?;
        sh::ip(&underlay.name, &["link", "set", "ul0", "up"])?;
        let mut net = Network {
            run_id: run_id.to_string(),
            kind,
            dual_stack,
            nodes: Vec::new(),
            underlay,
            veth_seq: 0,
        };
        for i in 0..nodes {
            let node = net.add_node(i).with_context(|| format!("building node-{i}"))?;
            net.nodes.push(node);
        }
        for i in 0..nodes {
            net.route_node(i)
                .with_context(|| format!("routing on node-{i}"))?;
        }
        Ok(net)
    }

    fn add_node(&mut self, i: usize) -> Result<NodeNet> {
        let ns = Netns::create(&format!("{}-n{i}", self.run_id))?;
        let n = ns.name.as_str();
        let ul = self.underlay.name.as_str();
        let peer = format!("n{i}");
        sh::ip(
            n,
            &[
                "link", "add", "eth0", "type", "veth", "peer", "name", &peer, "netns", ul,
            ],
        )?;
        sh::ip(ul, &["link", "set", &peer, "master", "ul0", "up"])?;
        let ip4 = node_ip4(i);
        let ip6 = self.dual_stack.then(|| node_ip6(i));
        sh::ip(n, &["addr", "add", &format!("{ip4}/24"), "dev", "eth0"])?;
        if let Some(ip6) = ip6 {
            sh::ip(n, &["addr", "add", &format!("{ip6}/64"), "dev", "eth0", "nodad"])?;
        }
        sh::ip(n, &["link", "set", "eth0", "up"])?;
        // What a kube-proxy node has: forwarding on, bridged traffic through netfilter (these
        // sysctls are per network namespace), and loose reverse-path filtering, since vxlan
        // replies to node addresses come back on a different device than the request left.
        sh::exec(
            n,
            "sysctl",
            &[
                "-qw",
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
                "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.default.rp_filter=0",
            ],
        )?;
        let br = self.kind.bridge();
        // A fixed MAC, as the bridge CNI plugin sets it: otherwise the bridge takes its lowest
        // port's MAC and changes it when that pod goes away, leaving every other pod's
        // neighbour entry for the gateway stale.
        let br_mac = format!("0a:58:0a:f4:{i:02x}:01");
        sh::ip(n, &["link", "add", br, "address", &br_mac, "type", "bridge"])?;
        sh::exec(
            n,
            "sysctl",
            &[
                "-qw",
                "net.bridge.bridge-nf-call-iptables=1",
                "net.bridge.bridge-nf-call-ip6tables=1",
            ],
        )?;
        sh::ip(n, &["addr", "add", &format!("10.244.{i}.1/24"), "dev", br])?;
        if self.dual_stack {
            let gw6 = pod_ip6(i, 1);
            sh::ip(n, &["addr", "add", &format!("{gw6}/64"), "dev", br, "nodad"])?;
        }
        if self.kind == Kind::Kubenet {
            // kubenet puts cbr0 in promiscuous mode for hairpin traffic.
            sh::ip(n, &["link", "set", br, "promisc", "on"])?;
        }
        sh::ip(n, &["link", "set", br, "up"])?;
        if self.kind == Kind::FlannelVxlan {
            let a4 = format!("10.244.{i}.0/32");
            vxlan_device(n, "flannel.1", &vxlan_mac(i, false), &ip4.to_string(), &a4, &[])?;
            if let Some(ip6) = ip6 {
                let a6 = format!("{}/128", pod_ip6(i, 0));
                vxlan_device(
                    n,
                    "flannel-v6.1",
                    &vxlan_mac(i, true),
                    &ip6.to_string(),
                    &a6,
                    &["nodad"],
                )?;
            }
        }
        // The emulated kube-proxy's VIPs must be routable for locally generated packets to reach
        // the output DNAT hook; pods reach them over their default route.
        sh::ip(n, &["route", "add", SERVICE_CIDR, "dev", br])?;
        Ok(NodeNet {
            index: i,
            name: node_name(i),
            ns,
            ip4,
            ip6,
        })
    }

    /// What flanneld (vxlan or host-gw) or kubenet's host routes write for every other node.
    fn route_node(&self, i: usize) -> Result<()> {
        let n = self.nodes[i].ns.name.as_str();
        for m in (0..self.nodes.len()).filter(|&m| m != i) {
            let cidr4 = format!("10.244.{m}.0/24");
            let cidr6 = format!("{}/64", pod_ip6(m, 0));
            match self.kind {
                Kind::FlannelVxlan => {
                    let gw4 = format!("10.244.{m}.0");
                    let dst4 = node_ip4(m).to_string();
                    vxlan_peer(n, "-4", "flannel.1", &cidr4, &gw4, &vxlan_mac(m, false), &dst4)?;
                    if self.dual_stack {
                        let gw6 = pod_ip6(m, 0).to_string();
                        let dst6 = node_ip6(m).to_string();
                        vxlan_peer(n, "-6", "flannel-v6.1", &cidr6, &gw6, &vxlan_mac(m, true), &dst6)?;
                    }
                }
                Kind::FlannelHostGw | Kind::Kubenet => {
                    sh::ip(
                        n,
                        &[
                            "route",
                            "add",
                            &cidr4,
                            "via",
                            &node_ip4(m).to_string(),
                            "dev",
                            "eth0",
                        ],
                    )?;
                    if self.dual_stack {
                        sh::ip(
                            n,
                            &[
                                "-6",
                                "route",
                                "add",
                                &cidr6,
                                "via",
                                &node_ip6(m).to_string(),
                                "dev",
                                "eth0",
                            ],
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A pod namespace whose `eth0` is a veth on `node`'s bridge, as the bridge CNI plugin wires
    /// it; addresses and routes are the caller's.
    fn pod_netns(&mut self, node: usize, label: &str) -> Result<(Netns, String)> {
        let ns = Netns::create(&format!("{}-p-{label}", self.run_id))?;
        let n = self.nodes[node].ns.name.as_str();
        self.veth_seq += 1;
        let host_veth = format!("veth{}", self.veth_seq);
        sh::ip(
            n,
            &[
                "link", "add", &host_veth, "type", "veth", "peer", "name", "eth0", "netns", &ns.name,
            ],
        )?;
        sh::ip(
            n,
            &["link", "set", &host_veth, "master", self.kind.bridge(), "up"],
        )?;
        Ok((ns, host_veth))
    }

    /// A pod namespace on `node` with host part `host` of the node's pod CIDR (both families when
    /// the network is dual-stack), wired to the node's bridge the way the bridge CNI plugin does.
    pub fn add_pod(&mut self, node: usize, host: u8, label: &str) -> Result<PodNet> {
        let (ns, host_veth) = self.pod_netns(node, label)?;
        let p = ns.name.as_str();
        let ip4 = pod_ip4(node, host);
        let mut ips = vec![IpAddr::V4(ip4)];
        sh::ip(p, &["addr", "add", &format!("{ip4}/24"), "dev", "eth0"])?;
        sh::ip(p, &["link", "set", "eth0", "up"])?;
        sh::ip(
            p,
            &["route", "add", "default", "via", &format!("10.244.{node}.1")],
        )?;
        if self.dual_stack {
            let ip6 = pod_ip6(node, host);
            sh::ip(p, &["addr", "add", &format!("{ip6}/64"), "dev", "eth0", "nodad"])?;
            sh::ip(
                p,
                &[
                    "-6",
                    "route",
                    "add",
                    "default",
                    "via",
                    &pod_ip6(node, 1).to_string(),
                ],
            )?;
            ips.push(IpAddr::V6(ip6));
        }
        Ok(PodNet {
            node,
            ns,
            ips,
            host_veth,
        })
    }

    /// An IPv4-only pod namespace on `node` with address `ip/prefix` (inside the node's pod CIDR,
    /// which may be wider than the bridge's /24, as a flannel /22 lease is), default route via
    /// the bridge.
    pub fn add_pod_v4(&mut self, node: usize, ip: Ipv4Addr, prefix: u8, label: &str) -> Result<PodNet> {
        let (ns, host_veth) = self.pod_netns(node, label)?;
        let p = ns.name.as_str();
        sh::ip(p, &["addr", "add", &format!("{ip}/{prefix}"), "dev", "eth0"])?;
        sh::ip(p, &["link", "set", "eth0", "up"])?;
        let gw = format!("10.244.{node}.1");
        sh::ip(
            p,
            &["route", "add", "default", "via", &gw, "dev", "eth0", "onlink"],
        )?;
        Ok(PodNet {
            node,
            ns,
            ips: vec![IpAddr::V4(ip)],
            host_veth,
        })
    }

    /// Installs the emulated kube-proxy table on every node: `vip:port` DNATed to `backend`, in
    /// prerouting (pod traffic) and output (node traffic), at priority dstnat as kube-proxy does
    /// (written -100 in output: nft 1.0.6 accepts the name `dstnat` only in prerouting).
    pub fn install_service(&self, vip: Ipv4Addr, port: u16, backend: Ipv4Addr, target: u16) -> Result<()> {
        let rule = format!("ip daddr {vip} tcp dport {port} dnat to {backend}:{target}");
        let script = format!(
            "table ip kube-proxy-emu\ndelete table ip kube-proxy-emu\n\
             table ip kube-proxy-emu {{\n\
             \tchain prerouting {{ type nat hook prerouting priority dstnat; policy accept; {rule}; }}\n\
             \tchain output {{ type nat hook output priority -100; policy accept; {rule}; }}\n}}\n"
        );
        for node in &self.nodes {
            sh::exec_stdin(&node.ns.name, "nft", &["-f", "-"], Some(&script))?;
        }
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Nodes and underlay drop with their guards; nothing else to undo (nothing lives in the
        // root namespace).
        self.nodes.clear();
    }
}

/// The vxlan device flanneld creates (VNI 1, port 8472, no learning: peers come from the static
/// fdb and neighbour entries of [`vxlan_peer`]), with the node's vxlan address.
fn vxlan_device(ns: &str, dev: &str, mac: &str, local: &str, addr: &str, addr_flags: &[&str]) -> Result<()> {
    sh::ip(
        ns,
        &[
            "link",
            "add",
            dev,
            "address",
            mac,
            "type",
            "vxlan",
            "id",
            "1",
            "dstport",
            "8472",
            "nolearning",
            "local",
            local,
            "dev",
            "eth0",
        ],
    )?;
    let mut add = vec!["addr", "add", addr, "dev", dev];
    add.extend_from_slice(addr_flags);
    sh::ip(ns, &add)?;
    sh::ip(ns, &["link", "set", dev, "up"])?;
    Ok(())
}

/// What flanneld writes on one node for another node's vxlan endpoint: the onlink route to its pod
/// CIDR via its vxlan address, the permanent neighbour entry for that address, and the fdb entry
/// that sends the MAC's frames to its underlay address.
fn vxlan_peer(
    ns: &str,
    family: &str,
    dev: &str,
    cidr: &str,
    gw: &str,
    mac: &str,
    underlay: &str,
) -> Result<()> {
    sh::ip(
        ns,
        &[family, "route", "add", cidr, "via", gw, "dev", dev, "onlink"],
    )?;
    sh::ip(
        ns,
        &[
            family,
            "neigh",
            "replace",
            gw,
            "lladdr",
            mac,
            "dev",
            dev,
            "nud",
            "permanent",
        ],
    )?;
    sh::run(
        "bridge",
        &["-n", ns, "fdb", "append", mac, "dev", dev, "dst", underlay],
    )?;
    Ok(())
}
