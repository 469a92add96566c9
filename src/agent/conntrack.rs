//! `--flush-conntrack`: after each applied ruleset, delete the conntrack entries of connections
//! that it denies, so that established connections stop too. Our rules judge a connection by its
//! first packet and accept the rest as `ct state established`; without this, a policy change
//! never cuts a connection that is already open (as in Calico and kube-router).
//!
//! The entries are listed and deleted with the `conntrack` CLI (conntrack-tools, as kube-proxy
//! does): `conntrack -L -o save` per family, then one `conntrack -R -` batch of `-D` lines. Which
//! entries to delete is [`denied`], a pure function of the entries, the applied [`Ruleset`] and
//! the node's own addresses, decided by the compiler's packet tracer over the very ruleset the
//! kernel now holds: an entry goes when a new connection with its first packet's headers would be
//! dropped. Only TCP, UDP and SCTP entries are judged (the protocols NetworkPolicy names); the
//! node's own connections are kept (they leave through OUTPUT, which the ruleset never filters).
//! Deletions are logged and counted (`policyc_conntrack_deleted_total`), never listed one by one.
//!
//! After a deletion the connection's next packet is looked up again: with the kernel's default
//! loose TCP tracking it is picked up as a new connection and dropped by the rules, otherwise it
//! is `ct state invalid` and dropped as such; either way the connection stops.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use anyhow::{bail, Context};
use policyc_compiler::nft::ir::{CtState, Hook};
use policyc_compiler::nft::tracer::{trace, Packet};
use policyc_compiler::nft::Ruleset;
use policyc_compiler::Protocol;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;

use super::metrics::Metrics;

/// One conntrack entry, as much of it as the decision and the deletion need.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Flow {
    pub protocol: Protocol,
    /// The original direction (the connection's first packet, before any NAT).
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    /// The reply direction's source: the destination after DNAT (a Service's backend).
    pub reply_src: IpAddr,
    pub reply_sport: u16,
    /// The conntrack zone, when not the default one.
    pub zone: Option<u16>,
}

/// Parses `conntrack -L -o save` output. Lines of other protocols (ICMP, GRE, ...) and lines it
/// cannot read are skipped; the second value counts the unreadable ones.
pub fn parse_save(text: &str) -> (Vec<Flow>, usize) {
    let mut flows = Vec::new();
    let mut bad = 0;
    for line in text.lines().map(str::trim).filter(|l| l.starts_with("-A ")) {
        match parse_line(line) {
            Ok(Some(f)) => flows.push(f),
            Ok(None) => {}
            Err(()) => bad += 1,
        }
    }
    (flows, bad)
}

/// `Ok(None)` for a protocol we do not judge.
fn parse_line(line: &str) -> Result<Option<Flow>, ()> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let value = |key: &str| -> Option<&str> {
        tokens
            .windows(2)
            .find(|w| w[0] == key && !w[1].starts_with('-'))
            .map(|w| w[1])
    };
    let protocol = match value("-p") {
        Some("tcp") => Protocol::Tcp,
        Some("udp") => Protocol::Udp,
        Some("sctp") => Protocol::Sctp,
        Some(_) => return Ok(None),
        None => return Err(()),
    };
    let ip = |key: &str| value(key).and_then(|v| v.parse::<IpAddr>().ok()).ok_or(());
    let port = |key: &str| value(key).and_then(|v| v.parse::<u16>().ok()).ok_or(());
    let zone = match value("-w") {
        Some(z) => Some(z.parse::<u16>().map_err(|_| ())?),
        None => None,
    };
    Ok(Some(Flow {
        protocol,
        src: ip("-s")?,
        dst: ip("-d")?,
        sport: port("--sport")?,
        dport: port("--dport")?,
        reply_src: ip("-r")?,
        reply_sport: port("--reply-port-src")?,
        zone,
    }))
}

/// Whether the ruleset admits a new connection with `flow`'s first packet, as our hooks see it:
/// after DNAT (prerouting comes first), before SNAT (postrouting comes last), in `input` when
/// its destination is this node, else in `forward`.
pub fn admits(rs: &Ruleset, host: &BTreeSet<IpAddr>, flow: &Flow) -> bool {
    if host.contains(&flow.src) {
        return true;
    }
    let daddr = flow.reply_src;
    let packet = Packet {
        hook: if host.contains(&daddr) {
            Hook::Input
        } else {
            Hook::Forward
        },
        saddr: flow.src,
        daddr,
        protocol: flow.protocol,
        dport: flow.reply_sport,
        ct_state: CtState::New,
    };
    trace(rs, &packet).accepted()
}

