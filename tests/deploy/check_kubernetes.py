"""Validate deploy/kubernetes offline: render the base and every overlay with
kustomize (`kubectl kustomize`), validate every built-in resource against the
Kubernetes OpenAPI schemas shipped in PyPI `kubernetes-validate` (strict: an
unknown field fails), check the Prometheus Operator resources (ServiceMonitor
points at the Service's port, PrometheusRule holds rule groups) and write the
PrometheusRule's groups to OUT_DIR/rules-<name>.yml for `promtool check rules`.

    python check_kubernetes.py REPO_ROOT OUT_DIR

Run by tests/deploy.rs with the venv that scripts/install-test-deps.sh makes.
"""
import os
import subprocess
import sys

import kubernetes_validate
import yaml

K8S_VERSION = "1.30.0"  # oldest supported minor the manifests must work on
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}


def fail(msg):
    print(f"check_kubernetes: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def render(kubectl, path):
    out = subprocess.run([kubectl, "kustomize", path], capture_output=True, text=True)
    if out.returncode != 0:
        fail(f"kustomize {path}: {out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def check_pod_spec(where, spec):
    pod = spec["template"]["spec"]
    sc = pod.get("securityContext", {})
    if sc.get("runAsNonRoot") is not True:
        fail(f"{where}: pod securityContext.runAsNonRoot is not true")
    if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        fail(f"{where}: seccompProfile is not RuntimeDefault")
    for c in pod["containers"]:
        csc = c.get("securityContext", {})
        if csc.get("readOnlyRootFilesystem") is not True:
            fail(f"{where}/{c['name']}: readOnlyRootFilesystem is not true")
        if csc.get("allowPrivilegeEscalation") is not False:
            fail(f"{where}/{c['name']}: allowPrivilegeEscalation is not false")
        if csc.get("capabilities", {}).get("drop") != ["ALL"]:
            fail(f"{where}/{c['name']}: capabilities are not all dropped")
        if "requests" not in c.get("resources", {}) or "limits" not in c["resources"]:
            fail(f"{where}/{c['name']}: no resource requests and limits")
        if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/-/healthy":
            fail(f"{where}/{c['name']}: liveness probe is not /-/healthy")
        if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/-/ready":
            fail(f"{where}/{c['name']}: readiness probe is not /-/ready")
    return pod


def main():
    root, out_dir = sys.argv[1], sys.argv[2]
    kubectl = os.path.join(os.path.dirname(sys.executable), "kubectl")
    kdir = os.path.join(root, "deploy", "kubernetes")
    trees = ["base"] + [
        os.path.join("overlays", o) for o in sorted(os.listdir(os.path.join(kdir, "overlays")))
    ]
    checked = 0
    for tree in trees:
        docs = render(kubectl, os.path.join(kdir, tree))
        kinds = {d["kind"] for d in docs}
        for d in docs:
            where = f"{tree}: {d['kind']}/{d['metadata']['name']}"
            if d["kind"] in CRD_KINDS:
                continue
            try:
                kubernetes_validate.validate(d, K8S_VERSION, strict=True)
            except kubernetes_validate.ValidationError as e:
                fail(f"{where}: {e.message} at {list(e.path)}")
            checked += 1
        workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
        if len(workloads) != 1:
            fail(f"{tree}: expected one Deployment or StatefulSet, found {len(workloads)}")
        w = workloads[0]
        pod = check_pod_spec(f"{tree}: {w['kind']}", w["spec"])
        args = pod["containers"][0].get("args", [])
        if w["kind"] == "StatefulSet" and not any(a.startswith("--tenants.shard=") for a in args):
            fail(f"{tree}: the StatefulSet does not pass --tenants.shard")
        # The ServiceMonitor scrapes a named port of a Service that selects the pods.
        if not {"Service", "ServiceMonitor", "PrometheusRule"} <= kinds:
            fail(f"{tree}: missing Service, ServiceMonitor or PrometheusRule: {sorted(kinds)}")
        sm = next(d for d in docs if d["kind"] == "ServiceMonitor")
        sel = sm["spec"]["selector"]["matchLabels"]
        svcs = [d for d in docs if d["kind"] == "Service"
                and sel.items() <= d["metadata"].get("labels", {}).items()]
        if not svcs:
            fail(f"{tree}: no Service carries the ServiceMonitor's labels {sel}")
        for ep in sm["spec"]["endpoints"]:
            for svc in svcs:
                if ep["port"] not in [p.get("name") for p in svc["spec"]["ports"]]:
                    fail(f"{tree}: Service {svc['metadata']['name']} has no port {ep['port']!r}")
        labels = w["spec"]["template"]["metadata"]["labels"]
        for svc in svcs:
            if not svc["spec"]["selector"].items() <= labels.items():
                fail(f"{tree}: Service {svc['metadata']['name']} does not select the pods")
        rule = next(d for d in docs if d["kind"] == "PrometheusRule")
        groups = rule["spec"]["groups"]
        if not groups or not all(g.get("rules") for g in groups):
            fail(f"{tree}: PrometheusRule without rule groups")
        name = tree.replace(os.sep, "-")
        with open(os.path.join(out_dir, f"rules-{name}.yml"), "w") as f:
            yaml.safe_dump({"groups": groups}, f, sort_keys=False)
        print(f"check_kubernetes: {tree}: {len(docs)} resources, {sorted(kinds)}")
    secret = os.path.join(kdir, "secret.example.yaml")
    with open(secret) as f:
        for d in yaml.safe_load_all(f):
            kubernetes_validate.validate(d, K8S_VERSION, strict=True)
            checked += 1
    print(f"check_kubernetes: {checked} built-in resources valid against Kubernetes {K8S_VERSION}")


if __name__ == "__main__":
    main()
