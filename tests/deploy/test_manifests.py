#!/usr/bin/env python3
"""deploy/k3s rendered, validated against the Kubernetes API schema, and checked against
the agent itself.

Rendering: every kustomization (base, console, each overlay) with kustomize_lite.py, and
with `kubectl kustomize` too when a kubectl with kustomize v4+ is installed; both must give
the same objects.

Schema: each object is type-checked with TypeScript (`tsc --strict`) against the API types
of kubernetes-types (core, apps) and @kubernetes-models/prometheus-operator (PodMonitor),
which rejects unknown fields, wrong types and missing required fields; and validated with
the JSON-schema validators of kubernetes-models (formats, integer ranges). The npm packages
are pinned in package-lock.json and installed with `npm ci` into EDGE_DEPLOY_NODE_DIR
(ctest: the build directory), once.

Consistency: the ConfigMap's config and policy pass `edge-agent check`; every EDGE_AGENT_*
variable is a config key; ports and probe paths agree with http.listen; the Secret keys
that deploy/k3s/make-secrets.sh writes are the files the config and environment name; and
the real edge-agent, started with the rendered config and environment (paths moved into a
temporary directory) against a real mosquitto and an edge-console that reads
make-secrets.sh's tokens file, answers every probe, goes ready, and drains within
terminationGracePeriodSeconds. The sidecar's mosquitto.conf is run by a real mosquitto.
"""

import copy
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
K3S = os.path.join(ROOT, "deploy", "k3s")
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, HERE)
import harness  # noqa: E402
import kustomize_lite  # noqa: E402

TARGETS = ["base", "console", "overlays/site", "overlays/site-with-broker",
           "overlays/site-with-podmonitor"]
AGENT_TARGETS = ["overlays/site", "overlays/site-with-broker", "overlays/site-with-podmonitor"]
MAKE_SECRETS = os.path.join(K3S, "make-secrets.sh")
NODE_DIR = os.environ.get("EDGE_DEPLOY_NODE_DIR") or os.path.join(
    tempfile.gettempdir(), "edge-deploy-node-%d" % os.getuid())

# TypeScript type of each kind the manifests may hold; anything else fails the test.
TS_TYPES = {
    ("v1", "Namespace"): "core.Namespace",
    ("v1", "ServiceAccount"): "core.ServiceAccount",
    ("v1", "ConfigMap"): "core.ConfigMap",
    ("v1", "Secret"): "core.Secret",
    ("v1", "Service"): "core.Service",
    ("v1", "PersistentVolumeClaim"): "core.PersistentVolumeClaim",
    ("apps/v1", "DaemonSet"): "apps.DaemonSet",
    ("apps/v1", "Deployment"): "apps.Deployment",
    ("monitoring.coreos.com/v1", "PodMonitor"): "IPodMonitor",
}
TS_HEADER = """\
import type * as core from "kubernetes-types/core/v1";
import type * as apps from "kubernetes-types/apps/v1";
import type { IPodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor";
"""
# Runtime validators (JSON schema) of the same kinds.
JS_MODELS = {
    ("v1", "Namespace"): "kubernetes-models/v1/Namespace",
    ("v1", "ServiceAccount"): "kubernetes-models/v1/ServiceAccount",
    ("v1", "ConfigMap"): "kubernetes-models/v1/ConfigMap",
    ("v1", "Secret"): "kubernetes-models/v1/Secret",
    ("v1", "Service"): "kubernetes-models/v1/Service",
    ("v1", "PersistentVolumeClaim"): "kubernetes-models/v1/PersistentVolumeClaim",
    ("apps/v1", "DaemonSet"): "kubernetes-models/apps/v1/DaemonSet",
    ("apps/v1", "Deployment"): "kubernetes-models/apps/v1/Deployment",
    ("monitoring.coreos.com/v1", "PodMonitor"):
        "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor",
}
JS_VALIDATE = """\
import { readFileSync } from "node:fs";
const objs = JSON.parse(readFileSync(process.argv[2], "utf8"));
let failed = 0;
for (const [label, module, obj] of objs) {
  const mod = await import(module);
  const cls = mod[obj.kind];
  try {
    new cls(obj).validate();
  } catch (e) {
    failed++;
    console.log(label + ": " + e.message);
  }
}
process.exit(failed ? 1 : 0);
"""

_RENDERED = {}


def read_text(path):
    with open(path) as f:
        return f.read()


