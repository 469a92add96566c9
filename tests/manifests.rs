//! The install manifests against the real code: every file parses into its k8s-openapi type with
//! no unknown field, the kustomizations list exactly the files present, the ClusterRole grants
//! exactly what the agent's watchers use, and each DaemonSet's command line is accepted by the real
//! `policyc` parser with probes and ports on the address it then serves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use clap::Parser;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Container, Namespace, PodSpec, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use policyc::agent::{rbac_rules, Args, HEALTHZ_PATH, METRICS_PATH, READYZ_PATH};
use policyc::cli::{Cli, Command};
use serde::de::DeserializeOwned;
use serde::Serialize;

fn manifests() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("manifests")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses `path` as `T` and checks that nothing was lost on the way: a misspelt or misplaced field
/// (which the API server would reject or silently drop) makes the round trip differ.
fn parse<T: DeserializeOwned + Serialize>(path: &Path) -> T {
    let text = read(path);
    let obj: T = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let raw: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    let back = serde_json::to_value(&obj).unwrap();
    assert_eq!(
        back,
        raw,
        "{}: fields lost or changed when read as {}",
        path.display(),
        std::any::type_name::<T>()
    );
    obj
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Kustomization {
    #[serde(rename = "apiVersion")]
    _api_version: String,
    kind: String,
    namespace: String,
    resources: Vec<String>,
    images: Vec<Image>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    name: String,
    #[serde(rename = "newTag")]
    new_tag: String,
}

/// A kustomize base: its kustomization and the resource files it lists, which must be exactly the
/// `*.yaml` files beside it.
fn base(dir: &Path) -> (Kustomization, BTreeMap<String, String>) {
    let k: Kustomization = serde_yaml::from_str(&read(&dir.join("kustomization.yaml"))).unwrap();
    assert_eq!(k.kind, "Kustomization");
    let present: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|n| n != "kustomization.yaml")
        .collect();
    let listed: BTreeSet<String> = k.resources.iter().cloned().collect();
    assert_eq!(
        listed.len(),
        k.resources.len(),
        "{}: duplicate resources",
        dir.display()
    );
    assert_eq!(
        listed,
        present,
        "{}: kustomization vs files present",
        dir.display()
    );
    let kinds = present
        .iter()
        .map(|f| {
            let v: serde_yaml::Value = serde_yaml::from_str(&read(&dir.join(f))).unwrap();
            let kind = v["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("{f}: no kind"))
                .to_string();
            (f.clone(), kind)
        })
        .collect();
    (k, kinds)
}

/// The one file of `kind` in the base.
fn file_of<'a>(kinds: &'a BTreeMap<String, String>, kind: &str) -> &'a str {
    let files: Vec<&String> = kinds.iter().filter(|(_, k)| *k == kind).map(|(f, _)| f).collect();
    assert_eq!(files.len(), 1, "expected one {kind}, got {files:?}");
    files[0]
}

#[test]
fn the_base_parses_and_lists_exactly_its_files() {
    let dir = manifests();
    let (k, kinds) = base(&dir);
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    for (file, kind) in &kinds {
        let path = dir.join(file);
        match kind.as_str() {
            "Namespace" => drop(parse::<Namespace>(&path)),
            "ServiceAccount" => drop(parse::<ServiceAccount>(&path)),
            "ClusterRole" => drop(parse::<ClusterRole>(&path)),
            "ClusterRoleBinding" => drop(parse::<ClusterRoleBinding>(&path)),
            "DaemonSet" => drop(parse::<DaemonSet>(&path)),
            other => panic!("{file}: unexpected kind {other}"),
        }
        seen.insert(kind);
    }
    assert_eq!(
        seen,
        BTreeSet::from([
            "Namespace",
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "DaemonSet"
        ])
    );
    let ns: Namespace = parse(&dir.join(file_of(&kinds, "Namespace")));
    assert_eq!(ns.metadata.name.as_deref(), Some(k.namespace.as_str()));
    let sa: ServiceAccount = parse(&dir.join(file_of(&kinds, "ServiceAccount")));
    assert_eq!(sa.metadata.namespace.as_deref(), Some(k.namespace.as_str()));
}

