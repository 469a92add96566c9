//! Every lint check: its stable code, default severity, one-line description and long form.
//! Codes never change meaning once released; retired codes are not reused.

use super::Severity;

/// A check as `--explain` and SARIF's `rules[]` describe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Check {
    /// Stable kebab-case identifier (`--disable`, annotations, SARIF `ruleId`).
    pub code: &'static str,
    pub severity: Severity,
    /// Opt-in checks run only with `--enable CODE` or `--all`.
    pub default_enabled: bool,
    pub description: &'static str,
    pub explanation: &'static str,
}

const fn check(
    code: &'static str,
    severity: Severity,
    description: &'static str,
    explanation: &'static str,
) -> Check {
    Check {
        code,
        severity,
        default_enabled: true,
        description,
        explanation,
    }
}

const fn opt_in(
    code: &'static str,
    severity: Severity,
    description: &'static str,
    explanation: &'static str,
) -> Check {
    Check {
        default_enabled: false,
        ..check(code, severity, description, explanation)
    }
}

use Severity::{Error, Info, Warning};

pub const CHECKS: &[Check] = &[
    check(
        "invalid-field",
        Error,
        "A field the API server would reject.",
        "The object has a field that the Kubernetes API server rejects when it is applied \
         (an unknown protocol, a port out of range, a malformed CIDR or label selector, ...). \
         policyc fails closed on it: an invalid rule admits nothing, and a policy whose podSelector \
         is invalid isolates its whole namespace and admits nothing. Fix the field; `kubectl apply \
         --dry-run=server` shows the same error.",
    ),
    check(
        "ignored-rules",
        Warning,
        "Rules of a direction that policyTypes leaves out, which have no effect.",
        "When spec.policyTypes is given, it alone decides which directions a policy isolates. \
         Rules in spec.ingress are ignored when policyTypes lacks Ingress, and rules in spec.egress \
         are ignored when it lacks Egress. Either add the direction to policyTypes (so the pods are \
         isolated and the rules admit traffic) or delete the rules.",
    ),
    check(
        "except-outside-cidr",
        Error,
        "An ipBlock except entry that is not strictly inside its cidr.",
        "Every entry of ipBlock.except must be a strict subset of ipBlock.cidr, in the same address \
         family. The API server rejects anything else; an except that equals the cidr would leave \
         nothing to match. Move the range into the cidr, or drop it.",
    ),
    check(
        "cidr-host-bits",
        Warning,
        "A CIDR with host bits set (10.0.0.1/8), silently widened to its network.",
        "A CIDR such as 10.1.2.3/16 has bits set below its prefix. The API accepts it and every \
         implementation masks it to 10.1.0.0/16, which is rarely what the author meant: either the \
         prefix is too short (a single host was meant: /32) or the address is a typo. Write the \
         network address, or the prefix you meant.",
    ),
    check(
        "endport-misuse",
        Error,
        "endPort without port, with a named port, or below port.",
        "endPort makes a port range port..endPort. It requires a numeric port, cannot be combined \
         with a named port, and must be at least port. The API server rejects the other forms; \
         policyc treats such a rule as invalid (it admits nothing).",
    ),
    check(
        "redundant-endport",
        Info,
        "endPort equal to port, a range of one.",
        "endPort equal to port describes a single port. It works, but suggests a typo in one of the \
         two numbers; remove endPort or fix the range.",
    ),
    check(
        "empty-peer",
        Error,
        "A from/to entry that sets none of podSelector, namespaceSelector, ipBlock.",
        "Each entry of from or to must set at least one of podSelector, namespaceSelector or \
         ipBlock; the API server rejects an empty entry `{}`. To admit every source or destination, \
         omit from/to entirely; to admit every pod of every namespace, use \
         `namespaceSelector: {}`.",
    ),
    check(
        "conflicting-peer",
        Error,
        "A peer that combines ipBlock with podSelector or namespaceSelector.",
        "ipBlock cannot be combined with podSelector or namespaceSelector in one peer, and the API \
         server rejects it. If either kind of peer should be admitted, write them as two entries \
         (`- ipBlock: ...` and `- podSelector: ...`).",
    ),
    check(
        "unsatisfiable-selector",
        Warning,
        "A label selector whose requirements contradict each other, so it matches nothing.",
        "The requirements of a label selector are ANDed. Some combinations can never hold: a key \
         that must exist and must not exist, In sets with no value in common, or an In value that a \
         NotIn excludes. Such a selector matches no object, so the policy selects no pod or the \
         peer admits nothing. Usually one requirement belongs in another selector or peer.",
    ),
    check(
        "selects-no-pods",
        Warning,
        "A policy whose podSelector matches no pod in its namespace.",
        "The policy's spec.podSelector matches no pod of its namespace in the input, so the policy \
         has no effect. Check the labels (a typo, or labels on the Deployment rather than on its pod \
         template) and the namespace. Only reported when the input contains pods.",
    ),
    check(
        "peer-matches-nothing",
        Warning,
        "A podSelector/namespaceSelector peer that matches no pod in the input.",
        "A peer of an ingress or egress rule matches no pod (or its namespaceSelector matches no \
         namespace) in the input, so that peer admits nothing. Check the labels and remember that \
         a podSelector without namespaceSelector means the policy's own namespace. Only reported \
         when the input contains pods (and, for namespace selectors, Namespace objects).",
    ),
    check(
        "named-port-undefined",
        Warning,
        "A named port that no pod it could resolve on defines.",
        "A named port in a rule is resolved against the destination pod's container ports: for \
         ingress rules the pods the policy selects, for egress rules the peers. When none of them \
         defines a container port of that name, the port entry matches nothing. Check the name \
         against spec.containers[].ports[].name, or use the number.",
    ),
    check(
        "named-port-wrong-protocol",
        Warning,
        "A named port defined by the pods, but only with another protocol.",
        "A named port matches a container port with the same name AND protocol. The pods define the \
         name, but with a different protocol than the rule's (which defaults to TCP), so the entry \
         matches nothing. Set protocol on the rule's port to the container port's protocol.",
    ),
    check(
        "named-port-ipblock",
        Warning,
        "A named port in an egress rule whose peers are all ipBlocks.",
        "Named ports resolve on the destination pod. An egress rule whose only peers are ipBlocks \
         mostly targets addresses outside the cluster, which have no container ports, so a named \
         port there matches nothing (or only pods inside the block, depending on the network \
         plugin). Use the port number.",
    ),
    check(
        "egress-blocks-dns",
        Warning,
        "Egress isolation with no rule allowing DNS (53/UDP) to kube-system/kube-dns.",
        "Once a pod is isolated for egress, everything it sends must be admitted by an egress rule, \
         including DNS lookups. No egress rule of the policies selecting these pods admits 53/UDP \
         towards kube-dns (pods labelled k8s-app=kube-dns in kube-system) or anywhere, so name \
         resolution fails and the pods usually cannot reach anything by name. Add a rule such as \
         `to: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: kube-system}}, \
         podSelector: {matchLabels: {k8s-app: kube-dns}}}]` with ports 53/UDP and 53/TCP.",
    ),
    check(
        "and-or-slip",
        Warning,
        "A namespaceSelector and a podSelector written as two peers where one was likely meant.",
        "In from/to, separate list entries are ORed and selectors inside one entry are ANDed. \
         `- namespaceSelector: A` followed by `- podSelector: B` admits every pod of the namespaces \
         A, plus pods B of the policy's own namespace. If pods B in namespaces A were meant, remove \
         the dash before podSelector so both selectors are in one entry.",
    ),
    check(
        "ipblock-covers-pods",
        Info,
        "An ipBlock that covers pod addresses; how it applies to pods depends on the CNI.",
        "ipBlock is meant for addresses outside the cluster. Whether an ipBlock also matches traffic \
         to or from pods whose IPs fall inside it is left to the implementation (policyc matches it; \
         some plugins see the traffic after SNAT/DNAT, some not), and pod IPs change on every \
         restart. Select pods with podSelector/namespaceSelector, and exclude the pod CIDR with \
         except.",
    ),
    check(
        "host-network-selected",
        Warning,
        "A policy that selects hostNetwork pods, which NetworkPolicy never isolates.",
        "Pods with hostNetwork: true share their node's network namespace. NetworkPolicy does not \
         apply to them: they are never isolated, and pod selectors in peers do not match them (only \
         ipBlocks with the node's addresses do). The policy has no effect on these pods.",
    ),
    check(
        "duplicate-policy",
        Error,
        "The same NetworkPolicy namespace/name defined more than once in the input.",
        "Two objects with the same kind, namespace and name cannot both exist: applying the files \
         leaves whichever is applied last, so the result depends on file order. policyc keeps the \
         first. Rename one or merge them.",
    ),
    check(
        "shadowed-rule",
        Info,
        "A rule that admits nothing beyond what another rule already admits.",
        "Every connection this rule admits is also admitted by another rule of the same policy (or \
         of a policy with the same podSelector), so it can be removed without changing behaviour. \
         Often the other rule is broader than intended.",
    ),
    check(
        "one-sided-rule",
        Warning,
        "A rule allowing traffic that the other side's isolation never admits.",
        "A connection needs both the source pod's egress and the destination pod's ingress to allow \
         it. This rule allows traffic towards (or from) pods that are isolated in the other \
         direction by policies none of whose rules admit any pod this policy selects, so the \
         connection stays denied. Add the matching rule on the other side, or remove this one.",
    ),
    check(
        "allow-all-rule",
        Info,
        "A rule with no peers and no ports, which admits all traffic in its direction.",
        "A rule without from/to (or with an empty list) and without ports admits every peer on \
         every port, so the policy isolates nothing in that direction. That is right for an \
         explicit allow-all; `from: []` written to mean \"nothing\" is a common mistake (deny \
         needs no rule at all: `ingress: []` or omitting ingress with policyTypes: [Ingress]).",
    ),
    check(
        "missing-namespace",
        Info,
        "A NetworkPolicy without metadata.namespace.",
        "Without metadata.namespace the policy lands in whatever namespace kubectl targets when it \
         is applied (the context's namespace, or -n), and its podSelector and its peers' \
         podSelectors refer to that namespace. policyc assumes `default`. Set the namespace \
         explicitly.",
    ),
    opt_in(
        "unisolated-pod",
        Info,
        "A pod that no policy isolates for ingress.",
        "No NetworkPolicy selects this pod for ingress, so every pod and every address can connect \
         to it on every port. Enable with --enable unisolated-pod (or --all) to audit coverage.",
    ),
    opt_in(
        "namespace-without-default-deny",
        Info,
        "A namespace without a default-deny ingress policy.",
        "The namespace has pods but no policy that selects all of them (podSelector: {}) for \
         ingress without admitting anything, so new pods are open until someone writes a policy \
         for them. Add `podSelector: {}` with `policyTypes: [Ingress]` and no rules. Enable with \
         --enable namespace-without-default-deny (or --all).",
    ),
];

/// The check with this code, if there is one.
pub fn find(code: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|c| c.code == code)
}
