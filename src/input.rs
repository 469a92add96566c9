//! Reads `-f PATH` arguments (files, or directories walked recursively for `*.yaml`, `*.yml`,
//! `*.json`) and loads them with the compiler's loader.

use std::path::{Path, PathBuf};

use anyhow::Context;
use policyc_compiler::load::{load_texts, Objects};
use policyc_compiler::{Cluster, Diagnostic};

/// Every input file named by `paths`, in a stable order (directories sorted by path). Inside a
/// directory, hidden entries are skipped: a ConfigMap volume (`--manifests` in a pod) holds every
/// file three times, as `f.yaml` -> `..data/f.yaml` -> `..2026_12_01_.../f.yaml`.
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
    let hidden = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'))
    };
    for path in entries.into_iter().filter(|p| !hidden(p)) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_entries_of_a_directory_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("..2026_12_01/sub")).unwrap();
        std::fs::write(root.join("..2026_12_01/p.yaml"), "").unwrap();
        std::os::unix::fs::symlink("..2026_12_01", root.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/p.yaml", root.join("p.yaml")).unwrap();
        std::fs::create_dir(root.join("team")).unwrap();
        std::fs::write(root.join("team/q.yml"), "").unwrap();
        std::fs::write(root.join(".editor.yaml"), "").unwrap();
        let files = collect_files(&[root.to_path_buf()]).unwrap();
        assert_eq!(files, vec![root.join("p.yaml"), root.join("team/q.yml")]);
        // A hidden file named explicitly is read.
        let explicit = collect_files(&[root.join(".editor.yaml")]).unwrap();
        assert_eq!(explicit, vec![root.join(".editor.yaml")]);
    }
}
