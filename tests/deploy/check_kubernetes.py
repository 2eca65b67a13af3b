"""Validate deploy/kubernetes offline, as rendered: render the base and every
overlay with kustomize (`kubectl kustomize`), validate every built-in resource
against the Kubernetes OpenAPI schemas shipped in PyPI `kubernetes-validate`
(strict: an unknown field fails), keep the pod hardening, check the wiring
between the rendered objects, and write each PrometheusRule's groups to
OUT_DIR/rules-<name>.yml for `promtool check rules`.

The wiring is what schema validation cannot see, because each object is valid
on its own:
  - every namespaced object lands in the namespace of the Secret the docs
    have you create (secret.example.yaml), none in "the current one";
  - every ConfigMap and Secret a pod references exists under its rendered
    name (a generated ConfigMap carries a hash suffix), counting the
    credentials Secret of secret.example.yaml, which is applied beside;
  - the files the config names (--config.file, client_secret_file, ...) are
    keys of the mounted ConfigMap or Secret, the audit state on a writable
    volume;
  - each ServiceMonitor matches exactly one Service per pod and port, so
    every pod is scraped once (twice doubles every `sum by (tenant)`);
  - every container runs the image set in components/image, and an
    operator's own `images:` reaches every container;
  - the sharded StatefulSet passes --tenants.shard=$(SHARD)/$(SHARDS) with
    SHARDS equal to its replicas, and its pod is the base pod otherwise;
  - with the kube-prometheus-stack component, the ServiceMonitor and the
    PrometheusRule carry the `release` label its Prometheus selects.
Besides the shipped trees it renders the operator kustomizations of
docs/deploy.md: its example as written (the sharded overlay with the
kube-prometheus-stack component, the operator's image and config), every tree
with an image of the operator's registry, and the runbook links
moved to the operator's wiki (a PrometheusRule made with RUNBOOK_BASE, as a
patch).

    python check_kubernetes.py REPO_ROOT OUT_DIR

Run by tests/deploy.rs with the venv that scripts/install-test-deps.sh makes.
"""
import os
import posixpath
import subprocess
import sys
import tempfile

import kubernetes_validate
import yaml

K8S_VERSION = "1.30.0"  # oldest supported minor the manifests must work on
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
# Kinds without a namespace; everything else must be in the tree's namespace.
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
    "PersistentVolume", "StorageClass", "PriorityClass", "APIService",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration",
}
# Projected into labelled pods by the Azure workload identity webhook (not a
# volume of ours): the federated_token_file of overlays/workload-identity.
WORKLOAD_IDENTITY_TOKEN_DIR = "/var/run/secrets/azure/tokens"
OPERATOR_IMAGE = "registry.example.com/platform/m365-exporter:9.9.9"


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


def name_of(d):
    return f"{d['kind']}/{d['metadata']['name']}"


def selects(selector, labels):
    return bool(selector) and selector.items() <= (labels or {}).items()


def check_namespaces(tree, docs, namespace):
    for d in docs:
        if d["kind"] in CLUSTER_SCOPED:
            continue
        ns = d["metadata"].get("namespace")
        if ns != namespace:
            fail(f"{tree}: {name_of(d)} is in namespace {ns!r}, not {namespace!r} "
                 "(without one it lands in the current namespace, apart from the rest)")


def find(objects, kind, name, namespace):
    for d in objects:
        if (d["kind"] == kind and d["metadata"]["name"] == name
                and d["metadata"].get("namespace") == namespace):
            return d
    return None


def keys_of(d):
    """The keys of a ConfigMap or Secret (data, stringData, binaryData)."""
    keys = set()
    for field in ("data", "stringData", "binaryData"):
        keys |= set((d.get(field) or {}).keys())
    return keys


