//! The only place that talks to the kernel: one nft transaction in, success or nft's own error
//! out. Behind a trait so the sync loop is tested with a fake, and so switching from `nft -f -`
//! (script on stdin) to nft JSON (`nft -j -f -`) is a change here only.

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
}

/// Applies transactions of type `T` atomically.
pub trait Dataplane<T>: Send + 'static {
    fn apply(&mut self, txn: &T) -> impl Future<Output = Result<(), ApplyError>> + Send;
}

/// The real kernel, through the nft binary.
#[derive(Clone, Debug)]
pub struct Nft {
    binary: PathBuf,
}

impl Nft {
    pub fn new(binary: impl Into<PathBuf>) -> Nft {
        Nft {
            binary: binary.into(),
        }
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// Checks that the binary runs at all, so a wrong `--nft` fails at start-up with a message
    /// naming the flag rather than as a stream of failed applies.
    pub fn check(&self) -> anyhow::Result<String> {
        let shown = self.binary.display();
        let out = std::process::Command::new(&self.binary)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| match e.kind() {
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

    /// Runs `nft -f -` with `script` on stdin: one atomic transaction.
    pub async fn apply_script(&self, script: &str) -> Result<(), ApplyError> {
        let spawn_err = |source| ApplyError::Spawn {
            nft: self.binary.display().to_string(),
            source,
        };
        let mut child = tokio::process::Command::new(&self.binary)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        // A write error means nft exited early; its status and stderr below say why.
        let _ = stdin.write_all(script.as_bytes()).await;
        drop(stdin);
        let out = child.wait_with_output().await.map_err(spawn_err)?;
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
        self.apply_script(&txn.script).await
    }
}
