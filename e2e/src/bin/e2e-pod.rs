//! The workload and prober that run inside the e2e namespaces.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Echo on the given TCP and UDP ports; log SCTP INITs to a file.
    Serve {
        #[arg(long, value_delimiter = ',')]
        tcp: Vec<u16>,
        #[arg(long, value_delimiter = ',')]
        udp: Vec<u16>,
        /// Bind UDP to these addresses instead of the wildcard.
        #[arg(long, value_delimiter = ',')]
        udp_addr: Vec<std::net::IpAddr>,
        #[arg(long)]
        sctp_log: Option<PathBuf>,
    },
    /// Probe the targets of a JSON request on stdin; JSON response on stdout.
    Probe,
    /// A long-lived TCP connection driven by stdin lines.
    Session {
        target: SocketAddr,
        #[arg(long, default_value_t = 1000)]
        timeout_ms: u64,
    },
    /// Print the HTTP status of GET http://ADDR/PATH (and, with --body, the body after it).
    HttpGet {
        addr: SocketAddr,
        path: String,
        #[arg(long)]
        body: bool,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Serve {
            tcp,
            udp,
            udp_addr,
            sctp_log,
        } => policyc_e2e::server::serve(&tcp, &udp, &udp_addr, sctp_log.as_deref()),
        Cmd::Probe => {
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input)?;
            let req: policyc_e2e::probe::Request = serde_json::from_str(&input)?;
            println!("{}", serde_json::to_string(&policyc_e2e::probe::run(&req))?);
            Ok(())
        }
        Cmd::Session { target, timeout_ms } => policyc_e2e::server::session(target, timeout_ms),
        Cmd::HttpGet {
            addr,
            path,
            body: false,
        } => {
            println!("{}", policyc_e2e::server::http_status(addr, &path)?);
            Ok(())
        }
        Cmd::HttpGet {
            addr,
            path,
            body: true,
        } => {
            let (status, body) = policyc_e2e::server::http_get(addr, &path)?;
            println!("{status}\n{body}");
            Ok(())
        }
    }
}