def render(target):
    if target not in _RENDERED:
        _RENDERED[target] = kustomize_lite.build(os.path.join(K3S, target))
    return copy.deepcopy(_RENDERED[target])


def find(objs, kind, name=None):
    hits = [o for o in objs if o["kind"] == kind and (name is None or
                                                      o["metadata"]["name"] == name)]
    if len(hits) != 1:
        raise AssertionError("%d %s objects named %s" % (len(hits), kind, name))
    return hits[0]


def generated(objs, name):
    """The generated ConfigMap `name` (its rendered name carries a hash suffix)."""
    hits = [o for o in objs if o["kind"] == "ConfigMap"
            and re.fullmatch(re.escape(name) + r"-[a-z0-9]{10}", o["metadata"]["name"])]
    if len(hits) != 1:
        raise AssertionError("generated ConfigMap %s: %d found" % (name, len(hits)))
    return hits[0]


def container(obj, name):
    return next(c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def kubectl_kustomize():
    """A kubectl whose kustomize is v4 or newer, or None."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        return None
    try:
        out = subprocess.run([kubectl, "version", "--client"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=30, check=False).stdout.decode()
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"Kustomize Version: v(\d+)", out)
    return kubectl if m and int(m.group(1)) >= 4 else None


def config_keys():
    """{env variable: key} of every config key, from the agent's own key table."""
    with open(os.path.join(ROOT, "agent", "src", "config_fields.cc")) as f:
        text = f.read()
    pairs = re.findall(r'\{\{"([a-z_.]+)", "(EDGE_AGENT_[A-Z_]+)"', text)
    if len(pairs) < 10:
        raise AssertionError("could not read the config key table from "
                             "agent/src/config_fields.cc")
    return {env: key for key, env in pairs}


def ensure_node_modules():
    """npm ci of tests/deploy/package-lock.json into NODE_DIR, unless already there."""
    lock = os.path.join(HERE, "package-lock.json")
    with open(lock, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    stamp = os.path.join(NODE_DIR, ".lock-sha256")
    if os.path.exists(stamp) and read_text(stamp) == digest:
        return
    npm = shutil.which("npm")
    if not npm:
        raise unittest.SkipTest("npm is not installed")
    os.makedirs(NODE_DIR, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(HERE, name), NODE_DIR)
    res = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                         cwd=NODE_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         timeout=300, check=False)
    if res.returncode != 0:
        raise AssertionError("npm ci failed:\n" + res.stdout.decode("utf-8", "replace"))
    with open(stamp, "w") as f:
        f.write(digest)


class Rendering(unittest.TestCase):
    def test_every_kustomization_renders(self):
        for target in TARGETS:
            objs = render(target)
            self.assertTrue(objs, target)
            for o in objs:
                self.assertIn((o["apiVersion"], o["kind"]), TS_TYPES, target)

    def test_agrees_with_kubectl_kustomize(self):
        kubectl = kubectl_kustomize()
        if not kubectl:
            self.skipTest("no kubectl with kustomize v4+: rendered by kustomize_lite.py only")
        import yaml  # pylint: disable=import-outside-toplevel
        for target in TARGETS:
            out = subprocess.run([kubectl, "kustomize", os.path.join(K3S, target)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60,
                                 check=True).stdout
            ref = [o for o in yaml.safe_load_all(out) if o]
            key = lambda o: json.dumps(kustomize_lite._key(o))  # noqa: E731
            self.assertEqual(sorted(render(target), key=key), sorted(ref, key=key), target)


class Schema(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ensure_node_modules()
        cls.tmp = tempfile.mkdtemp(prefix="edge-deploy-schema-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def tsc(self, name, consts):
        """Type-checks `export const NAME: TYPE = OBJECT;` lines; returns (rc, output)."""
        path = os.path.join(NODE_DIR, "%s.ts" % name)
        with open(path, "w") as f:
            f.write(TS_HEADER + "\n".join(consts) + "\n")
        tsc = os.path.join(NODE_DIR, "node_modules", ".bin", "tsc")
        res = subprocess.run([tsc, "--strict", "--noEmit", "--skipLibCheck", "--module",
                              "esnext", "--moduleResolution", "bundler", "--target", "es2022",
                              path], cwd=NODE_DIR,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120,
                             check=False)
        return res.returncode, res.stdout.decode("utf-8", "replace")

    @staticmethod
    def ts_const(label, obj):
        ts_type = TS_TYPES[(obj["apiVersion"], obj["kind"])]
        ident = "o_" + re.sub(r"[^A-Za-z0-9]", "_", label)
        return "// %s\nexport const %s: %s = %s;" % (label, ident, ts_type, json.dumps(obj, indent=1))

    def test_objects_type_check_against_the_api_types(self):
        consts = []
        for target in TARGETS:
            for o in render(target):
                consts.append(self.ts_const("%s %s %s" % (target, o["kind"], o["metadata"]["name"]), o))
        rc, out = self.tsc("manifests", consts)
        self.assertEqual(rc, 0, "tsc:\n" + out)

    def test_type_check_rejects_broken_objects(self):
        ds = find(render("overlays/site"), "DaemonSet")
        broken = []
        unknown = copy.deepcopy(ds)
        unknown["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
        broken.append(("unknown field", unknown))
        wrong = copy.deepcopy(ds)
        wrong["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "9102"
        broken.append(("wrong type", wrong))
        missing = copy.deepcopy(ds)
        del missing["spec"]["selector"]
        broken.append(("missing required field", missing))
        for what, obj in broken:
            rc, _ = self.tsc("broken", [self.ts_const(what, obj)])
            self.assertNotEqual(rc, 0, "tsc accepted a DaemonSet with a %s" % what)

    def test_objects_pass_the_schema_validators(self):
        items = []
        for target in TARGETS:
            for o in render(target):
                items.append(["%s %s/%s" % (target, o["kind"], o["metadata"]["name"]),
                              JS_MODELS[(o["apiVersion"], o["kind"])], o])
        bad = copy.deepcopy(find(render("overlays/site"), "DaemonSet"))
        bad["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
        script = os.path.join(NODE_DIR, "validate.mjs")
        with open(script, "w") as f:
            f.write(JS_VALIDATE)
        for name, payload, want_ok in (("objects", items, True),
                                       ("bad", [["bad", JS_MODELS[("apps/v1", "DaemonSet")], bad]],
                                        False)):
            path = os.path.join(self.tmp, name + ".json")
            with open(path, "w") as f:
                json.dump(payload, f)
            res = subprocess.run(["node", script, path], cwd=NODE_DIR, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=120, check=False)
            out = res.stdout.decode("utf-8", "replace")
            if want_ok:
                self.assertEqual(res.returncode, 0, out)
            else:
                self.assertNotEqual(res.returncode, 0, "validator accepted a string containerPort")


class DaemonSetShape(unittest.TestCase):
    """What the issue asks of the DaemonSet, in every agent overlay."""

    def test_security_probes_storage_and_rollout(self):
        for target in AGENT_TARGETS:
            with self.subTest(target=target):
                ds = find(render(target), "DaemonSet", "edge-agent")
                pod = ds["spec"]["template"]["spec"]
                agent = container(ds, "edge-agent")
                psc = pod["securityContext"]
                self.assertTrue(psc["runAsNonRoot"])
                self.assertEqual(psc["runAsUser"], 65532)
                self.assertEqual(psc["seccompProfile"]["type"], "RuntimeDefault")
                for c in pod["containers"]:
                    sc = c["securityContext"]
                    self.assertTrue(sc["readOnlyRootFilesystem"], c["name"])
                    self.assertFalse(sc["allowPrivilegeEscalation"], c["name"])
                    self.assertEqual(sc["capabilities"]["drop"], ["ALL"], c["name"])
                    self.assertNotIn("add", sc["capabilities"], c["name"])
                    self.assertIn("limits", c["resources"], c["name"])
                    self.assertIn("requests", c["resources"], c["name"])
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    self.assertIn(probe, agent)
                env = {e["name"]: e for e in agent["env"]}
                self.assertEqual(env["EDGE_AGENT_NODE_ID"]["valueFrom"]["fieldRef"]["fieldPath"],
                                 "spec.nodeName")
                vols = {v["name"]: v for v in pod["volumes"]}
                data = vols["data"]["hostPath"]
                self.assertEqual(data["path"], "/var/lib/edge-agent")
                # The agent drains within 5 s; the grace period must cover it.
                self.assertGreaterEqual(pod["terminationGracePeriodSeconds"], 6)
                self.assertEqual(ds["spec"]["updateStrategy"]["type"], "RollingUpdate")
                self.assertIn("maxUnavailable", ds["spec"]["updateStrategy"]["rollingUpdate"])
                self.assertTrue(pod["nodeSelector"])
                # Mixed-architecture clusters: only the architectures the image is built for.
                terms = pod["affinity"]["nodeAffinity"][
                    "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
                self.assertEqual([e for t in terms for e in t["matchExpressions"]],
                                 [{"key": "kubernetes.io/arch", "operator": "In",
                                   "values": ["amd64", "arm64"]}])
                self.assertTrue(pod["tolerations"])
                self.assertFalse(pod["automountServiceAccountToken"])

    def test_ports_probes_and_scrape_targets_agree_with_http_listen(self):
        for target in AGENT_TARGETS:
            with self.subTest(target=target):
                objs = render(target)
                ds = find(objs, "DaemonSet", "edge-agent")
                agent = container(ds, "edge-agent")
                import yaml  # pylint: disable=import-outside-toplevel
                cfg = yaml.safe_load(generated(objs, "edge-agent-config")["data"]["config.yaml"])
                port = int(cfg["http"]["listen"].rsplit(":", 1)[1])
                named = {p["name"]: p["containerPort"] for p in agent["ports"]}
                self.assertEqual(named["http"], port)
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    self.assertIn(agent[probe]["httpGet"]["port"], ("http", port))
                self.assertEqual(agent["readinessProbe"]["httpGet"]["path"], "/readyz")
                self.assertEqual(agent["livenessProbe"]["httpGet"]["path"], "/healthz")
                ann = ds["spec"]["template"]["metadata"]["annotations"]
                self.assertEqual(int(ann["prometheus.io/port"]), port)
                self.assertEqual(ann["prometheus.io/path"], "/metrics")
                monitors = [o for o in objs if o["kind"] == "PodMonitor"]
                for pm in monitors:
                    self.assertEqual(ann["prometheus.io/scrape"], "false")
                    for ep in pm["spec"]["podMetricsEndpoints"]:
                        self.assertEqual(ep["port"], "http")
                        self.assertEqual(ep["path"], "/metrics")
                    sel = pm["spec"]["selector"]["matchLabels"]
                    labels = ds["spec"]["template"]["metadata"]["labels"]
                    self.assertTrue(all(labels.get(k) == v for k, v in sel.items()))

    def test_sidecar_overlay(self):
        ds = find(render("overlays/site-with-broker"), "DaemonSet", "edge-agent")
        broker = container(ds, "mosquitto")
        self.assertIn(1883, [p.get("hostPort") for p in broker["ports"]])
        env = {e["name"]: e for e in container(ds, "edge-agent")["env"]}
        self.assertEqual(env["EDGE_AGENT_MQTT_URL"], {"name": "EDGE_AGENT_MQTT_URL",
                                                      "value": "tcp://127.0.0.1:1883"})

    def test_console(self):
        objs = render("console")
        dep = find(objs, "Deployment", "edge-console")
        pod = dep["spec"]["template"]["spec"]
        vols = {v["name"]: v for v in pod["volumes"]}
        pvc = find(objs, "PersistentVolumeClaim")
        self.assertEqual(vols["data"]["persistentVolumeClaim"]["claimName"],
                         pvc["metadata"]["name"])
        svc = find(objs, "Service")
        c = container(dep, "edge-console")
        self.assertTrue(all(svc["spec"]["selector"].get(k) == v for k, v in
                            dep["spec"]["template"]["metadata"]["labels"].items()
                            if k in svc["spec"]["selector"]))
        self.assertIn(svc["spec"]["ports"][0]["targetPort"], [p["name"] for p in c["ports"]])
        listen_port = int(c["args"][c["args"].index("--listen") + 1].rsplit(":", 1)[1])
        self.assertEqual(c["ports"][0]["containerPort"], listen_port)
        self.assertEqual(dep["spec"]["strategy"]["type"], "Recreate")
        self.assertTrue(c["securityContext"]["readOnlyRootFilesystem"])
        self.assertEqual(pod["securityContext"]["runAsUser"], 65532)


def _expand(value, env):
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)),
                  value)


class AgentConsistency(harness.IntegrationTest):
    needs = ("agent", "console")

    def make_secrets(self, *nodes):
        out_dir = os.path.join(self.tmp, "secrets")
        res = subprocess.run([MAKE_SECRETS, out_dir] + list(nodes), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=30, check=False)
        text = res.stdout.decode()
        self.assertEqual(res.returncode, 0, text)
        return out_dir, text

    def test_config_and_policy_pass_edge_agent_check(self):
        for target in AGENT_TARGETS:
            cm = generated(render(target), "edge-agent-config")
            d = tempfile.mkdtemp(dir=self.tmp)
            paths = []
            for name, text in cm["data"].items():
                paths.append(os.path.join(d, name))
                with open(paths[-1], "w") as f:
                    f.write(text)
            rc, out = harness.agent_check(*paths)
            self.assertEqual(rc, 0, "%s: %s" % (target, out))
            self.assertEqual(out.count(": ok"), 2, out)

    def test_environment_names_config_keys(self):
        known = config_keys()
        for target in AGENT_TARGETS:
            objs = render(target)
            names = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ConfigMap"}
            for e in container(find(objs, "DaemonSet"), "edge-agent")["env"]:
                self.assertIn(e["name"], known, "%s: %s is not a config key" % (target, e["name"]))
                ref = e.get("valueFrom", {}).get("configMapKeyRef")
                if ref:
                    self.assertIn(ref["name"], names)
                    self.assertIn(ref["key"], names[ref["name"]]["data"])

    def test_secret_keys_are_the_files_the_agent_reads(self):
        secrets, text = self.make_secrets("node-a", "node-b")
        import yaml  # pylint: disable=import-outside-toplevel
        for target in AGENT_TARGETS:
            objs = render(target)
            ds = find(objs, "DaemonSet")
            pod = ds["spec"]["template"]["spec"]
            agent = container(ds, "edge-agent")
            vol = next(v for v in pod["volumes"] if "secret" in v)
            self.assertIn("secret generic %s " % vol["secret"]["secretName"], text)
            mount = next(m["mountPath"] for m in agent["volumeMounts"] if m["name"] == vol["name"])
            cfg = yaml.safe_load(generated(objs, "edge-agent-config")["data"]["config.yaml"])
            for node in ("node-a", "node-b"):
                env = {"EDGE_AGENT_NODE_ID": node}
                referenced = [cfg["console"]["ca_file"]]
                for e in agent["env"]:
                    if "value" in e:
                        env[e["name"]] = _expand(e["value"], env)
                        if env[e["name"]].startswith(mount + "/"):
                            referenced.append(env[e["name"]])
                self.assertIn("EDGE_AGENT_CONSOLE_TOKEN_FILE", env)
                for path in referenced:
                    self.assertTrue(path.startswith(mount + "/"), path)
                    key = path[len(mount) + 1:]
                    self.assertTrue(os.path.isfile(os.path.join(secrets, "agent", key)),
                                    "%s: Secret key %s (for %s) is not written by make-secrets.sh"
                                    % (target, key, path))
        # The console's Secret: key "tokens", read through --tokens.
        dep = find(render("console"), "Deployment")
        c = container(dep, "edge-console")
        vol = next(v for v in dep["spec"]["template"]["spec"]["volumes"] if "secret" in v)
        self.assertIn("secret generic %s" % vol["secret"]["secretName"], text)
        self.assertIn("--from-file=tokens=", text)
        mount = next(m["mountPath"] for m in c["volumeMounts"] if m["name"] == vol["name"])
        self.assertEqual(c["args"][c["args"].index("--tokens") + 1], mount + "/tokens")

    def test_rendered_agent_runs_answers_probes_and_drains(self):
        """The rendered config and environment, run for real (paths moved under tmp)."""
        secrets, _ = self.make_secrets("node-a")
        mq = self.start_mosquitto()
        # edge-console reading make-secrets.sh's tokens file.
        port_file = os.path.join(self.tmp, "console.port")
        console = harness.Process("edge-console", [
            harness.EDGE_CONSOLE_BIN, "--listen", "127.0.0.1:0", "--port-file", port_file,
            "--db", os.path.join(self.tmp, "console.db"),
            "--tokens", os.path.join(secrets, "console-tokens")],
            os.path.join(self.tmp, "console.log"))
        self.own(console).start()
        port = harness.wait_until(lambda: os.path.exists(port_file) and read_text(port_file).strip(),
                                  20, what="console port file")
        console_url = "http://127.0.0.1:%s" % port

        for target in ("overlays/site", "overlays/site-with-broker"):
            with self.subTest(target=target):
                self.run_rendered_agent(target, secrets, mq, console_url)

    def run_rendered_agent(self, target, secrets, mq, console_url):
        objs = render(target)
        ds = find(objs, "DaemonSet")
        pod = ds["spec"]["template"]["spec"]
        agent = container(ds, "edge-agent")
        cms = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ConfigMap"}
        work = tempfile.mkdtemp(prefix="agent-", dir=self.tmp)
        http_port = harness.free_port()
        # Where each mount of the pod lands on this machine.
        mounts = {}
        for m in agent["volumeMounts"]:
            vol = next(v for v in pod["volumes"] if v["name"] == m["name"])
            local = os.path.join(work, m["name"])
            if "configMap" in vol:
                os.makedirs(local)
                for key, text in cms[vol["configMap"]["name"]]["data"].items():
                    with open(os.path.join(local, key), "w") as f:
                        f.write(text)
            elif "secret" in vol:
                local = os.path.join(secrets, "agent")
            else:
                os.makedirs(local)
            mounts[m["mountPath"]] = local

        # One pass over all mount points, so that a local path is never mapped again.
        mount_re = re.compile(r"(?<![\w/.-])(%s)/" % "|".join(
            re.escape(p) for p in sorted(mounts, key=len, reverse=True)))

        def local_path(text):
            return mount_re.sub(lambda m: mounts[m.group(1)] + "/", text)

        listen = None
        for key, text in cms[next(v["configMap"]["name"] for v in pod["volumes"]
                                  if v["name"] == "config")]["data"].items():
            m = re.search(r"listen: *(\S+)", text)
            if m:
                listen = m.group(1)
            text = local_path(text).replace(listen or "\0", "127.0.0.1:%d" % http_port)
            with open(os.path.join(mounts["/etc/edge-agent"], key), "w") as f:
                f.write(text)
        self.assertIsNotNone(listen)

        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for e in agent["env"]:
            if "value" in e:
                value = _expand(e["value"], env)
            elif "fieldRef" in e["valueFrom"]:
                self.assertEqual(e["valueFrom"]["fieldRef"]["fieldPath"], "spec.nodeName")
                value = "node-a"
            else:
                ref = e["valueFrom"]["configMapKeyRef"]
                value = cms[ref["name"]]["data"][ref["key"]]
            env[e["name"]] = local_path(value)
        # The site's console and broker stand in for the rendered example addresses.
        env["EDGE_AGENT_CONSOLE_URL"] = console_url
        self.assertTrue(env["EDGE_AGENT_MQTT_URL"].startswith("tcp://"))
        env["EDGE_AGENT_MQTT_URL"] = mq.url
        argv = [harness.EDGE_AGENT_BIN] + [local_path(a) for a in agent["args"]]
        proc = self.own(harness.Process("edge-agent-" + target.replace("/", "-"), argv,
                                        os.path.join(self.tmp, "agent-%s.log" % os.path.basename(target)),
                                        env=env)).start()
        base = "http://127.0.0.1:%d" % http_port

        def get(path):
            try:
                return harness.http_request(base + path, timeout=2)[0]
            except OSError:
                return None

        def probes_ok():
            proc.check_alive()
            return all(get(agent[p]["httpGet"]["path"]) == 200
                       for p in ("startupProbe", "livenessProbe", "readinessProbe"))

        harness.wait_until(probes_ok, 30, 0.2, "%s: every probe answering 200" % target)
        status, body, _ = harness.http_request(
            base + ds["spec"]["template"]["metadata"]["annotations"]["prometheus.io/path"])
        self.assertEqual(status, 200)
        self.assertIn(b"edge_agent_", body)
        # The database went where the hostPath volume is mounted.
        self.assertTrue(os.path.exists(os.path.join(mounts["/var/lib/edge-agent"],
                                                    "edge-agent.db")))
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(pod["terminationGracePeriodSeconds"])
        self.assertEqual(rc, 0)
        self.assertLess(time.monotonic() - start, pod["terminationGracePeriodSeconds"])

    def test_sidecar_mosquitto_conf_runs(self):
        cm = generated(render("overlays/site-with-broker"), "edge-agent-mosquitto")
        conf = os.path.join(self.tmp, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(cm["data"]["mosquitto.conf"])
        if os.geteuid() != 0 or not shutil.which("unshare"):
            self.skipTest("needs root and unshare: port 1883 in a private network namespace")
        # Port 1883 of a network namespace of its own, where nothing else listens.
        proc = self.own(harness.Process("mosquitto-sidecar", [
            "unshare", "--net", "sh", "-c",
            "ip link set lo up && exec %s -c %s" % (harness.MOSQUITTO_BIN, conf)],
            os.path.join(self.tmp, "mosquitto-sidecar.log"))).start()
        time.sleep(1.5)
        proc.check_alive()


if __name__ == "__main__":
    harness.main()
