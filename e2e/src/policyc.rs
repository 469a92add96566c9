//! The `policyc` binary under test: finding and building it, asking it for the predicted matrix,
//! and running its agent in a node namespace.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::sh;

/// The workspace root: this crate lives in `<root>/e2e`.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e/ has a parent")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| {
            if p.is_absolute() {
                p
            } else {
                workspace_root().join(p)
            }
        })
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The binaries the tests run.
#[derive(Clone, Debug)]
pub struct Binaries {
    pub policyc: PathBuf,
    pub pod: PathBuf,
}

/// Builds `policyc` and `e2e-pod` (a no-op when they are fresh): `cargo test -p policyc-e2e` alone
/// would not build another package's binary, so the tests never rely on it having been built.
pub fn build() -> Result<Binaries> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "build",
            "-q",
            "-p",
            "policyc",
            "--bin",
            "policyc",
            "-p",
            "policyc-e2e",
            "--bin",
            "e2e-pod",
        ])
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of policyc and e2e-pod failed ({status})");
    }
    let dir = target_dir().join("debug");
    let bins = Binaries {
        policyc: dir.join("policyc"),
        pod: dir.join("e2e-pod"),
    };
    for b in [&bins.policyc, &bins.pod] {
        if !b.exists() {
            bail!("{} was not built", b.display());
        }
    }
    Ok(bins)
}

/// `policyc matrix -o json`, as the CLI prints it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Matrix {
    pub family: String,
    pub pods: Vec<String>,
    pub results: Vec<PortResult>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct PortResult {
    pub port: u16,
    pub protocol: String,
    pub allowed: Vec<Vec<bool>>,
}

/// What `policyc` predicts for the manifests in `dir`.
pub fn predicted_matrix(bins: &Binaries, dir: &Path, family: &str) -> Result<Matrix> {
    let out = sh::run(
        bins.policyc.to_str().context("non-UTF-8 path")?,
        &[
            "matrix",
            "-f",
            dir.to_str().context("non-UTF-8 path")?,
            "-o",
            "json",
            "--family",
            family,
        ],
    )?;
    serde_json::from_str(&out).with_context(|| format!("parsing policyc matrix output: {out}"))
}

/// The oracle's matrix for the manifests in `dir`, computed in-process exactly as `policyc
/// matrix` computes it (the same loader, engine and default ports), except that invalid objects
/// are kept, as the agent keeps them (their invalid parts fail closed), where `policyc matrix`
/// refuses the input. Returns the diagnostics' text too.
pub fn lenient_matrix(dir: &Path, family: &str) -> Result<(Matrix, Vec<String>)> {
    use policyc_compiler::matrix;
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            files.push((p.display().to_string(), std::fs::read_to_string(&p)?));
        }
    }
    files.sort();
    let (cluster, _, diags) =
        policyc_compiler::load::load_texts(files.iter().map(|(n, t)| (n.as_str(), t.as_str())));
    let family = match family {
        "ipv4" => policyc_compiler::Family::Ipv4,
        "ipv6" => policyc_compiler::Family::Ipv6,
        other => bail!("unknown family {other:?}"),
    };
    let engine = policyc_compiler::Engine::indexed(&cluster);
    let m = matrix::matrix(&engine, &matrix::default_ports(&cluster), family);
    let m: Matrix = serde_json::from_value(serde_json::to_value(&m)?)?;
    Ok((m, diags.iter().map(ToString::to_string).collect()))
}

/// `policyc agent` running in a node namespace; killed on drop.
pub struct Agent {
    pub node: String,
    pub ns: String,
    pub listen: SocketAddr,
    pub log: PathBuf,
    /// Extra `policyc agent` flags (`--nft`, `--log-drops`, ...), kept across restarts.
    pub args: Vec<String>,
    child: Option<Child>,
}

pub const AGENT_LISTEN: &str = "127.0.0.1:9750";

impl Agent {
    pub fn start(bins: &Binaries, ns: &str, node: &str, manifests: &Path, log: PathBuf) -> Result<Agent> {
        Agent::start_with(
            bins,
            ns,
            node,
            manifests,
            log,
            AGENT_LISTEN.parse().expect("valid address"),
            Vec::new(),
        )
    }