#[test]
fn the_cluster_role_grants_exactly_what_the_agent_watches() {
    let dir = manifests();
    let (k, kinds) = base(&dir);
    let role: ClusterRole = parse(&dir.join(file_of(&kinds, "ClusterRole")));
    let mut granted = BTreeSet::new();
    for rule in role.rules.as_deref().unwrap_or_default() {
        assert!(
            rule.resource_names.is_none() && rule.non_resource_urls.is_none(),
            "{rule:?}"
        );
        for g in rule.api_groups.as_deref().unwrap_or_default() {
            for r in rule.resources.as_deref().unwrap_or_default() {
                for v in &rule.verbs {
                    assert!(
                        !g.contains('*') && !r.contains('*') && !v.contains('*'),
                        "{rule:?}"
                    );
                    granted.insert((g.clone(), r.clone(), v.clone()));
                }
            }
        }
    }
    let needed: BTreeSet<(String, String, String)> = rbac_rules()
        .into_iter()
        .flat_map(|(g, r, verbs)| {
            verbs
                .into_iter()
                .map(move |v| (g.clone(), r.clone(), v.to_string()))
        })
        .collect();
    // The agent really reads these four kinds (nodes for their addresses); a regression in
    // rbac_rules() itself should not pass unnoticed.
    let resources: BTreeSet<&str> = needed.iter().map(|(_, r, _)| r.as_str()).collect();
    assert_eq!(
        resources,
        BTreeSet::from(["namespaces", "networkpolicies", "nodes", "pods"])
    );
    assert_eq!(granted, needed, "ClusterRole vs policyc::agent::rbac_rules()");

    let binding: ClusterRoleBinding = parse(&dir.join(file_of(&kinds, "ClusterRoleBinding")));
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(binding.role_ref.api_group, "rbac.authorization.k8s.io");
    assert_eq!(Some(&binding.role_ref.name), role.metadata.name.as_ref());
    let sa: ServiceAccount = parse(&dir.join(file_of(&kinds, "ServiceAccount")));
    let subjects = binding.subjects.unwrap_or_default();
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0].kind, "ServiceAccount");
    assert_eq!(Some(&subjects[0].name), sa.metadata.name.as_ref());
    assert_eq!(subjects[0].namespace.as_deref(), Some(k.namespace.as_str()));

    let ds: DaemonSet = parse(&dir.join(file_of(&kinds, "DaemonSet")));
    let spec = pod_spec(&ds);
    assert_eq!(spec.service_account_name, sa.metadata.name);
}

/// The image's ENTRYPOINT and CMD (exec form), and the path the binary is copied to.
struct ImageConfig {
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    binary: String,
}

fn dockerfile() -> ImageConfig {
    let text = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile"));
    // Only the final stage counts.
    let last = text.rsplit("\nFROM ").next().unwrap();
    let exec_form = |word: &str| -> Vec<String> {
        let line = last
            .lines()
            .find_map(|l| l.strip_prefix(word))
            .unwrap_or_else(|| panic!("Dockerfile: no {word} in the final stage"));
        serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{word} is not exec form: {e}"))
    };
    let binary = last
        .lines()
        .filter_map(|l| l.strip_prefix("COPY --from="))
        .find_map(|l| l.split_whitespace().last().filter(|p| p.ends_with("/policyc")))
        .expect("Dockerfile: the final stage copies a policyc binary")
        .to_string();
    ImageConfig {
        entrypoint: exec_form("ENTRYPOINT "),
        cmd: exec_form("CMD "),
        binary,
    }
}

/// What the container runs, by Kubernetes' rules: `command` replaces ENTRYPOINT (and drops CMD),
/// `args` replace CMD.
fn argv(c: &Container, image: &ImageConfig) -> Vec<String> {
    let mut argv = c.command.clone().unwrap_or_else(|| image.entrypoint.clone());
    match (&c.command, &c.args) {
        (_, Some(args)) => argv.extend(args.iter().cloned()),
        (None, None) => argv.extend(image.cmd.iter().cloned()),
        (Some(_), None) => {}
    }
    argv
}

fn pod_spec(ds: &DaemonSet) -> &PodSpec {
    ds.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("a pod template")
}

