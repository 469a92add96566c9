//! Network namespaces owned by one test run: a unique run id in every name, a guard that deletes
//! the namespace (and kills what still runs in it) on drop, and a sweep of namespaces left behind
//! by runs that died (their process id is gone).

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;

use crate::sh;

/// Every namespace this crate creates starts with this, followed by `<pid>x<seq>-`.
pub const PREFIX: &str = "pce2e";

/// A run id unique among live processes: `pce2e<pid>x<seq>`.
pub fn new_run_id() -> String {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{PREFIX}{}x{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// A network namespace that exists while this value lives.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn create(name: &str) -> Result<Netns> {
        // A leftover with the same name can only come from this very process (the pid is in the
        // name), e.g. an earlier failed step: replace it.
        if list()?.iter().any(|n| n == name) {
            destroy(name);
        }
        sh::run("ip", &["netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
        };
        sh::ip(name, &["link", "set", "lo", "up"])?;
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        destroy(&self.name);
    }
}

/// Kills the processes still inside `name` (ours: servers, agents, probers) and deletes it.
/// Best effort: used on drop and in cleanup, where there is nobody to report an error to.
pub fn destroy(name: &str) {
    if let Ok(pids) = sh::run("ip", &["netns", "pids", name]) {
        for pid in pids.split_whitespace().filter_map(|p| p.parse::<i32>().ok()) {
            // SAFETY: plain syscall; the pid was just read from the namespace we own.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
    }
    let _ = sh::run("ip", &["netns", "del", name]);
}

pub fn list() -> Result<Vec<String>> {
    Ok(sh::run("ip", &["netns", "list"])?
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// Removes namespaces of earlier runs whose process is gone (killed test runs, Ctrl-C).
pub fn sweep_leftovers() -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for name in list()? {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid: Option<u32> = rest.split('x').next().and_then(|p| p.parse().ok());
        let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            destroy(&name);
            removed.push(name);
        }
    }
    Ok(removed)
}

/// Removes every namespace of every run of this process (the sandbox's Ctrl-C handler, which
/// may fire before the first namespace's guard exists).
pub fn destroy_own_runs() {
    let own = format!("{PREFIX}{}x", std::process::id());
    if let Ok(names) = list() {
        for name in names.iter().filter(|n| n.starts_with(&own)) {
            destroy(name);
        }
    }
}
