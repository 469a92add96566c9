//! The pod's workload, run inside a pod (or node) namespace by `e2e-pod serve`: TCP and UDP echo
//! on every given port (IPv4 and IPv6), and an SCTP "listener" that logs the INITs it receives on
//! a raw socket (there is no SCTP stack to answer them).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;

use anyhow::{Context, Result};
use socket2::{Domain, Protocol as SockProto, Socket, Type};

use crate::sctp;

fn dual_stack(ty: Type, proto: SockProto, port: u16) -> Result<Socket> {
    let sock = Socket::new(Domain::IPV6, ty, Some(proto))?;
    sock.set_only_v6(false)?;
    sock.set_reuse_address(true)?;
    sock.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())
        .with_context(|| format!("binding port {port}"))?;
    Ok(sock)
}

/// Binds everything, then prints `ready` and serves until killed.
/// UDP sockets bind each of `udp_addrs` when given (hostNetwork pods: a wildcard socket would
/// answer from whichever address routing picks, which the client's connected socket rejects).
pub fn serve(tcp: &[u16], udp: &[u16], udp_addrs: &[IpAddr], sctp_log: Option<&Path>) -> Result<()> {
    let mut threads = Vec::new();
    for &port in tcp {
        let sock = dual_stack(Type::STREAM, SockProto::TCP, port)?;
        sock.listen(128)?;
        let l: TcpListener = sock.into();
        threads.push(std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                std::thread::spawn(move || echo_tcp(conn));
            }
        }));
    }
    for &port in udp {
        let socks: Vec<UdpSocket> = if udp_addrs.is_empty() {
            vec![dual_stack(Type::DGRAM, SockProto::UDP, port)?.into()]
        } else {
            udp_addrs
                .iter()
                .map(|a| UdpSocket::bind((*a, port)).with_context(|| format!("binding {a} port {port}")))
                .collect::<Result<_>>()?
        };
        for s in socks {
            threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while let Ok((n, from)) = s.recv_from(&mut buf) {
                    let _ = s.send_to(&buf[..n], from);
                }
            }));
        }
    }
    if let Some(log) = sctp_log {
        std::fs::write(log, "")?;
        for domain in [Domain::IPV4, Domain::IPV6] {
            let sock = Socket::new(domain, Type::RAW, Some(SockProto::from(sctp::PROTO)))
                .context("raw SCTP socket")?;
            let log = log.to_path_buf();
            threads.push(std::thread::spawn(move || {
                log_inits(sock, domain == Domain::IPV4, &log)
            }));
        }
    }
    println!("ready");
    std::io::stdout().flush()?;
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

fn echo_tcp(mut conn: TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 || conn.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

fn log_inits(sock: Socket, v4: bool, log: &Path) {
    let s: UdpSocket = sock.into(); // only for the safe recv_from; it is still a raw socket
    let mut buf = [0u8; 2048];
    while let Ok((n, from)) = s.recv_from(&mut buf) {
        // IPv4 raw sockets hand over the IP header, IPv6 ones do not.
        let off = if v4 { usize::from(buf[0] & 0x0f) * 4 } else { 0 };
        if let Some((dport, tag)) = buf.get(off..n).and_then(sctp::parse_init) {
            let line = format!("{tag:08x} {dport} {}\n", from.ip());
            if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(log) {
                let _ = f.write_all(line.as_bytes());
            }
        }
    }
}

/// `e2e-pod session`: one long-lived TCP connection; each stdin line is sent and its echo printed
/// (`ERR ...` when it fails), so a test can exchange data over the same connection across an
/// agent restart.
pub fn session(target: SocketAddr, timeout_ms: u64) -> Result<()> {
    let timeout = std::time::Duration::from_millis(timeout_ms);
    let mut conn =
        TcpStream::connect_timeout(&target, timeout).with_context(|| format!("connecting to {target}"))?;
    conn.set_read_timeout(Some(timeout))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    println!("connected {}", conn.local_addr()?);
    std::io::stdout().flush()?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let mut echo = String::new();
        let res = conn
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|_| reader.read_line(&mut echo));
        match res {
            Ok(_) if echo.trim_end() == line => println!("OK {line}"),
            Ok(_) => println!("ERR {line}: got {echo:?}"),
            Err(e) => println!("ERR {line}: {e}"),
        }
        std::io::stdout().flush()?;
    }
    Ok(())
}

/// `e2e-pod http-get ADDR PATH`: the HTTP status code, for readiness checks inside a namespace.
pub fn http_status(addr: SocketAddr, path: &str) -> Result<u16> {
    let mut conn = TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(500))?;
    conn.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let mut status = String::new();
    BufReader::new(conn).read_line(&mut status)?;
    status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("bad status line {status:?}"))
}

/// `GET path` over HTTP/1.0: the status code and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut conn = TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(500))?;
    conn.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())?;
    let mut text = String::new();
    conn.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("bad response {head:?}"))?;
    Ok((status, body.to_string()))
}
