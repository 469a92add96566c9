//! `mock-apiserver --netns NS --kubeconfig OUT DIR...`: serves the objects of YAML/JSON manifest
//! files (or directories of them) through the mock Kubernetes API inside network namespace NS, and
//! writes a kubeconfig for `policyc agent --kubeconfig OUT`, until killed. For measuring the agent
//! by hand (scripts/measure-agent.sh --kube); tests and benchmarks use the library directly.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use policyc_e2e::apiserver::ApiServer;
use serde::Deserialize;
use serde_json::Value;

#[derive(Parser)]
struct Args {
    /// The network namespace to listen in (`ip netns` name); default: the current one.
    #[arg(long)]
    netns: Option<String>,
    /// Where to write the kubeconfig.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Manifest files or directories.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

fn files(path: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        entries.sort();
        for e in entries {
            files(&e, out)?;
        }
    } else if path
        .extension()
        .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
    {
        out.push(path.to_path_buf());
    }
    Ok(())
}

fn objects(path: &Path) -> Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v = Value::deserialize(doc).with_context(|| format!("parsing {}", path.display()))?;
        match v.get("items").and_then(Value::as_array) {
            Some(items) if v.get("kind").and_then(Value::as_str) == Some("List") => {
                out.extend(items.iter().cloned())
            }
            _ if v.is_null() => {}
            _ => out.push(v),
        }
    }
    Ok(out)
}

fn main() -> Result<()> {
    let args = Args::parse();
    let mut paths = Vec::new();
    for p in &args.paths {
        files(p, &mut paths)?;
    }
    let api = ApiServer::start_in(args.netns.as_deref())?;
    let mut n = 0;
    for p in &paths {
        let objs = objects(p)?;
        n += objs.len();
        api.load(objs)?;
    }
    std::fs::copy(api.kubeconfig(), &args.kubeconfig)
        .with_context(|| format!("writing {}", args.kubeconfig.display()))?;
    eprintln!(
        "serving {n} objects on http://{} (kubeconfig {})",
        api.addr(),
        args.kubeconfig.display()
    );
    loop {
        std::thread::park();
    }
}
