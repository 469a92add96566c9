//! 64-byte IPv4/UDP packets from a raw socket in the client pod, counted by the server's `eth0`
//! RX counter: what the node's forwarding path delivered, whatever the server's socket keeps.

use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use socket2::{Domain, Protocol as SockProto, SockAddr, Socket, Type};

use super::{in_netns, process_cpu_secs};
use crate::sh;

/// IPv4 total length of every packet.
pub const PACKET_LEN: usize = 64;
const STEADY_SPORT: u16 = 40000;
const NEW_SPORT_BASE: u16 = 10000;
const NEW_SPORTS: u16 = 16384;
/// A blast never sends more than this, whatever the rate.
const MAX_PACKETS: u64 = 50_000_000;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Flow {
    /// The source port cycles through 16,384 values and the server never answers: every packet
    /// is conntrack state `new` (UDP stays new until a reply is seen) and walks the rules. After
    /// the first round conntrack finds the (unreplied) entry again instead of allocating one.
    NewPerPacket,
    /// One source port, answered once by the server before the blast: every packet is
    /// `established`.
    Steady,
}

/// Packets sent and delivered in one blast.
#[derive(Clone, Copy, Debug, Default)]
pub struct Blast {
    pub sent: u64,
    pub delivered: u64,
    pub secs: f64,
    /// CPU time this process used meanwhile (see [`process_cpu_secs`](super::process_cpu_secs)).
    pub cpu_secs: f64,
}

impl Blast {
    pub fn pps(&self) -> f64 {
        self.delivered as f64 / self.secs
    }

    /// Packets delivered per second of CPU: the per-packet cost, whatever share of the CPU
    /// other work left to the benchmark.
    pub fn per_cpu_sec(&self) -> f64 {
        self.delivered as f64 / self.cpu_secs.max(1e-9)
    }
}

pub struct Udp {
    client: Ipv4Addr,
    server: Ipv4Addr,
    server_ns: String,
    raw: Socket,
    steady: Socket,
    /// Bound so that arrivals are not answered with ICMP; read only for the handshake, so it
    /// overflows and drops (after `eth0` counted the packet).
    sink: Socket,
    port: u16,
}

impl Udp {
    pub fn new(
        client_ns: &str,
        server_ns: &str,
        client: Ipv4Addr,
        server: Ipv4Addr,
        port: u16,
    ) -> Result<Udp> {
        let raw = in_netns(client_ns, || {
            Socket::new(Domain::IPV4, Type::RAW, Some(SockProto::from(libc::IPPROTO_RAW)))
        })?;
        let steady = in_netns(client_ns, move || {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
            s.bind(&SockAddr::from(SocketAddrV4::new(client, STEADY_SPORT)))?;
            s.set_read_timeout(Some(Duration::from_millis(100)))?;
            Ok(s)
        })?;
        let sink = in_netns(server_ns, move || {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
            s.bind(&SockAddr::from(SocketAddrV4::new(server, port)))?;
            Ok(s)
        })?;
        Ok(Udp {
            client,
            server,
            server_ns: server_ns.to_string(),
            raw,
            steady,
            sink,
            port,
        })
    }

    /// One blast to the admitted port.
    pub fn measure(&self, flow: Flow, secs: f64) -> Result<Blast> {
        if flow == Flow::Steady {
            self.handshake()?;
        }
        self.blast(flow, self.port, secs)
    }

    /// One request and one reply on the steady tuple, so that conntrack in the node has seen
    /// both directions and the blast's packets are `established`.
    fn handshake(&self) -> Result<()> {
        self.sink.set_nonblocking(true)?;
        let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
        while self.sink.recv_from(&mut buf).is_ok() {}
        self.sink.set_nonblocking(false)?;
        self.sink.set_read_timeout(Some(Duration::from_millis(100)))?;
        let to_server = SockAddr::from(SocketAddrV4::new(self.server, self.port));
        for _ in 0..20 {
            self.steady.send_to(b"HELLO", &to_server)?;
            while let Ok((n, from)) = self.sink.recv_from(&mut buf) {
                // SAFETY: recv_from initialised the first n bytes.
                let data = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
                if data == b"HELLO" {
                    self.sink.send_to(b"OLLEH", &from)?;
                    if self.steady.recv_from(&mut buf).is_ok() {
                        return Ok(());
                    }
                }
            }
        }
        bail!("the steady-flow handshake got no reply (is the client admitted?)")
    }

    /// Sends to `port` for `secs` seconds.
    pub fn blast(&self, flow: Flow, port: u16, secs: f64) -> Result<Blast> {
        let before = rx_packets(&self.server_ns)?;
        let mut pkt = packet(self.client, self.server, port);
        let to = SockAddr::from(SocketAddrV4::new(self.server, 0));
        let fd = self.raw.as_raw_fd();
        let (addr, len) = (to.as_ptr(), to.len());
        let start = Instant::now();
        let cpu = process_cpu_secs();
        let deadline = start + Duration::from_secs_f64(secs);
        let mut sent = 0u64;
        let mut i = 0u64;
        while i < MAX_PACKETS {
            if i.is_multiple_of(256) && Instant::now() >= deadline {
                break;
            }
            let sport = match flow {
                Flow::NewPerPacket => NEW_SPORT_BASE + (i % u64::from(NEW_SPORTS)) as u16,
                Flow::Steady => STEADY_SPORT,
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
        let secs = start.elapsed().as_secs_f64();
        let cpu_secs = process_cpu_secs() - cpu;
        // Packets still queued in softirq backlogs land within a few milliseconds.
        std::thread::sleep(Duration::from_millis(50));
        let after = rx_packets(&self.server_ns)?;
        Ok(Blast {
            sent,
            delivered: after.saturating_sub(before),
            secs,
            cpu_secs,
        })
    }
}

/// An IPv4/UDP packet (IP_HDRINCL: the kernel fills in the IP checksum and id; a zero UDP
/// checksum means none).
fn packet(from: Ipv4Addr, to: Ipv4Addr, port: u16) -> [u8; PACKET_LEN] {
    let mut p = [0u8; PACKET_LEN];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(PACKET_LEN as u16).to_be_bytes());
    p[8] = 64;
    p[9] = libc::IPPROTO_UDP as u8;
    p[12..16].copy_from_slice(&from.octets());
    p[16..20].copy_from_slice(&to.octets());
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