/// The flows `rs` denies; `host` is every address of this node (loopback, bridge and vxlan
/// addresses included).
pub fn denied<'f>(flows: &'f [Flow], rs: &Ruleset, host: &BTreeSet<IpAddr>) -> Vec<&'f Flow> {
    flows.iter().filter(|f| !admits(rs, host, f)).collect()
}

/// The `conntrack -R -` input that deletes `flows` (by their original tuple).
pub fn delete_script(flows: &[&Flow]) -> String {
    let mut out = String::new();
    for f in flows {
        let _ = write!(
            out,
            "-D -s {} -d {} -p {} --sport {} --dport {}",
            f.src,
            f.dst,
            f.protocol.nft_name(),
            f.sport,
            f.dport
        );
        if let Some(z) = f.zone {
            let _ = write!(out, " -w {z}");
        }
        out.push('\n');
    }
    out
}

/// Every address configured on this node's interfaces (the agent runs in the node's network
/// namespace).
pub fn host_addresses() -> anyhow::Result<BTreeSet<IpAddr>> {
    let addrs = nix::ifaddrs::getifaddrs().context("cannot list the node's addresses")?;
    Ok(addrs
        .filter_map(|a| a.address)
        .filter_map(|a| {
            a.as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
        })
        .collect())
}

/// What one flush did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub listed: usize,
    pub deleted: usize,
    pub unreadable: usize,
}

/// The `conntrack` binary.
#[derive(Clone, Debug)]
pub struct Conntrack {
    binary: PathBuf,
}

impl Conntrack {
    /// Checks that the binary runs (`conntrack --version`), so a missing one fails at start-up.
    pub fn check(binary: PathBuf) -> anyhow::Result<Conntrack> {
        let out = std::process::Command::new(&binary)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("--flush-conntrack: cannot run {}", binary.display()))?;
        if !out.status.success() {
            bail!(
                "--flush-conntrack: {} --version failed ({})",
                binary.display(),
                out.status
            );
        }
        Ok(Conntrack { binary })
    }

    async fn list(&self, family: &str) -> anyhow::Result<String> {
        let out = tokio::process::Command::new(&self.binary)
            .args(["-L", "-o", "save", "-f", family])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .with_context(|| format!("running {}", self.binary.display()))?;
        if !out.status.success() {
            bail!(
                "conntrack -L -f {family} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    async fn delete(&self, script: &str) -> anyhow::Result<()> {
        let mut child = tokio::process::Command::new(&self.binary)
            .args(["-R", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("running {}", self.binary.display()))?;
        let mut stdin = child.stdin.take().context("conntrack stdin")?;
        stdin.write_all(script.as_bytes()).await?;
        drop(stdin);
        let out = child.wait_with_output().await?;
        if !out.status.success() {
            bail!(
                "conntrack -R failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Lists every entry, deletes those `rs` denies.
    pub async fn flush(&self, rs: &Ruleset) -> anyhow::Result<Report> {
        let host = host_addresses()?;
        let mut text = self.list("ipv4").await?;
        text.push_str(&self.list("ipv6").await?);
        let (flows, unreadable) = parse_save(&text);
        let gone = denied(&flows, rs, &host);
        if !gone.is_empty() {
            self.delete(&delete_script(&gone)).await?;
        }
        Ok(Report {
            listed: flows.len(),
            deleted: gone.len(),
            unreadable,
        })
    }

    /// Flushes after every ruleset the sync loop publishes (a burst of applies while a flush
    /// runs is coalesced into one flush against the latest).
    pub async fn run(self, mut applied: watch::Receiver<Option<Ruleset>>, metrics: Arc<Metrics>) {
        while applied.changed().await.is_ok() {
            let Some(rs) = applied.borrow_and_update().clone() else {
                continue;
            };
            let started = std::time::Instant::now();
            match self.flush(&rs).await {
                Ok(r) => {
                    metrics.conntrack_deleted.inc_by(r.deleted as u64);
                    if r.unreadable > 0 {
                        tracing::warn!(lines = r.unreadable, "unreadable conntrack entries skipped");
                    }
                    if r.deleted > 0 {
                        tracing::info!(
                            deleted = r.deleted,
                            listed = r.listed,
                            took = ?started.elapsed(),
                            "deleted conntrack entries of connections the applied ruleset denies"
                        );
                    } else {
                        tracing::debug!(listed = r.listed, "no conntrack entry to delete");
                    }
                }
                Err(e) => {
                    metrics.conntrack_flush_failures.inc();
                    tracing::error!("conntrack flush failed, established connections stay: {e:#}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
