//! New TCP connections per second: client threads in the client pod loop connect → close, accept
//! threads in the server pod loop accept → close.
//!
//! The client closes with `SO_LINGER` 0 (a reset), so each connection is four packets through
//! the node (SYN, SYN-ACK, ACK, RST) and leaves no TIME_WAIT behind: with an orderly close the
//! client's 28k ephemeral ports would run out at about 470 connections/s for the 60 s TIME_WAIT,
//! and the node's conntrack would hold every connection for 120 s instead of 10.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Result;
use socket2::{Domain, SockAddr, Socket, Type};

use super::{in_netns, process_cpu_secs, spawn_in_netns};

const ACCEPTORS: usize = 2;

/// Connections completed (the client's connect returned) in one run.
#[derive(Clone, Copy, Debug, Default)]
pub struct Connects {
    pub ok: u64,
    pub failed: u64,
    pub secs: f64,
    pub cpu_secs: f64,
}

impl Connects {
    pub fn per_sec(&self) -> f64 {
        self.ok as f64 / self.secs
    }

    pub fn per_cpu_sec(&self) -> f64 {
        self.ok as f64 / self.cpu_secs.max(1e-9)
    }
}

pub struct Tcp {
    client_ns: String,
    server: Ipv4Addr,
    port: u16,
    stop: Arc<AtomicBool>,
    acceptors: Vec<JoinHandle<()>>,
}

impl Tcp {
    pub fn new(client_ns: &str, server_ns: &str, server: Ipv4Addr, port: u16) -> Result<Tcp> {
        let listener = in_netns(server_ns, move || {
            let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
            s.set_reuse_address(true)?;
            s.bind(&SockAddr::from(SocketAddrV4::new(server, port)))?;
            s.listen(4096)?;
            // accept() honours the receive timeout: the acceptors see `stop` within 100 ms.
            s.set_read_timeout(Some(Duration::from_millis(100)))?;
            Ok(s)
        })?;
        let listener = Arc::new(listener);
        let stop = Arc::new(AtomicBool::new(false));
        let acceptors = (0..ACCEPTORS)
            .map(|_| {
                let (l, stop) = (listener.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        // The accepted socket is dropped (closed) at once; errors are timeouts.
                        let _ = l.accept();
                    }
                })
            })
            .collect();
        Ok(Tcp {
            client_ns: client_ns.to_string(),
            server,
            port,
            stop,
            acceptors,
        })
    }

    /// `clients` threads connect to `port` and close, for `secs` seconds.
    pub fn measure(&self, clients: usize, secs: f64) -> Result<Connects> {
        self.run(self.port, clients, secs, Duration::from_secs(1))
    }

    /// Whether a connection attempt to `port` gets an answer (accepted or refused) within
    /// `timeout`: false when the SYN is dropped on the way.
    pub fn answered(&self, port: u16, timeout: Duration) -> Result<bool> {
        let to = SockAddr::from(SocketAddrV4::new(self.server, port));
        in_netns(&self.client_ns, move || {
            let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
            match s.connect_timeout(&to, timeout) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Ok(false),
                Err(e) => Err(e),
            }
        })
    }

    fn run(&self, port: u16, clients: usize, secs: f64, timeout: Duration) -> Result<Connects> {
        let to = SockAddr::from(SocketAddrV4::new(self.server, port));
        let start = Instant::now();
        let cpu = process_cpu_secs();
        let deadline = start + Duration::from_secs_f64(secs);
        let threads: Vec<_> = (0..clients.max(1))
            .map(|_| {
                let to = to.clone();
                spawn_in_netns(&self.client_ns, move || -> std::io::Result<(u64, u64)> {
                    let (mut ok, mut failed) = (0, 0);
                    while Instant::now() < deadline {
                        let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
                        s.set_linger(Some(Duration::ZERO))?;
                        // A blocking connect gives up after the send timeout.
                        s.set_write_timeout(Some(timeout))?;
                        match s.connect(&to) {
                            Ok(()) => ok += 1,
                            Err(_) => failed += 1,
                        }
                    }
                    Ok((ok, failed))
                })
            })
            .collect();
        let mut total = Connects::default();
        for t in threads {
            let (ok, failed) = t
                .join()
                .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
            total.ok += ok;
            total.failed += failed;
        }
        total.secs = start.elapsed().as_secs_f64();
        total.cpu_secs = process_cpu_secs() - cpu;
        Ok(total)
    }
}

impl Drop for Tcp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.acceptors.drain(..) {
            let _ = t.join();
        }
    }
}