    /// Like [`start`](Self::start), serving on `listen`, with extra flags.
    pub fn start_with(
        bins: &Binaries,
        ns: &str,
        node: &str,
        manifests: &Path,
        log: PathBuf,
        listen: SocketAddr,
        args: Vec<String>,
    ) -> Result<Agent> {
        let mut agent = Agent {
            node: node.to_string(),
            ns: ns.to_string(),
            listen,
            log,
            args,
            child: None,
        };
        agent.spawn(bins, manifests)?;
        Ok(agent)
    }

    fn spawn(&mut self, bins: &Binaries, manifests: &Path) -> Result<()> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = sh::netns_command(&self.ns, bins.policyc.to_str().context("non-UTF-8 path")?)
            .args(["agent", "--node-name", &self.node, "--manifests"])
            .arg(manifests)
            .args(["--listen", &self.listen.to_string()])
            .args(&self.args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting policyc agent")?;
        self.child = Some(child);
        Ok(())
    }

    /// Waits for `/readyz` to answer 200 (the first successful nft apply).
    pub fn wait_ready(&mut self, bins: &Binaries, timeout: Duration) -> Result<Duration> {
        let start = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!(
                        "agent on {} exited ({status}); log:\n{}",
                        self.node,
                        self.log_text()
                    );
                }
            }
            let status = sh::exec(
                &self.ns,
                bins.pod.to_str().context("non-UTF-8 path")?,
                &["http-get", &self.listen.to_string(), "/readyz"],
            );
            if status.as_deref().is_ok_and(|s| s.trim() == "200") {
                return Ok(start.elapsed());
            }
            if start.elapsed() > timeout {
                bail!(
                    "agent on {} not ready after {timeout:?} (last: {status:?}); log:\n{}",
                    self.node,
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The agent's process id (`ip netns exec` execs the agent in place), while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, as an OOM kill or a node crash would: no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, as a rolling update or `kubectl delete pod` does; returns the exit status.
    pub fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        let mut c = self.child.take().context("agent not running")?;
        // SAFETY: plain syscall on our own child's pid.
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        Ok(c.wait()?)
    }

    /// `GET path` on the agent's endpoint from inside its namespace: (status, body).
    pub fn http(&self, bins: &Binaries, path: &str) -> Result<(u16, String)> {
        let out = sh::exec(
            &self.ns,
            bins.pod.to_str().context("non-UTF-8 path")?,
            &["http-get", "--body", &self.listen.to_string(), path],
        )?;
        let (status, body) = out.split_once('\n').unwrap_or((out.as_str(), ""));
        Ok((status.trim().parse()?, body.to_string()))
    }

    /// The agent's whole log (every run of it).
    pub fn full_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn restart(&mut self, bins: &Binaries, manifests: &Path) -> Result<()> {
        self.kill();
        self.spawn(bins, manifests)
    }

    pub fn log_text(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The stand-in for the agent while it is being written: `policyc render | nft -f -` per node.
pub fn render_apply(bins: &Binaries, ns: &str, node: &str, dir: &Path) -> Result<()> {
    let script = sh::run(
        bins.policyc.to_str().context("non-UTF-8 path")?,
        &[
            "render",
            "--node-name",
            node,
            "-f",
            dir.to_str().context("non-UTF-8 path")?,
        ],
    )?;
    sh::exec_stdin(ns, "nft", &["-f", "-"], Some(&script)).map(drop)
}

/// `policyc trace SRC DST --port PORT -o json`: whether the oracle allows the connection.
pub fn trace_allowed(bins: &Binaries, dir: &Path, src: &str, dst: &str, port: &str) -> Result<bool> {
    let out = sh::run(
        bins.policyc.to_str().context("non-UTF-8 path")?,
        &[
            "trace",
            src,
            dst,
            "--port",
            port,
            "-f",
            dir.to_str().context("non-UTF-8 path")?,
            "-o",
            "json",
        ],
    )?;
    let v: serde_json::Value =
        serde_json::from_str(&out).with_context(|| format!("parsing policyc trace output: {out}"))?;
    v.get("allowed")
        .and_then(serde_json::Value::as_bool)
        .with_context(|| format!("no `allowed` in policyc trace output: {out}"))
}