// clap reads NODE_NAME from the process environment: one parse at a time.
static ENV: Mutex<()> = Mutex::new(());

/// Parses the container's command line with the real CLI, its `env` set as the kubelet would
/// (a fieldRef to spec.nodeName yields `node_name`).
fn parse_agent(c: &Container, image: &ImageConfig, node_name: &str) -> Args {
    let argv = argv(c, image);
    assert_eq!(
        argv[0], image.binary,
        "{}: runs the binary the image holds",
        c.name
    );
    let _guard = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let mut set = Vec::new();
    for e in c.env.as_deref().unwrap_or_default() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), None) => v.clone(),
            (None, Some(from)) => {
                let field = from.field_ref.as_ref().expect("only fieldRefs are used");
                assert_eq!(field.field_path, "spec.nodeName", "{}", e.name);
                node_name.to_string()
            }
            other => panic!("{}: {other:?}", e.name),
        };
        std::env::set_var(&e.name, value);
        set.push(e.name.clone());
    }
    let parsed = Cli::try_parse_from(&argv);
    for name in set {
        std::env::remove_var(name);
    }
    match parsed {
        Ok(Cli {
            command: Command::Agent(args),
        }) => args,
        Ok(other) => panic!("{}: {argv:?} is not `policyc agent`: {other:?}", c.name),
        Err(e) => panic!("{}: {argv:?} rejected by policyc: {e}", c.name),
    }
}

/// The securityContext the issue asks for, adding exactly `caps`.
fn check_security(c: &Container, caps: &[&str]) {
    let sc = c
        .security_context
        .as_ref()
        .unwrap_or_else(|| panic!("{}: no securityContext", c.name));
    assert_ne!(sc.privileged, Some(true), "{}", c.name);
    assert_eq!(sc.allow_privilege_escalation, Some(false), "{}", c.name);
    assert_eq!(sc.read_only_root_filesystem, Some(true), "{}", c.name);
    let cap = sc.capabilities.as_ref().expect("capabilities");
    assert_eq!(cap.drop.as_deref(), Some(&["ALL".to_string()][..]), "{}", c.name);
    let added: Vec<&str> = cap.add.iter().flatten().map(String::as_str).collect();
    assert_eq!(added, caps, "{}", c.name);
}

/// Placement shared by both DaemonSets: host network, every node, node-critical.
fn check_placement(ds: &DaemonSet) {
    let spec = pod_spec(ds);
    assert_eq!(spec.host_network, Some(true));
    assert_eq!(spec.priority_class_name.as_deref(), Some("system-node-critical"));
    // A toleration with operator Exists and no key and no effect matches every taint.
    assert!(
        spec.tolerations
            .iter()
            .flatten()
            .any(|t| t.operator.as_deref() == Some("Exists") && t.key.is_none() && t.effect.is_none()),
        "tolerations do not cover every taint: {:?}",
        spec.tolerations
    );
    assert!(
        spec.node_selector.is_none() && spec.affinity.is_none(),
        "must run on every node"
    );
    let labels = ds
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .as_ref();
    let selector = ds.spec.as_ref().unwrap().selector.match_labels.as_ref().unwrap();
    for (k, v) in selector {
        assert_eq!(labels.and_then(|l| l.get(k)), Some(v), "selector label {k}");
    }
}

/// The port a probe or annotation names, resolved against the container's ports.
fn port_number(c: &Container, port: &IntOrString) -> i32 {
    match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => {
            c.ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .unwrap_or_else(|| panic!("{}: no port named {name}", c.name))
                .container_port
        }
    }
}

