//! The `policyc` binary end to end: `trace`, `matrix` and `explain pod` on files, their text and
//! JSON output (insta snapshots, each read and checked by hand before it was accepted), and exit
//! codes. Paths are relative to the package root so that snapshots do not depend on the checkout.

use std::process::Command;

/// Runs the binary from the package root; returns a transcript of exit code, stdout and stderr.
fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_policyc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run policyc");
    (
        out.status.code().expect("exited"),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

fn transcript(args: &[&str]) -> String {
    let (code, stdout, stderr) = run(args);
    format!(
        "$ policyc {}\nexit: {code}\n--- stdout\n{stdout}--- stderr\n{stderr}",
        args.join(" ")
    )
}

fn json(args: &[&str]) -> serde_json::Value {
    let (code, stdout, stderr) = run(args);
    assert_eq!(code, 0, "{stderr}");
    serde_json::from_str(&stdout).expect("valid JSON on stdout")
}

const EXAMPLES: &[&str] = &["-f", "examples"];
const WITH_HOSTNET: &[&str] = &["-f", "examples", "-f", "tests/fixtures/hostnet.yaml"];

fn args<'a>(head: &[&'a str], input: &[&'a str]) -> Vec<&'a str> {
    head.iter().chain(input).copied().collect()
}

#[test]
fn trace_text() {
    insta::assert_snapshot!(
        "trace_allowed_pods",
        transcript(&args(&["trace", "shop/web", "shop/api", "-p", "9090"], EXAMPLES))
    );
    insta::assert_snapshot!(
        "trace_denied_pods",
        transcript(&args(
            &["trace", "tools/debug", "shop/db", "--port", "5432/tcp"],
            EXAMPLES
        ))
    );
    // An outside address in, an address that is a pod's out.
    insta::assert_snapshot!(
        "trace_allowed_ips",
        transcript(&args(
            &["trace", "192.0.2.10", "shop/web", "-p", "8080"],
            EXAMPLES
        ))
    );
    insta::assert_snapshot!(
        "trace_denied_ip_to_pod_ip",
        transcript(&args(
            &["trace", "192.0.2.10", "10.244.1.11", "-p", "5432"],
            EXAMPLES
        ))
    );
    // hostNetwork source: its own node may reach local pods; elsewhere only ipBlocks match it.
    insta::assert_snapshot!(
        "trace_host_network",
        [
            transcript(&args(
                &["trace", "monitoring/node-exporter", "shop/web", "-p", "8080"],
                WITH_HOSTNET
            )),
            transcript(&args(
                &["trace", "monitoring/node-exporter", "shop/api", "-p", "9090"],
                WITH_HOSTNET
            )),
            transcript(&args(
                &["trace", "198.18.0.11", "shop/db", "-p", "1/UDP"],
                WITH_HOSTNET
            )),
            transcript(&args(
                &["trace", "shop/web", "monitoring/node-exporter", "-p", "9100"],
                WITH_HOSTNET
            )),
        ]
        .join("\n")
    );
}

#[test]
fn trace_json() {
    let allowed = json(&args(
        &["trace", "shop/web", "shop/api", "-p", "9090", "-o", "json"],
        EXAMPLES,
    ));
    assert_eq!(allowed["allowed"], true);
    assert_eq!(allowed["ingress"]["reason"], "allowed-by-rule");
    assert_eq!(allowed["egress"]["reason"], "not-isolated");
    insta::assert_json_snapshot!("trace_allowed_json", allowed);
    let denied = json(&args(
        &["trace", "tools/debug", "shop/db", "-p", "5432", "-o", "json"],
        EXAMPLES,
    ));
    assert_eq!(denied["allowed"], false);
    assert_eq!(denied["ingress"]["allowed"], false);
    assert_eq!(denied["ingress"]["reason"], "no-rule-allows");
    insta::assert_json_snapshot!("trace_denied_json", denied);
    let ip = json(&args(
        &["trace", "192.0.2.10", "shop/web", "-p", "8080", "-o", "json"],
        EXAMPLES,
    ));
    assert_eq!(ip["egress"]["reason"], "not-a-pod");
    insta::assert_json_snapshot!("trace_ip_json", ip);
}

#[test]
fn matrix_text_and_json() {
    insta::assert_snapshot!("matrix_examples", transcript(&args(&["matrix"], EXAMPLES)));
    insta::assert_snapshot!(
        "matrix_examples_ports",
        transcript(&args(&["matrix", "-p", "8080", "-p", "53/UDP"], WITH_HOSTNET))
    );
    let m = json(&args(&["matrix", "-o", "json"], EXAMPLES));
    // The documented shape: pods sorted by namespace then name, allowed[i][j] = from i to j.
    let pods: Vec<&str> = m["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(pods, ["shop/api", "shop/db", "shop/web", "tools/debug"]);
    let results = m["results"].as_array().unwrap();
    let at = |port: u64, from: usize, to: usize| {
        let r = results.iter().find(|r| r["port"] == port).unwrap();
        assert_eq!(r["protocol"], "TCP");
        r["allowed"][from][to].as_bool().unwrap()
    };
    assert!(at(5432, 0, 1), "api -> db on 5432");
    assert!(!at(5432, 1, 0), "db -> api on 5432");
    assert!(at(9090, 2, 0), "web -> api on 9090");
    assert!(
        !at(9090, 0, 2),
        "api -> web on 9090 (web admits only http = 8080)"
    );
    insta::assert_json_snapshot!("matrix_examples_json", m);
}

#[test]
fn matrix_reads_directories_recursively() {
    // tests/fixtures/tree: .yaml, .yml and .json in nested directories, a PodList whose items
    // carry no kind, a Failed pod (left out), a dual-stack pair, and a .txt file that is ignored.
    insta::assert_snapshot!(
        "matrix_tree",
        [
            transcript(&["matrix", "-f", "tests/fixtures/tree"]),
            transcript(&[
                "matrix",
                "-f",
                "tests/fixtures/tree",
                "--family",
                "ipv6",
                "-p",
                "8001"
            ]),
        ]
        .join("\n")
    );
    let m = json(&["matrix", "-f", "tests/fixtures/tree", "-o", "json"]);
    assert_eq!(m["pods"], serde_json::json!(["app/back", "app/front"]));
}

#[test]
fn explain_pod_text_and_json() {
    insta::assert_snapshot!(
        "explain_isolated_named_ports",
        transcript(&args(&["explain", "pod", "shop/api"], EXAMPLES))
    );
    insta::assert_snapshot!(
        "explain_not_isolated",
        transcript(&args(&["explain", "pod", "tools/debug"], EXAMPLES))
    );
    insta::assert_snapshot!(
        "explain_host_network",
        transcript(&args(
            &["explain", "pod", "monitoring/node-exporter"],
            WITH_HOSTNET
        ))
    );
    let api = json(&args(&["explain", "pod", "shop/api", "-o", "json"], EXAMPLES));
    assert_eq!(api["ingress"]["isolated"], true);
    assert_eq!(api["egress"]["isolated"], false);
    insta::assert_json_snapshot!("explain_isolated_json", api);
    let hn = json(&args(
        &["explain", "pod", "monitoring/node-exporter", "-o", "json"],
        WITH_HOSTNET,
    ));
    assert_eq!(hn["host_network"], true);
    assert_eq!(hn["ingress"]["isolated"], false);
    insta::assert_json_snapshot!("explain_host_network_json", hn);
}

#[test]
fn implicit_namespaces_are_noted() {
    // In text and in JSON (on stderr, so stdout stays parseable).
    insta::assert_snapshot!(
        "implicit_namespace_note",
        [
            transcript(&["matrix", "-f", "tests/fixtures/implicit.yaml"]),
            transcript(&[
                "explain",
                "pod",
                "ghost/p",
                "-f",
                "tests/fixtures/implicit.yaml",
                "-o",
                "json"
            ]),
        ]
        .join("\n")
    );
    let (_, stdout, stderr) = run(&[
        "trace",
        "ghost/p",
        "ghost/p",
        "-p",
        "80",
        "-f",
        "tests/fixtures/implicit.yaml",
        "-o",
        "json",
    ]);
    serde_json::from_str::<serde_json::Value>(&stdout).expect("JSON on stdout");
    assert!(stderr.contains("ghost, phantom"), "{stderr}");
    // Nothing to note when every namespace is given.
    let (_, _, stderr) = run(&args(&["matrix"], EXAMPLES));
    assert_eq!(stderr, "");
}

#[test]
fn exit_codes() {
    assert_eq!(run(&args(&["matrix"], EXAMPLES)).0, 0);
    // A denied connection is still a successful trace.
    assert_eq!(
        run(&args(
            &["trace", "tools/debug", "shop/db", "-p", "5432"],
            EXAMPLES
        ))
        .0,
        0
    );
    assert_eq!(run(&["--help"]).0, 0);
    assert_eq!(run(&["--version"]).0, 0);

    // Usage errors: exit 2.
    for bad in [
        &["trace", "--bogus"][..],
        &["matrix"],
        &["trace", "shop/web", "shop/api", "-f", "examples"],
        &["trace", "shop/web", "shop/api", "-p", "http", "-f", "examples"],
        &["trace", "shop/web", "shop/api", "-p", "80/ICMP", "-f", "examples"],
        &["matrix", "--family", "ipx", "-f", "examples"],
        &["explain", "pod"],
        &["frobnicate"],
    ] {
        let (code, _, stderr) = run(bad);
        assert_eq!(code, 2, "{bad:?}: {stderr}");
        assert!(!stderr.is_empty(), "{bad:?}");
    }
    insta::assert_snapshot!("usage_error", transcript(&["trace", "--bogus"]));

    // Input errors: exit 2, naming what is wrong.
    insta::assert_snapshot!(
        "input_errors",
        [
            transcript(&["matrix", "-f", "tests/fixtures/nonexistent.yaml"]),
            transcript(&args(&["trace", "shop/nope", "shop/api", "-p", "80"], EXAMPLES)),
            transcript(&args(&["trace", "shop/web", "nonsense", "-p", "80"], EXAMPLES)),
            transcript(&args(&["trace", "10.244.0.10", "fd00::1", "-p", "80"], EXAMPLES)),
            transcript(&args(
                &[
                    "trace",
                    "shop/web",
                    "app/old",
                    "-p",
                    "80",
                    "-f",
                    "tests/fixtures/tree"
                ],
                EXAMPLES
            )),
            transcript(&args(&["explain", "pod", "shop"], EXAMPLES)),
        ]
        .join("\n")
    );
}

#[test]
fn invalid_input_lists_every_error() {
    // Seven problems in three files (one of them not YAML at all), all listed, in file order.
    for command in [
        &["matrix", "-f", "tests/fixtures/invalid"][..],
        &[
            "trace",
            "shop/web",
            "shop/api",
            "-p",
            "80",
            "-f",
            "examples",
            "-f",
            "tests/fixtures/invalid",
        ],
        &[
            "explain",
            "pod",
            "shop/web",
            "-f",
            "examples",
            "-f",
            "tests/fixtures/invalid",
            "-o",
            "json",
        ],
    ] {
        let (code, stdout, stderr) = run(command);
        assert_eq!(code, 2, "{command:?}");
        assert_eq!(stdout, "", "{command:?}");
        assert!(stderr.contains("7 problem(s)"), "{command:?}: {stderr}");
    }
    insta::assert_snapshot!(
        "invalid_input",
        transcript(&["matrix", "-f", "tests/fixtures/invalid"])
    );
}

/// Two pods are traced over a family both have, whichever the destination lists first.
#[test]
fn trace_picks_a_shared_family() {
    const DUAL: &[&str] = &["-f", "tests/fixtures/dualstack.yaml"];
    let v = json(&args(
        &["trace", "lab/v4", "lab/dual", "-p", "80", "-o", "json"],
        DUAL,
    ));
    assert_eq!(v["src"]["ip"], "10.244.0.21", "{v}");
    assert_eq!(v["dst"]["ip"], "10.244.0.20", "{v}");
    let v = json(&args(
        &["trace", "lab/v6", "lab/dual", "-p", "80", "-o", "json"],
        DUAL,
    ));
    assert_eq!(v["dst"]["ip"], "fd00:10:244::20", "{v}");
    let (code, _, stderr) = run(&args(&["trace", "lab/v4", "lab/v6", "-p", "80"], DUAL));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("lab/v4 has no IPv6 address"), "{stderr}");
}
