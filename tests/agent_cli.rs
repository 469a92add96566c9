//! `policyc agent` start-up errors, through the real binary.

use std::process::Command;

fn agent(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_policyc"))
        .arg("agent")
        .args(args)
        .env_remove("NODE_NAME")
        .output()
        .expect("run policyc")
}

#[test]
fn missing_nft_binary_is_a_clear_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-nft");
    let manifests = dir.path().to_str().unwrap();
    let out = agent(&[
        "--node-name",
        "n1",
        "--manifests",
        manifests,
        "--listen",
        "127.0.0.1:0",
        "--nft",
        missing.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--nft"), "{stderr}");
    assert!(stderr.contains("not found"), "{stderr}");
    assert!(stderr.contains("no-such-nft"), "{stderr}");

    // --cleanup checks it too.
    let out = agent(&["--cleanup", "--nft", missing.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--nft"));
}

#[test]
fn node_name_is_required_unless_cleanup() {
    let out = agent(&["--manifests", "."]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--node-name"), "{stderr}");
}

#[test]
fn manifests_and_kubeconfig_conflict() {
    let out = agent(&["--node-name", "n1", "--manifests", ".", "--kubeconfig", "/x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
}

/// A table name that is not an nft identifier is refused before nft is run at all, also for
/// `--cleanup` (which deletes the named table).
#[test]
fn invalid_table_name_is_refused_before_nft_runs() {
    for table in ["", "9x", "x y", "x;flush ruleset"] {
        let out = agent(&["--cleanup", "--table", table, "--nft", "/nonexistent/nft"]);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("invalid --table"), "{table:?}: {stderr}");
        assert!(!stderr.contains("--nft"), "{table:?}: {stderr}");
    }
}
