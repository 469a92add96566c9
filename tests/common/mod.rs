//! Helpers of the root crate's tests that run the agent binary in network namespaces: running a
//! tool, the root/tool prerequisites (skip with a reason, fail under `CI=true`), a child process
//! killed however the test ends, and polling until a condition holds.

use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

pub fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"))
}

/// Ok, or why root or one of `tools` (`(binary, version flag)`) is missing.
fn prerequisites(tools: &[(&str, &str)]) -> Result<(), String> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map_err(|e| format!("id: {e}"))?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Err("not running as root".into());
    }
    for (bin, arg) in tools {
        match Command::new(bin).arg(arg).output() {
            Ok(o) if o.status.success() => {}
            _ => return Err(format!("{bin} is not installed")),
        }
    }
    Ok(())
}

/// Skips (returns false) when a prerequisite is missing, or fails under CI=true.
pub fn can_run(test: &str, tools: &[(&str, &str)]) -> bool {
    match prerequisites(tools) {
        Ok(()) => true,
        Err(reason) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: prerequisite missing under CI=true: {reason}")
        }
        Err(reason) => {
            eprintln!("skipping {test}: {reason}");
            false
        }
    }
}

/// A child process killed and reaped however the test ends.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