def pod_references(pod):
    """(kind, name, where) of every ConfigMap and Secret the pod uses."""
    refs = []
    for v in pod.get("volumes", []):
        if "configMap" in v:
            refs.append(("ConfigMap", v["configMap"]["name"], f"volume {v['name']}"))
        if "secret" in v:
            refs.append(("Secret", v["secret"]["secretName"], f"volume {v['name']}"))
        for s in v.get("projected", {}).get("sources", []):
            if "configMap" in s:
                refs.append(("ConfigMap", s["configMap"]["name"], f"volume {v['name']}"))
            if "secret" in s:
                refs.append(("Secret", s["secret"]["name"], f"volume {v['name']}"))
    for c in pod.get("containers", []) + pod.get("initContainers", []):
        for e in c.get("envFrom", []):
            if "configMapRef" in e:
                refs.append(("ConfigMap", e["configMapRef"]["name"], f"{c['name']} envFrom"))
            if "secretRef" in e:
                refs.append(("Secret", e["secretRef"]["name"], f"{c['name']} envFrom"))
        for e in c.get("env", []):
            src = e.get("valueFrom", {})
            if "configMapKeyRef" in src:
                refs.append(("ConfigMap", src["configMapKeyRef"]["name"], f"{c['name']} env {e['name']}"))
            if "secretKeyRef" in src:
                refs.append(("Secret", src["secretKeyRef"]["name"], f"{c['name']} env {e['name']}"))
    return refs


def mount_for(path, container, pod, workload):
    """(mount, volume source) of the volume holding `path`, or (None, None)."""
    best = None
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if path.startswith(mp + "/") and (best is None or len(mp) > len(best["mountPath"])):
            best = m
    if best is None:
        return None, None
    for v in pod.get("volumes", []):
        if v["name"] == best["name"]:
            return best, v
    for t in workload["spec"].get("volumeClaimTemplates", []):
        if t["metadata"]["name"] == best["name"]:
            return best, {"name": best["name"], "persistentVolumeClaim": {}}
    fail(f"mount {best['mountPath']} names no volume {best['name']!r}")


def config_files(config):
    """(key, path, writable) of every file the exporter config names."""
    files = []
    sections = [("defaults", config.get("defaults") or {})]
    sections += [(f"tenants[{i}]", t) for i, t in enumerate(config.get("tenants") or [])]
    for where, t in sections:
        for key in ("client_secret_file", "client_certificate_path", "federated_token_file"):
            if t.get(key):
                files.append((f"{where}.{key}", t[key], False))
        activity = t.get("activity") or {}
        for key in ("state_file", "output"):
            if activity.get(key):
                files.append((f"{where}.activity.{key}", activity[key], True))
        webhook = activity.get("webhook") or {}
        if webhook.get("auth_id_file"):
            files.append((f"{where}.activity.webhook.auth_id_file", webhook["auth_id_file"], False))
    return files


def check_file(tree, what, path, writable, container, pod, workload, objects, namespace):
    """`path` is provided to the container: a key of a mounted ConfigMap or
    Secret that exists, or (writable) on a volume the container may write."""
    mount, volume = mount_for(path, container, pod, workload)
    labels = workload["spec"]["template"]["metadata"].get("labels", {})
    if mount is None:
        if (path.startswith(WORKLOAD_IDENTITY_TOKEN_DIR + "/")
                and labels.get("azure.workload.identity/use") == "true"):
            return
        fail(f"{tree}: {what} {path} is on no volume of the container")
    if writable:
        if mount.get("readOnly") or "configMap" in volume or "secret" in volume:
            fail(f"{tree}: {what} {path} is on read-only volume {volume['name']}")
        return
    key = posixpath.relpath(path, mount["mountPath"])
    for kind, field, name_key in (("ConfigMap", "configMap", "name"),
                                  ("Secret", "secret", "secretName")):
        if field in volume:
            obj = find(objects, kind, volume[field][name_key], namespace)
            items = volume[field].get("items")
            if items:
                paths = {i["path"]: i["key"] for i in items}
                if key not in paths:
                    fail(f"{tree}: {what} {path}: {kind} volume {volume['name']} maps no {key!r}")
                key = paths[key]
            if obj is not None and key not in keys_of(obj):
                fail(f"{tree}: {what} {path}: {kind} {obj['metadata']['name']} has no key "
                     f"{key!r} (keys: {sorted(keys_of(obj))})")


