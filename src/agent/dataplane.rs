//! The only place that talks to the kernel: one nft transaction in, success or nft's own error
//! out. Behind a trait so the sync loop is tested with a fake.
//!
//! Transactions go to `nft -f -` as the text script ([`FORMAT`]; nft JSON, `nft -j -f -`, is a
//! one-line switch). The process is run here rather than through
//! `nftables::helper::apply_ruleset_raw`: that helper (0.6) leaves nft's stderr unpiped, so its
//! error would carry no message to log, and it has no timeout.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use policyc_compiler::nft::Transaction;
use tokio::io::AsyncWriteExt;

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot run {nft}: {source}")]
    Spawn {
        nft: String,
        #[source]
        source: std::io::Error,
    },
    /// nft rejected the transaction; nothing changed in the kernel (transactions are atomic).
    #[error("nft failed ({status}): {stderr}")]
    Rejected { status: String, stderr: String },
    /// nft did not answer in time and was killed before it committed (the kernel commits a
    /// transaction as a whole at the end, so it is all or nothing either way).
    #[error("nft did not finish within {0:?} and was killed")]
    Timeout(std::time::Duration),
}

/// Far above any real apply (tens of milliseconds for thousands of elements) yet short enough
/// that a hung nft cannot stall the sync loop for good.
pub const APPLY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A binary that something still holds open for writing (a package upgrade replacing nft; in the
/// tests, a fake nft script that a concurrent fork inherited) fails to exec with ETXTBSY for a
/// moment: retry a few times before calling nft missing or broken.
fn is_busy(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::ExecutableFileBusy
}

const BUSY_RETRIES: usize = 5;
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// How transactions are handed to nft.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `nft -f -` with [`Transaction::script`].
    Text,
    /// `nft -j -f -` with [`Transaction::json_text`]: structured, nothing to quote or escape.
    Json,
}

/// What the agent uses. Measured with nft 1.0.6 on a 659-rule, 120-set, 1801-element table: both
/// forms apply in about 50 ms. Text, because the script is built with every transaction anyway,
/// while the JSON form goes through a `serde_json::Value` tree: for the full replacement of a
/// 10k-pod cluster's node share that tree was 80 of the agent's 110 MB peak heap (heaptrack).
pub const FORMAT: Format = Format::Text;

/// Applies transactions of type `T` atomically.
pub trait Dataplane<T>: Send + 'static {
    fn apply(&mut self, txn: &T) -> impl Future<Output = Result<(), ApplyError>> + Send;
}

/// The real kernel, through the nft binary.
#[derive(Clone, Debug)]
pub struct Nft {
    binary: PathBuf,
    timeout: std::time::Duration,
    format: Format,
}

impl Nft {
    pub fn new(binary: impl Into<PathBuf>) -> Nft {
        Nft {
            binary: binary.into(),
            timeout: APPLY_TIMEOUT,
            format: FORMAT,
        }
    }

