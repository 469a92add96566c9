//! Shared test helpers: fixtures, golden files, and throwaway network namespaces for real nft.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use policyc_compiler::load::load_texts;
use policyc_compiler::Cluster;

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Loads every YAML file of a directory (sorted), failing the test on any diagnostic unless
/// `allow_diags`.
pub fn load_dir(dir: &Path, allow_diags: bool) -> Cluster {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            )
        })
        .collect();
    files.sort();
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|f| (f.display().to_string(), std::fs::read_to_string(f).unwrap()))
        .collect();
    let (cluster, _, diags) = load_texts(texts.iter().map(|(n, t)| (n.as_str(), t.as_str())));
    if !allow_diags {
        assert!(diags.is_empty(), "diagnostics in {}: {diags:?}", dir.display());
    }
    cluster
}

/// Every node the cluster names (Node objects and pods' nodeName), sorted.
pub fn node_names(cluster: &Cluster) -> Vec<String> {
    let mut v: Vec<String> = cluster
        .nodes
        .keys()
        .cloned()
        .chain(cluster.pods.iter().filter_map(|p| p.node_name.clone()))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Whether tests needing root, `ip` and `nft` can run; prints why not. Under `CI=true` a missing
/// prerequisite fails the test instead.
pub fn have_nft() -> bool {
    let ok = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    let reason = if !ok("id", &["-u"]) || !is_root() {
        Some("not running as root")
    } else if !ok("nft", &["--version"]) {
        Some("nft is not installed")
    } else if !ok("ip", &["-V"]) {
        Some("iproute2 is not installed")
    } else {
        None
    };
    match reason {
        None => true,
        Some(r) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("prerequisite missing under CI=true: {r}");
            }
            eprintln!("skipping: {r}");
            false
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A network namespace that lives as long as the value (removed on drop, also on panic).
pub struct NetNs {
    pub name: String,
}

impl NetNs {
    pub fn new(tag: &str) -> NetNs {
        let name = format!(
            "policyc-t-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let st = Command::new("ip").args(["netns", "add", &name]).status().unwrap();
        assert!(st.success(), "ip netns add {name} failed");
        NetNs { name }
    }

    /// Runs `nft ARGS` in the namespace, with `stdin` as its input.
    pub fn nft(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft"])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// `nft ARGS` that must succeed; returns stdout.
    pub fn nft_ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.nft(args, stdin);
        assert!(
            out.status.success(),
            "nft {args:?} failed: {}\ninput:\n{}",
            String::from_utf8_lossy(&out.stderr),
            truncate(stdin)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

fn truncate(s: &str) -> String {
    if s.len() > 4000 {
        format!("{}... ({} bytes)", &s[..4000], s.len())
    } else {
        s.to_string()
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}