#[test]
fn the_agent_daemonset_runs_what_the_agent_accepts() {
    let dir = manifests();
    let (k, kinds) = base(&dir);
    let ds: DaemonSet = parse(&dir.join(file_of(&kinds, "DaemonSet")));
    let image = dockerfile();
    check_placement(&ds);
    let spec = pod_spec(&ds);
    assert!(spec.init_containers.is_none());
    assert_eq!(spec.containers.len(), 1);
    let c = &spec.containers[0];
    assert!(
        k.images
            .iter()
            .any(|i| c.image.as_deref() == Some(i.name.as_str())),
        "the kustomization sets the agent's image"
    );

    // NODE_NAME comes from the downward API and is how the agent learns its node.
    let env = c.env.as_deref().unwrap_or_default();
    let node_env = env.iter().find(|e| e.name == "NODE_NAME").expect("NODE_NAME");
    let field = node_env.value_from.as_ref().and_then(|f| f.field_ref.as_ref());
    assert_eq!(field.map(|f| f.field_path.as_str()), Some("spec.nodeName"));
    let args = parse_agent(c, &image, "node-7");
    assert_eq!(args.node_name.as_deref(), Some("node-7"));
    assert!(!args.cleanup);
    assert!(args.manifests.is_none(), "the agent must watch the API");
    assert!(args.kubeconfig.is_none(), "in-cluster config");
    assert_eq!(
        args.nft,
        Path::new("nft"),
        "nft from PATH, as installed in the image"
    );

    // The probes reach what the parsed --listen serves, from the kubelet on the node's address.
    assert!(
        args.listen.ip().is_unspecified(),
        "{}: the kubelet probes the node's IP",
        args.listen
    );
    let port = i32::from(args.listen.port());
    let declared: Vec<i32> = c.ports.iter().flatten().map(|p| p.container_port).collect();
    assert_eq!(declared, [port], "the declared port is the one served");
    let p = &c.ports.as_ref().unwrap()[0];
    assert_eq!(p.protocol.as_deref().unwrap_or("TCP"), "TCP");
    // With hostNetwork, a hostPort must equal the containerPort.
    assert!(p.host_port.is_none() || p.host_port == Some(port));
    for (probe, path) in [
        (c.liveness_probe.as_ref(), HEALTHZ_PATH),
        (c.readiness_probe.as_ref(), READYZ_PATH),
    ] {
        let http = probe
            .and_then(|p| p.http_get.as_ref())
            .unwrap_or_else(|| panic!("{path} probe"));
        assert_eq!(http.path.as_deref(), Some(path));
        assert_eq!(port_number(c, &http.port), port, "{path} probe port");
        assert!(http.host.is_none(), "{path}: probe the pod (= node) IP");
    }
    // Declared for scraping.
    let ann = ds
        .spec
        .as_ref()
        .unwrap()
        .template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap();
    assert_eq!(ann.get("prometheus.io/scrape").map(String::as_str), Some("true"));
    assert_eq!(ann.get("prometheus.io/port"), Some(&port.to_string()));
    assert_eq!(
        ann.get("prometheus.io/path").map(String::as_str),
        Some(METRICS_PATH)
    );
    assert_eq!(p.name.as_deref(), Some("metrics"));

    check_security(c, &["NET_ADMIN"]);
    let res = c.resources.as_ref().expect("resources");
    for key in ["cpu", "memory"] {
        assert!(
            res.requests.as_ref().is_some_and(|r| r.contains_key(key)),
            "request {key}"
        );
    }
    assert!(
        res.limits.as_ref().is_some_and(|l| l.contains_key("memory")),
        "memory limit"
    );

    // One node at a time, and the next only once this one is Ready (= its first apply is done).
    let strategy = ds.spec.as_ref().unwrap().update_strategy.as_ref().unwrap();
    assert_eq!(strategy.type_.as_deref(), Some("RollingUpdate"));
    let ru = strategy.rolling_update.as_ref().unwrap();
    assert_eq!(ru.max_unavailable, Some(IntOrString::Int(1)));
    assert!(ru.max_surge.is_none() || ru.max_surge == Some(IntOrString::Int(0)));
}

