//! Prerequisites of the e2e tests (root, `ip`, `bridge`, `nft`): skip with a reason, except under
//! `CI=true`, where a missing prerequisite is a failure.

use std::process::{Command, Stdio};

/// What is missing, if anything.
pub fn missing() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not running as root (network namespaces need CAP_SYS_ADMIN/CAP_NET_ADMIN)".into());
    }
    for (tool, arg) in [
        ("ip", "-V"),
        ("bridge", "-V"),
        ("nft", "-v"),
        ("sysctl", "--version"),
    ] {
        let ok = Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return Some(format!("`{tool}` is not installed or does not run"));
        }
    }
    // Reading (never writing) the root namespace's sysctl tree: it exists once br_netfilter is
    // loaded, and the node namespaces need its per-namespace switches.
    if !std::path::Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists() {
        return Some("bridge netfilter is not available (run `modprobe br_netfilter` once)".into());
    }
    None
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// True when the test may run; prints the skip reason otherwise. Panics under `CI=true`.
pub fn check(test: &str) -> bool {
    match missing() {
        None => true,
        Some(reason) if in_ci() => panic!("{test}: prerequisite missing under CI=true: {reason}"),
        Some(reason) => {
            // Straight to fd 2: the test harness captures `eprintln!`, and a skip must be seen.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
            false
        }
    }
}
