//! Running the system tools (`ip`, `bridge`, `nft`, `sysctl`) with errors that say which command
//! failed and what it printed, so a broken topology step is diagnosable from the test output.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// Runs `prog args...`, failing with its stderr when it exits non-zero; returns stdout.
pub fn run(prog: &str, args: &[&str]) -> Result<String> {
    run_stdin(prog, args, None)
}

/// Like [`run`], feeding `stdin` to the command.
pub fn run_stdin(prog: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {prog} {}", args.join(" ")))?;
    if let Some(input) = stdin {
        // Dropping the handle closes the pipe, so the command sees end of input.
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input.as_bytes())
            .with_context(|| format!("writing stdin of {prog}"))?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "`{prog} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip -n NS args...`: configures a namespace without entering it (and without touching the root
/// namespace).
pub fn ip(ns: &str, args: &[&str]) -> Result<String> {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// Runs a program inside namespace `ns` (`ip netns exec`).
pub fn exec(ns: &str, prog: &str, args: &[&str]) -> Result<String> {
    exec_stdin(ns, prog, args, None)
}

pub fn exec_stdin(ns: &str, prog: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let mut all = vec!["netns", "exec", ns, prog];
    all.extend_from_slice(args);
    run_stdin("ip", &all, stdin)
}

/// A `Command` that runs `prog` inside `ns` and dies with the thread that spawned it, so that a
/// killed test run leaves no servers or agents behind.
pub fn netns_command(ns: &str, prog: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, prog]);
    die_with_parent(&mut cmd);
    cmd
}

pub fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}