    pub fn with_format(mut self, format: Format) -> Nft {
        self.format = format;
        self
    }

    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Nft {
        self.timeout = timeout;
        self
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Checks that the binary runs at all, so a wrong `--nft` fails at start-up with a message
    /// naming the flag rather than as a stream of failed applies.
    pub fn check(&self) -> anyhow::Result<String> {
        let shown = self.binary.display();
        let run = || {
            std::process::Command::new(&self.binary)
                .arg("--version")
                .stdin(Stdio::null())
                .output()
        };
        let mut out = run();
        for _ in 0..BUSY_RETRIES {
            match &out {
                Err(e) if is_busy(e) => std::thread::sleep(BUSY_WAIT),
                _ => break,
            }
            out = run();
        }
        let out = out.map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow::anyhow!(
                "nft binary {shown:?} not found: install nftables or point --nft PATH at the nft binary"
            ),
            _ => anyhow::anyhow!("cannot run nft binary {shown:?} (--nft): {e}"),
        })?;
        if !out.status.success() {
            anyhow::bail!(
                "nft binary {shown:?} (--nft) failed `--version` ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Applies a transaction in this dataplane's [`Format`].
    pub async fn apply_transaction(&self, txn: &Transaction) -> Result<(), ApplyError> {
        match self.format {
            Format::Text => self.apply_script(&txn.script).await,
            Format::Json => self.run(&["-j", "-f", "-"], &txn.json_text()).await,
        }
    }

    /// Runs `nft -f -` with `script` on stdin: one atomic transaction.
    pub async fn apply_script(&self, script: &str) -> Result<(), ApplyError> {
        self.run(&["-f", "-"], script).await
    }

    async fn run(&self, args: &[&str], input: &str) -> Result<(), ApplyError> {
        let spawn_err = |source| ApplyError::Spawn {
            nft: self.binary.display().to_string(),
            source,
        };
        let mut cmd = tokio::process::Command::new(&self.binary);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut tries = 0;
        let mut child = loop {
            match cmd.spawn() {
                Err(e) if is_busy(&e) && tries < BUSY_RETRIES => {
                    tries += 1;
                    tokio::time::sleep(BUSY_WAIT).await;
                }
                r => break r.map_err(spawn_err)?,
            }
        };
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let run = async move {
            // A write error means nft exited early; its status and stderr say why.
            let _ = stdin.write_all(input.as_bytes()).await;
            drop(stdin);
            child.wait_with_output().await
        };
        let out = tokio::time::timeout(self.timeout, run)
            .await
            .map_err(|_| ApplyError::Timeout(self.timeout))?
            .map_err(spawn_err)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(ApplyError::Rejected {
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }
}

impl Dataplane<Transaction> for Nft {
    async fn apply(&mut self, txn: &Transaction) -> Result<(), ApplyError> {
        self.apply_transaction(txn).await
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    use super::*;

    fn script(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join("fake-nft");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    // These use shell scripts standing in for nft, to check the process handling without root;
    // the real binary is exercised in tests/agent_nft.rs.

    #[tokio::test]
    async fn passes_the_script_on_stdin_and_reports_nfts_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let got = dir.path().join("got");
        let fake = script(
            dir.path(),
            &format!("[ \"$1 $2\" = '-f -' ] || exit 9\ncat > '{}'\necho 'Error: No such file or directory' >&2\nexit 1", got.display()),
        );
        let err = Nft::new(&fake).apply_script("table inet x\n").await.unwrap_err();
        assert_eq!(std::fs::read_to_string(&got).unwrap(), "table inet x\n");
        match err {
            ApplyError::Rejected { stderr, status } => {
                assert_eq!(stderr, "Error: No such file or directory");
                assert!(status.contains('1'), "{status}");
            }
            other => panic!("{other:?}"),
        }
        let ok = script(dir.path(), "cat > /dev/null");
        Nft::new(&ok).apply_script("table inet x\n").await.unwrap();
    }

    /// While something holds the binary open for writing, exec fails with ETXTBSY; the apply
    /// waits that out instead of failing.
    #[tokio::test]
    async fn a_busy_binary_is_retried() {
        let dir = tempfile::tempdir().unwrap();
        let fake = script(dir.path(), "cat > /dev/null");
        let writer = std::fs::OpenOptions::new().append(true).open(&fake).unwrap();
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            drop(writer);
        });
        Nft::new(&fake).apply_script("table inet x\n").await.unwrap();
        release.await.unwrap();
    }

    #[tokio::test]
    async fn a_hung_nft_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let fake = script(dir.path(), "exec sleep 30");
        let nft = Nft::new(&fake).with_timeout(Duration::from_millis(200));
        let got = nft.apply_script("").await;
        assert!(matches!(got, Err(ApplyError::Timeout(_))), "{got:?}");
    }

    #[test]
    fn check_names_the_flag() {
        let err = Nft::new("/nonexistent/nft").check().unwrap_err().to_string();
        assert!(err.contains("--nft") && err.contains("not found"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let broken = script(dir.path(), "echo broken >&2; exit 3");
        let err = Nft::new(&broken).check().unwrap_err().to_string();
        assert!(err.contains("--nft") && err.contains("broken"), "{err}");
    }
}