#[test]
fn the_cleanup_daemonset_deletes_the_table_on_every_node() {
    let dir = manifests().join("cleanup");
    let (k, kinds) = base(&dir);
    assert_eq!(kinds.values().collect::<Vec<_>>(), ["DaemonSet"]);
    let ds: DaemonSet = parse(&dir.join(file_of(&kinds, "DaemonSet")));
    let (main_k, _) = base(&manifests());
    assert_eq!(k.namespace, main_k.namespace);
    let image = dockerfile();
    check_placement(&ds);
    let spec = pod_spec(&ds);
    assert_eq!(
        spec.automount_service_account_token,
        Some(false),
        "needs no API access"
    );
    let init = spec.init_containers.as_deref().unwrap_or_default();
    assert_eq!(init.len(), 1);
    let c = &init[0];
    assert!(k
        .images
        .iter()
        .any(|i| c.image.as_deref() == Some(i.name.as_str())));
    let args = parse_agent(c, &image, "node-7");
    assert!(args.cleanup, "runs --cleanup");
    let agent_ds: DaemonSet = {
        let (_, kinds) = base(&manifests());
        parse(&manifests().join(file_of(&kinds, "DaemonSet")))
    };
    let agent = parse_agent(&pod_spec(&agent_ds).containers[0], &image, "node-7");
    assert_eq!(args.table, agent.table, "deletes the table the agent owns");
    check_security(c, &["NET_ADMIN"]);
    // Then it idles, so `rollout status` shows when every node is done.
    assert_eq!(spec.containers.len(), 1);
    let pause = &spec.containers[0];
    assert!(
        pause.image.as_deref().is_some_and(|i| i.contains("/pause:")),
        "{:?}",
        pause.image
    );
    check_security(pause, &[]);
}

#[test]
fn the_image_holds_nft_and_runs_the_agent_by_default() {
    let image = dockerfile();
    assert_eq!(image.entrypoint, std::slice::from_ref(&image.binary));
    assert_eq!(image.cmd, ["agent"]);
    let text = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile"));
    let last = text.rsplit("\nFROM ").next().unwrap();
    assert!(
        last.contains("apt-get install -y --no-install-recommends nftables"),
        "the runtime stage installs the nft binary"
    );
    // What the image runs with no arguments parses as the agent (NODE_NAME from the DaemonSet).
    let c = Container {
        name: "default".into(),
        env: Some(vec![k8s_openapi::api::core::v1::EnvVar {
            name: "NODE_NAME".into(),
            value: Some("node-1".into()),
            value_from: None,
        }]),
        ..Container::default()
    };
    assert_eq!(
        parse_agent(&c, &image, "unused").node_name.as_deref(),
        Some("node-1")
    );
}

/// Runs `policyc agent --cleanup` with the default `--nft` and only `path_dir` on PATH, as the
/// image does with /usr/sbin/nft.
fn cleanup_with_path(path_dir: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_policyc"))
        .args(["agent", "--cleanup"])
        .env("PATH", path_dir)
        .env_remove("NODE_NAME")
        .output()
        .expect("run policyc")
}