def check_wiring(tree, docs, outside, namespace):
    """Everything the pods reference exists; every pod is scraped once."""
    objects = docs + outside
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    for w in workloads:
        pod = w["spec"]["template"]["spec"]
        sa = pod.get("serviceAccountName")
        if sa and not find(objects, "ServiceAccount", sa, namespace):
            fail(f"{tree}: {name_of(w)} runs as ServiceAccount {sa!r}, which is not rendered")
        for kind, name, where in pod_references(pod):
            if not find(objects, kind, name, namespace):
                rendered = sorted(d["metadata"]["name"] for d in objects if d["kind"] == kind)
                fail(f"{tree}: {name_of(w)} {where} references {kind} {name!r}, not present "
                     f"in {namespace!r}; rendered {kind}s: {rendered}")
        if w["kind"] == "StatefulSet" and not find(docs, "Service", w["spec"]["serviceName"], namespace):
            fail(f"{tree}: {name_of(w)} serviceName {w['spec']['serviceName']!r} is not rendered")
        # The files the config names are where the pod has them.
        c = pod["containers"][0]
        config_arg = next((a for a in c.get("args", []) if a.startswith("--config.file=")), None)
        if config_arg is None:
            fail(f"{tree}: {name_of(w)} passes no --config.file")
        config_path = config_arg.split("=", 1)[1]
        check_file(tree, "--config.file", config_path, False, c, pod, w, objects, namespace)
        mount, volume = mount_for(config_path, c, pod, w)
        if "configMap" not in volume:
            fail(f"{tree}: --config.file {config_path} is not on a ConfigMap volume")
        cm = find(objects, "ConfigMap", volume["configMap"]["name"], namespace)
        config = yaml.safe_load(cm["data"][posixpath.relpath(config_path, mount["mountPath"])])
        for what, path, writable in config_files(config):
            check_file(tree, what, path, writable, c, pod, w, objects, namespace)
    # Each ServiceMonitor endpoint reaches each pod through exactly one Service.
    for sm in (d for d in docs if d["kind"] == "ServiceMonitor"):
        spec = sm["spec"]
        sel = spec["selector"]
        if set(sel) - {"matchLabels"}:
            fail(f"{tree}: {name_of(sm)}: only selector.matchLabels is checked here")
        if spec.get("namespaceSelector") not in (None, {}):
            fail(f"{tree}: {name_of(sm)}: namespaceSelector is not checked here")
        svcs = [d for d in docs if d["kind"] == "Service"
                and d["metadata"].get("namespace") == sm["metadata"].get("namespace")
                and selects(sel["matchLabels"], d["metadata"].get("labels"))]
        for w in workloads:
            labels = w["spec"]["template"]["metadata"]["labels"]
            for ep in spec["endpoints"]:
                via = [s["metadata"]["name"] for s in svcs
                       if selects(s["spec"].get("selector"), labels)
                       and ep["port"] in [p.get("name") for p in s["spec"]["ports"]]]
                if len(via) != 1:
                    fail(f"{tree}: {name_of(sm)} port {ep['port']!r} reaches the pods of "
                         f"{name_of(w)} through {len(via)} Services {via}: each pod must be "
                         "scraped exactly once")
    return workloads


def check_image(tree, workloads, want):
    for w in workloads:
        for c in w["spec"]["template"]["spec"]["containers"]:
            if c["image"] != want:
                fail(f"{tree}: {name_of(w)}/{c['name']} runs image {c['image']!r}, not {want!r}")


