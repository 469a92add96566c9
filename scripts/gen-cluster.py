#!/usr/bin/env python3
"""Writes a synthetic but realistic cluster as YAML manifests into a directory, for measuring the
agent (scripts/measure-agent.sh). Deterministic: the same arguments give the same files. The shape
follows compiler/benches/engine.rs (50 namespaces, 20 nodes, web/api/db tiers, named ports, 1% hostNetwork,
10% dual-stack, a default-deny per namespace, then allow rules mixing pod/namespace selectors,
ipBlocks with except, port ranges and egress named ports).

usage: gen-cluster.py DIR PODS POLICIES
"""
import os
import sys

NAMESPACES = 50
NODES = 20
TIERS = ["web", "api", "db"]
MASK = (1 << 64) - 1


class Rng:
    """SplitMix64, as in the benches."""

    def __init__(self, seed):
        self.s = seed

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n):
        return self.next() % n


def main():
    out_dir, pods, policies = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    os.makedirs(out_dir, exist_ok=True)
    rng = Rng(0x5EED)
    with open(os.path.join(out_dir, "namespaces.yaml"), "w") as f:
        for n in range(NAMESPACES):
            env = "staging" if n % 3 == 0 else "prod"
            f.write(f"---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: ns-{n}, labels: {{team: t{n % 10}, env: {env}}}}}\n")
    with open(os.path.join(out_dir, "nodes.yaml"), "w") as f:
        for n in range(NODES):
            f.write(f"---\napiVersion: v1\nkind: Node\nmetadata: {{name: node-{n}}}\nstatus: {{addresses: [{{type: InternalIP, address: 198.18.0.{n + 1}}}]}}\n")
    with open(os.path.join(out_dir, "pods.yaml"), "w") as f:
        for i in range(pods):
            ns = i % NAMESPACES
            tier = TIERS[rng.below(3)]
            app = rng.below(20)
            node = rng.below(NODES)
            ports = {
                "web": "[{name: http, containerPort: 8080}]",
                "api": "[{name: http, containerPort: 9090}, {name: metrics, containerPort: 9100}]",
            }.get(tier, "[{name: pg, containerPort: 5432}, {name: metrics, containerPort: 9187}]")
            roll = rng.below(100)
            host = roll == 0
            phase = "Failed" if roll == 1 else "Running"
            v4 = f"198.18.0.{node + 1}" if host else f"10.244.{(i // 256) % 256}.{i % 256}" if i < 65536 else f"10.{128 + i // 65536}.{(i // 256) % 256}.{i % 256}"
            ips = f"[{{ip: {v4}}}, {{ip: 'fd00:10:244::{i:x}'}}]" if (not host and roll < 10) else f"[{{ip: {v4}}}]"
            f.write(
                f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: ns-{ns}, labels: {{app: app{app}, tier: {tier}}}}}\n"
                f"spec: {{nodeName: node-{node}, hostNetwork: {'true' if host else 'false'}, containers: [{{name: c, image: x, ports: {ports}}}]}}\n"
                f"status: {{phase: {phase}, podIP: {v4}, podIPs: {ips}}}\n"
            )
    with open(os.path.join(out_dir, "policies.yaml"), "w") as f:
        for k in range(policies):
            ns = k % NAMESPACES
            if k < NAMESPACES:
                types = "[Ingress]" if ns % 2 == 0 else "[Ingress, Egress]"
                f.write(
                    f"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: default-deny, namespace: ns-{ns}}}\n"
                    f"spec: {{podSelector: {{}}, policyTypes: {types}}}\n"
                )
                continue
            tier = TIERS[rng.below(3)]
            from_tier = TIERS[rng.below(3)]
            app = rng.below(20)
            team = rng.below(10)
            kind = rng.below(4)
            if kind == 0:
                spec = (f"podSelector: {{matchLabels: {{tier: {tier}}}}}\n  ingress:\n  - from: [{{podSelector: {{matchLabels: {{tier: {from_tier}}}}}}}]\n"
                        "    ports: [{port: http}, {port: 5432}]")
            elif kind == 1:
                spec = (f"podSelector: {{matchLabels: {{app: app{app}}}}}\n  ingress:\n  - from: [{{namespaceSelector: {{matchLabels: {{team: t{team}}}}}, "
                        "podSelector: {matchExpressions: [{key: tier, operator: In, values: [web, api]}]}}]\n    ports: [{port: metrics}]")
            elif kind == 2:
                spec = (f"podSelector: {{matchExpressions: [{{key: tier, operator: NotIn, values: [{tier}]}}]}}\n  ingress:\n"
                        f"  - from: [{{ipBlock: {{cidr: 10.244.0.0/16, except: [10.244.{rng.below(40)}.0/24]}}}}, {{namespaceSelector: {{matchLabels: {{env: staging}}}}}}]\n"
                        "    ports: [{port: 8000, endPort: 9999}]")
            else:
                spec = (f"podSelector: {{matchLabels: {{tier: {tier}}}}}\n  policyTypes: [Egress]\n  egress:\n"
                        f"  - to: [{{namespaceSelector: {{matchLabels: {{kubernetes.io/metadata.name: ns-{rng.below(NAMESPACES)}}}}}}}]\n"
                        f"    ports: [{{port: 53, protocol: UDP}}, {{port: http}}]\n  - to: [{{podSelector: {{matchLabels: {{tier: {from_tier}}}}}}}]")
            f.write(f"---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: allow-{k}, namespace: ns-{ns}}}\nspec:\n  {spec}\n")


if __name__ == "__main__":
    main()