#[test]
fn the_agent_needs_nft_on_path_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = cleanup_with_path(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("\"nft\" not found: install nftables"), "{stderr}");

    // With an nft on PATH (a stand-in that accepts any transaction), the same command succeeds:
    // PATH lookup is all the image has to provide.
    use std::os::unix::fs::PermissionsExt;
    let fake = dir.path().join("nft");
    std::fs::write(
        &fake,
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'nftables v1.0.6'; exit 0; fi\nwhile read -r _; do :; done\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = cleanup_with_path(dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// `kubectl kustomize DIR` (kustomize built into kubectl).
fn kustomize(dir: &Path) -> Vec<serde_yaml::Value> {
    let out = std::process::Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run kubectl: {e}"));
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

/// What kustomize must produce from a base: its files, with the namespace set and `image: policyc`
/// given the kustomization's tag, and nothing else changed.
fn check_build(dir: &Path) {
    let built = kustomize(dir);
    let (k, kinds) = base(dir);
    assert_eq!(built.len(), kinds.len(), "{}: one object per file", dir.display());
    let tag = &k.images[0].new_tag;
    for (file, kind) in &kinds {
        let mut want: serde_yaml::Value = serde_yaml::from_str(&read(&dir.join(file))).unwrap();
        let name = want["metadata"]["name"].clone();
        let got = built
            .iter()
            .find(|o| o["kind"].as_str() == Some(kind) && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{file}: {kind} {name:?} not in the kustomize output"));
        if kind == "DaemonSet" {
            let spec = &mut want["spec"]["template"]["spec"];
            for list in ["containers", "initContainers"] {
                let containers = spec.get_mut(list).and_then(|l| l.as_sequence_mut());
                for c in containers.into_iter().flatten() {
                    if c["image"].as_str() == Some(k.images[0].name.as_str()) {
                        c["image"] = format!("{}:{tag}", k.images[0].name).into();
                    }
                }
            }
        }
        let want: serde_json::Value = serde_json::to_value(&want).unwrap();
        let got: serde_json::Value = serde_json::to_value(got).unwrap();
        assert_eq!(
            got, want,
            "{file}: kustomize changed more than image and namespace"
        );
    }
}

/// Needs kubectl, which no Debian package provides for `.ci/run` to install, so it is opt-in
/// (`cargo test --test manifests -- --ignored`) rather than a skip; the tests above cover the
/// kustomizations' file lists without it.
#[test]
#[ignore = "needs kubectl (not packaged in Debian): run with --ignored where kubectl exists"]
fn kustomize_builds_both_bases() {
    check_build(&manifests());
    check_build(&manifests().join("cleanup"));
}

/// Every container of every DaemonSet in every base (agent and cleanup, init containers too).
fn all_daemonsets() -> Vec<(String, DaemonSet)> {
    let mut out = Vec::new();
    for dir in [manifests(), manifests().join("cleanup")] {
        let (_, kinds) = base(&dir);
        for (file, kind) in &kinds {
            if kind == "DaemonSet" {
                out.push((file.clone(), parse::<DaemonSet>(&dir.join(file))));
            }
        }
    }
    out
}

/// Least privilege, checked independently of what the code asks for (so a change to the code and
/// the manifests together cannot widen it unnoticed): the ClusterRole only reads; no container is
/// privileged, escalates, writes its root file system or adds a capability beyond NET_ADMIN (and
/// NET_RAW); none shares the host's PID or IPC namespace.
#[test]
fn the_manifests_keep_least_privilege() {
    let dir = manifests();
    let (_, kinds) = base(&dir);
    let role: ClusterRole = parse(&dir.join(file_of(&kinds, "ClusterRole")));
    let rules = role.rules.as_deref().unwrap_or_default();
    assert!(!rules.is_empty());
    for rule in rules {
        for v in &rule.verbs {
            assert!(
                ["get", "list", "watch"].contains(&v.as_str()),
                "ClusterRole grants {v:?}: only get/list/watch are allowed ({rule:?})"
            );
        }
        for r in rule.resources.iter().flatten() {
            assert!(
                !r.contains('*') && !r.contains('/') && r != "secrets",
                "ClusterRole reaches {r:?}"
            );
        }
    }
    let daemonsets = all_daemonsets();
    assert_eq!(daemonsets.len(), 2, "the agent and the cleanup DaemonSet");
    for (file, ds) in &daemonsets {
        let spec = pod_spec(ds);
        assert_ne!(spec.host_pid, Some(true), "{file}: hostPID");
        assert_ne!(spec.host_ipc, Some(true), "{file}: hostIPC");
        if let Some(psc) = &spec.security_context {
            assert!(psc.sysctls.is_none(), "{file}: pod sysctls");
        }
        for v in spec.volumes.iter().flatten() {
            assert!(v.host_path.is_none(), "{file}: hostPath volume {}", v.name);
        }
        let containers = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten());
        for c in containers {
            let at = format!("{file}: container {}", c.name);
            let sc = c
                .security_context
                .as_ref()
                .unwrap_or_else(|| panic!("{at}: no securityContext"));
            assert_ne!(sc.privileged, Some(true), "{at}: privileged");
            assert_eq!(
                sc.allow_privilege_escalation,
                Some(false),
                "{at}: allowPrivilegeEscalation"
            );
            assert_eq!(
                sc.read_only_root_filesystem,
                Some(true),
                "{at}: readOnlyRootFilesystem"
            );
            assert_ne!(sc.proc_mount.as_deref(), Some("Unmasked"), "{at}: procMount");
            let caps = sc
                .capabilities
                .as_ref()
                .unwrap_or_else(|| panic!("{at}: capabilities"));
            assert_eq!(
                caps.drop.as_deref(),
                Some(&["ALL".to_string()][..]),
                "{at}: drop ALL"
            );
            for cap in caps.add.iter().flatten() {
                assert!(
                    ["NET_ADMIN", "NET_RAW"].contains(&cap.as_str()),
                    "{at}: adds capability {cap}"
                );
            }
        }
    }
}
