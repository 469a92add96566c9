//! Probes, run inside a source namespace by `e2e-pod probe`: every target at once (one thread
//! each), TCP connect + echo, UDP echo, SCTP INIT observed by the receiver; JSON in, JSON out.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use socket2::{Domain, Protocol as SockProto, SockAddr, Socket, Type};

use crate::sctp;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Proto {
    #[serde(rename = "TCP")]
    Tcp,
    #[serde(rename = "UDP")]
    Udp,
    #[serde(rename = "SCTP")]
    Sctp,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Target {
    pub ip: IpAddr,
    pub port: u16,
    pub proto: Proto,
    /// SCTP only: the receiver's log of INITs it saw (namespaces share the file system).
    #[serde(default)]
    pub sctp_log: Option<PathBuf>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Request {
    /// Source address to bind (hostNetwork pods probe from their node's address).
    pub bind: Option<IpAddr>,
    pub timeout_ms: u64,
    pub targets: Vec<Target>,
}

/// `ok[i]`: whether `targets[i]` answered.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Response {
    pub ok: Vec<bool>,
}

pub fn run(req: &Request) -> Response {
    let timeout = Duration::from_millis(req.timeout_ms);
    let ok = std::thread::scope(|s| {
        let handles: Vec<_> = req
            .targets
            .iter()
            .map(|t| s.spawn(move || probe(t, req.bind, timeout)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(false)).collect()
    });
    Response { ok }
}

fn nonce() -> u32 {
    // Distinct per probe within a run, and across runs with overwhelming probability.
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (h.finish() as u32) | 1
}

fn socket(ip: &IpAddr, ty: Type, proto: SockProto, bind: Option<IpAddr>) -> std::io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(SocketAddr::new(*ip, 0)), ty, Some(proto))?;
    if let Some(b) = bind.filter(|b| b.is_ipv4() == ip.is_ipv4()) {
        sock.bind(&SocketAddr::new(b, 0).into())?;
    }
    Ok(sock)
}

pub fn probe(t: &Target, bind: Option<IpAddr>, timeout: Duration) -> bool {
    let r = match t.proto {
        Proto::Tcp => probe_tcp(t, bind, timeout),
        Proto::Udp => probe_udp(t, bind, timeout),
        Proto::Sctp => probe_sctp(t, bind, timeout),
    };
    r.unwrap_or(false)
}

fn probe_tcp(t: &Target, bind: Option<IpAddr>, timeout: Duration) -> std::io::Result<bool> {
    let sock = socket(&t.ip, Type::STREAM, SockProto::TCP, bind)?;
    sock.connect_timeout(&SocketAddr::new(t.ip, t.port).into(), timeout)?;
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(timeout))?;
    let msg = format!("{:08x}\n", nonce());
    s.write_all(msg.as_bytes())?;
    let mut buf = vec![0u8; msg.len()];
    s.read_exact(&mut buf)?;
    Ok(buf == msg.as_bytes())
}

fn probe_udp(t: &Target, bind: Option<IpAddr>, timeout: Duration) -> std::io::Result<bool> {
    let sock = socket(&t.ip, Type::DGRAM, SockProto::UDP, bind)?;
    sock.connect(&SocketAddr::new(t.ip, t.port).into())?;
    let s: UdpSocket = sock.into();
    let msg = format!("{:08x}", nonce());
    // Datagrams can be lost while a neighbour entry resolves: send a few within the timeout.
    let tries = 3u32;
    s.set_read_timeout(Some(timeout / tries))?;
    for _ in 0..tries {
        s.send(msg.as_bytes())?;
        let mut buf = [0u8; 64];
        match s.recv(&mut buf) {
            Ok(n) if &buf[..n] == msg.as_bytes() => return Ok(true),
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

fn probe_sctp(t: &Target, bind: Option<IpAddr>, timeout: Duration) -> std::io::Result<bool> {
    let Some(log) = &t.sctp_log else {
        return Ok(false);
    };
    let sock = socket(&t.ip, Type::RAW, SockProto::from(sctp::PROTO), bind)?;
    let tag = nonce();
    let src_port = 32768 + (tag % 28000) as u16;
    let pkt = sctp::init_packet(src_port, t.port, tag);
    let dst: SockAddr = SocketAddr::new(t.ip, 0).into();
    let needle = format!("{tag:08x} {}", t.port);
    let start = Instant::now();
    let mut sent = 0;
    while start.elapsed() < timeout {
        // Resend once halfway, for the same reason as UDP.
        if sent == 0 || (sent == 1 && start.elapsed() > timeout / 2) {
            sock.send_to(&pkt, &dst)?;
            sent += 1;
        }
        if std::fs::read_to_string(log).is_ok_and(|s| s.contains(&needle)) {
            return Ok(true);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(false)
}
