//! Reads `-f PATH` arguments (files, or directories walked recursively for `*.yaml`, `*.yml`,
//! `*.json`) and loads them with the compiler's loader.

use std::path::{Path, PathBuf};

use anyhow::Context;
use policyc_compiler::load::{load_texts, Objects};
use policyc_compiler::{Cluster, Diagnostic};

/// Every input file named by `paths`, in a stable order (directories sorted by path).
pub fn collect_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            walk(path, &mut out)?;
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read directory {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// The loaded snapshot and every diagnostic about the input.
pub struct Loaded {
    pub cluster: Cluster,
    pub objects: Objects,
    pub diagnostics: Vec<Diagnostic>,
}

/// `(file name, contents)` of every input file named by `paths`, in [`collect_files`] order.
pub fn read_texts(paths: &[PathBuf]) -> anyhow::Result<Vec<(String, String)>> {
    collect_files(paths)?
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .with_context(|| format!("cannot read {}", f.display()))
                .map(|t| (f.display().to_string(), t))
        })
        .collect()
}

pub fn load(paths: &[PathBuf]) -> anyhow::Result<Loaded> {
    let texts = read_texts(paths)?;
    let (cluster, objects, diagnostics) = load_texts(texts.iter().map(|(n, t)| (n.as_str(), t.as_str())));
    Ok(Loaded {
        cluster,
        objects,
        diagnostics,
    })
}