def check_sharded(tree, w, base_deployment):
    pod = w["spec"]["template"]["spec"]
    c = pod["containers"][0]
    if "--tenants.shard=$(SHARD)/$(SHARDS)" not in c.get("args", []):
        fail(f"{tree}: the StatefulSet does not pass --tenants.shard=$(SHARD)/$(SHARDS)")
    env = {e["name"]: e for e in c.get("env", [])}
    shards = env.get("SHARDS", {}).get("value")
    if shards != str(w["spec"]["replicas"]):
        fail(f"{tree}: SHARDS={shards!r} but replicas={w['spec']['replicas']}: "
             "change them together")
    path = env.get("SHARD", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    if path != "metadata.labels['apps.kubernetes.io/pod-index']":
        fail(f"{tree}: SHARD is not the pod's ordinal ({path!r})")
    # The StatefulSet's pod is a copy of the base's: keep them in step.
    base = base_deployment["spec"]["template"]["spec"]
    bc = base["containers"][0]
    for key in sorted(set(bc) | set(c)):
        if key in ("args", "env", "image"):  # the image: check_image
            continue
        if bc.get(key) != c.get(key):
            fail(f"{tree}: the StatefulSet's container {key} differs from the base Deployment's")
    if [a for a in c["args"] if not a.startswith("--tenants.shard=")] != bc["args"]:
        fail(f"{tree}: the StatefulSet's args differ from the base Deployment's beyond --tenants.shard")
    for key in sorted(set(base) | set(pod)):
        if key in ("containers", "volumes"):
            continue
        if base.get(key) != pod.get(key):
            fail(f"{tree}: the StatefulSet's pod {key} differs from the base Deployment's")


def check_tree(kubectl, path, tree, outside, namespace, image, base_deployment=None):
    docs = render(kubectl, path)
    kinds = {d["kind"] for d in docs}
    checked = 0
    for d in docs:
        if d["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(d, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            fail(f"{tree}: {name_of(d)}: {e.message} at {list(e.path)}")
        checked += 1
    if not {"Service", "ServiceMonitor", "PrometheusRule"} <= kinds:
        fail(f"{tree}: missing Service, ServiceMonitor or PrometheusRule: {sorted(kinds)}")
    check_namespaces(tree, docs, namespace)
    workloads = check_wiring(tree, docs, outside, namespace)
    if len(workloads) != 1:
        fail(f"{tree}: expected one Deployment or StatefulSet, found {len(workloads)}")
    w = workloads[0]
    check_pod_spec(f"{tree}: {w['kind']}", w["spec"])
    check_image(tree, workloads, image)
    if w["kind"] == "StatefulSet":
        check_sharded(tree, w, base_deployment)
    if "kube-prometheus-stack" in tree:
        for d in docs:
            if d["kind"] in CRD_KINDS and not d["metadata"].get("labels", {}).get("release"):
                fail(f"{tree}: {name_of(d)} has no `release` label: "
                     "kube-prometheus-stack's Prometheus ignores it")
    rule = next(d for d in docs if d["kind"] == "PrometheusRule")
    groups = rule["spec"]["groups"]
    if not groups or not all(g.get("rules") for g in groups):
        fail(f"{tree}: PrometheusRule without rule groups")
    print(f"check_kubernetes: {tree}: {len(docs)} resources, {sorted(kinds)}")
    return docs, groups, checked


def component_image(kdir):
    with open(os.path.join(kdir, "components", "image", "kustomization.yaml")) as f:
        images = yaml.safe_load(f)["images"]
    if len(images) != 1 or images[0]["name"] != "m365-exporter":
        fail(f"components/image: expected one image named m365-exporter: {images}")
    return f"{images[0]['newName']}:{images[0]['newTag']}"


def operator_kustomization(root, resources, components=(), images=(), patches=()):
    """A kustomization in a fresh directory, as an operator writes one
    beside a checkout (docs/deploy.md)."""
    os.makedirs(root, exist_ok=True)
    k = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
         "resources": [os.path.relpath(r, root) for r in resources]}
    if components:
        k["components"] = [os.path.relpath(c, root) for c in components]
    if images:
        k["images"] = list(images)
    if patches:
        k["patches"] = [{"path": p} for p in patches]
    with open(os.path.join(root, "kustomization.yaml"), "w") as f:
        yaml.safe_dump(k, f)
    return root


def documented_kustomization(root, tmp):
    """The operator's kustomization of docs/deploy.md, written as the doc says: in
    my-m365/ beside a checkout called m365-exporter, with the base's config.yml.
    Returns its directory and the image it sets."""
    with open(os.path.join(root, "docs", "deploy.md")) as f:
        doc = f.read()
    at = doc.index("<!-- kustomization-example")
    start = doc.index("```yaml\n", at) + len("```yaml\n")
    text = doc[start:doc.index("```", start)]
    k = yaml.safe_load(text)
    for key in ("resources", "components"):
        for path in k.get(key, []):
            if not path.startswith("../m365-exporter/"):
                fail(f"docs/deploy.md: {key} {path} is not in the checkout beside my-m365")
    os.symlink(root, os.path.join(tmp, "m365-exporter"))
    mine = os.path.join(tmp, "my-m365")
    os.makedirs(mine)
    with open(os.path.join(mine, "kustomization.yaml"), "w") as f:
        f.write(text)
    with open(os.path.join(root, "deploy", "kubernetes", "base", "config.yml")) as src, \
            open(os.path.join(mine, "config.yml"), "w") as dst:
        dst.write(src.read())
    (img,) = k["images"]
    return mine, f"{img['newName']}:{img['newTag']}"


def main():
    root, out_dir = os.path.abspath(sys.argv[1]), sys.argv[2]
    kubectl = os.path.join(os.path.dirname(sys.executable), "kubectl")
    kdir = os.path.join(root, "deploy", "kubernetes")
    # The credentials Secret the docs have you create beside the tree.
    with open(os.path.join(kdir, "secret.example.yaml")) as f:
        outside = [d for d in yaml.safe_load_all(f) if d]
    checked = 0
    for d in outside:
        kubernetes_validate.validate(d, K8S_VERSION, strict=True)
        checked += 1
    namespace = outside[0]["metadata"]["namespace"]
    image = component_image(kdir)
    trees = ["base"] + [
        os.path.join("overlays", o) for o in sorted(os.listdir(os.path.join(kdir, "overlays")))
    ]
    base_deployment = None
    for tree in trees:
        docs, groups, n = check_tree(kubectl, os.path.join(kdir, tree), tree, outside,
                                     namespace, image, base_deployment)
        checked += n
        if tree == "base":
            base_deployment = next(d for d in docs if d["kind"] == "Deployment")
            base_groups = groups
        name = tree.replace(os.sep, "-")
        with open(os.path.join(out_dir, f"rules-{name}.yml"), "w") as f:
            yaml.safe_dump({"groups": groups}, f, sort_keys=False)
    # The operator's kustomizations of docs/deploy.md.
    with tempfile.TemporaryDirectory() as tmp:
        mine, image_of_doc = documented_kustomization(root, tmp)
        check_tree(kubectl, mine, "operator: docs/deploy.md (sharded + kube-prometheus-stack)",
                   outside, namespace, image_of_doc, base_deployment)
        name, tag = OPERATOR_IMAGE.rsplit(":", 1)
        for tree in trees:
            mine = operator_kustomization(
                os.path.join(tmp, "image-" + tree.replace(os.sep, "-")),
                [os.path.join(kdir, tree)],
                images=[{"name": "m365-exporter", "newName": name, "newTag": tag}])
            check_tree(kubectl, mine, f"operator: {tree} with its own image", outside,
                       namespace, OPERATOR_IMAGE, base_deployment)
        # Runbook links to the operator's wiki: a PrometheusRule generated with
        # RUNBOOK_BASE, applied as a patch over ours.
        wiki = "https://wiki.example.com/m365-runbook"
        mine = os.path.join(tmp, "runbook-wiki")
        os.makedirs(mine)
        gen = subprocess.run(["bash", os.path.join(root, "scripts", "gen-prometheusrule.sh")],
                             capture_output=True, text=True, env={**os.environ, "RUNBOOK_BASE": wiki})
        if gen.returncode != 0:
            fail(f"RUNBOOK_BASE=... gen-prometheusrule.sh: {gen.stderr}")
        with open(os.path.join(mine, "prometheusrule.yaml"), "w") as f:
            f.write(gen.stdout)
        operator_kustomization(mine, [os.path.join(kdir, "overlays", "kube-prometheus-stack")],
                               patches=["prometheusrule.yaml"])
        tree = "operator: kube-prometheus-stack with runbook links to a wiki"
        docs, groups, _ = check_tree(kubectl, mine, tree, outside, namespace, image, base_deployment)
        rules = [r for g in groups for r in g["rules"] if "alert" in r]
        if len(rules) != len([r for g in base_groups for r in g["rules"] if "alert" in r]):
            fail(f"{tree}: {len(rules)} alerts, not the shipped number")
        for r in rules:
            url = r["annotations"]["runbook_url"]
            if url != f"{wiki}#{r['alert'].lower()}":
                fail(f"{tree}: {r['alert']} links to {url}")
    print(f"check_kubernetes: {checked} built-in resources valid against Kubernetes {K8S_VERSION}")


if __name__ == "__main__":
    main()
