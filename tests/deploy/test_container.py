#!/usr/bin/env python3
"""The edge-agent and edge-console images, run with podman against a host mosquitto.

Run by tools/deploy-test.sh, which builds the images and passes their names in
AGENT_IMAGE and CONSOLE_IMAGE. Both containers use the host network (the broker is a host
process on loopback, from tests/integration/harness.py). Checks, as the DaemonSet runs
the agent: uid/gid 65532, read-only root filesystem, all capabilities dropped, config and
policy mounted read-only, the token as a mounted secret, the database on a mounted
volume; /readyz goes ready; a published reading raises an alert that reaches the console
(itself running from its image); `podman stop` drains and exits 0 within the agent's
5 s drain; each image holds only its binary, shared libraries, CA certificates and
passwd, and is under 25 MB.
"""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness  # noqa: E402

AGENT_IMAGE = os.environ.get("AGENT_IMAGE", "")
CONSOLE_IMAGE = os.environ.get("CONSOLE_IMAGE", "")
PODMAN = shutil.which("podman")
NONROOT = 65532
SIZE_LIMIT = 25 * 1000 * 1000
NODE = "edge-ct-1"

POLICY = """\
rules:
  - id: overheat
    match: "sensors/+/temp"
    kind: threshold
    above: 50
    clear: 45
    for: 0s
    severity: critical
"""


def podman(*args, check=True, timeout=60):
    res = subprocess.run([PODMAN] + [str(a) for a in args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=timeout, check=False)
    if check and res.returncode != 0:
        raise RuntimeError("podman %s: exit %d\n%s" % (" ".join(map(str, args)), res.returncode,
                                                       res.stderr.decode("utf-8", "replace")))
    return res.stdout.decode("utf-8", "replace")


class Container:
    """A detached podman container, removed by name when the test ends."""

    def __init__(self, name, image, run_args, args=()):
        self.name = name
        self.image = image
        self.run_args = list(run_args)
        self.args = list(args)

    def start(self):
        podman("run", "-d", "--name", self.name, *self.run_args, self.image, *self.args)
        return self

    def inspect(self):
        return json.loads(podman("inspect", self.name))[0]

    def pid(self):
        return self.inspect()["State"]["Pid"]

    def running(self):
        return self.inspect()["State"]["Running"]

    def logs(self):
        res = subprocess.run([PODMAN, "logs", self.name], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=30, check=False)
        return res.stdout.decode("utf-8", "replace")

    def stop(self):
        # Keep the logs next to the other components' logs (printed when a test fails).
        try:
            with open(os.path.join(self.log_dir, "%s.log" % self.name), "w") as f:
                f.write(self.logs())
        except (AttributeError, OSError, subprocess.SubprocessError):
            pass
        podman("rm", "-f", "-t", "0", self.name, check=False)


def proc_ids(pid):
    """(uids, gids) of a host process: the real, effective, saved and fs ids."""
    with open("/proc/%d/status" % pid) as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return ([int(x) for x in fields["Uid"].split()], [int(x) for x in fields["Gid"].split()])


def cap_eff(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    raise RuntimeError("no CapEff")


def root_mount_options(pid):
    """Mount options of the process's root filesystem, from its mountinfo."""
    with open("/proc/%d/mountinfo" % pid) as f:
        for line in f:
            fields = line.split()
            if fields[4] == "/":
                return set(fields[5].split(","))
    raise RuntimeError("no root mount in mountinfo of %d" % pid)


def image_files(image):
    """Paths (no leading /) in the image's filesystem, from `podman export`."""
    name = "edge-files-%d" % os.getpid()
    podman("create", "--name", name, image)
    try:
        with tempfile.TemporaryFile() as tmp:
            subprocess.run([PODMAN, "export", name], stdout=tmp, check=True, timeout=60)
            tmp.seek(0)
            with tarfile.open(fileobj=tmp) as tar:
                return {m.name.lstrip("./") for m in tar.getmembers() if m.name.strip("./")}
    finally:
        podman("rm", "-f", name, check=False)


@unittest.skipUnless(PODMAN and AGENT_IMAGE and CONSOLE_IMAGE,
                     "needs podman, AGENT_IMAGE and CONSOLE_IMAGE (run tools/deploy-test.sh)")
class ImageContents(unittest.TestCase):
    def check_image(self, image, binary, data_dir):
        info = json.loads(podman("image", "inspect", image))[0]
        self.assertLess(info["Size"], SIZE_LIMIT, "%s is %d bytes" % (image, info["Size"]))
        self.assertEqual(info["Config"]["User"], "%d:%d" % (NONROOT, NONROOT))
        self.assertEqual(info["Config"]["Entrypoint"], ["/usr/local/bin/" + binary])
        files = image_files(image)
        allowed_prefixes = ("lib/", "lib64/", "usr/lib/x86_64-linux-gnu/", "usr/lib/ssl",
                            "etc/ssl", "usr/local/bin", "usr/local", "usr/lib", "usr", "etc",
                            "lib", "lib64", "tmp", "var", "var/lib", data_dir)
        allowed_files = {"etc/passwd", "etc/group", "etc/nsswitch.conf",
                         "usr/local/bin/" + binary}
        unexpected = sorted(f for f in files
                            if f not in allowed_files and not f.startswith(allowed_prefixes))
        self.assertEqual(unexpected, [], "files outside binary, libraries, CAs and passwd")
        for forbidden in ("bin/sh", "usr/bin/sh", "bin/bash", "usr/bin/apt-get",
                          "usr/bin/dpkg"):
            self.assertNotIn(forbidden, files)
        self.assertIn("etc/ssl/certs/ca-certificates.crt", files)
        self.assertIn("lib64/ld-linux-x86-64.so.2", files)
        self.assertTrue(any(f.endswith("/libc.so.6") for f in files))
        sys.stderr.write("%s: %d bytes, %d files\n" % (image, info["Size"], len(files)))

    def test_agent_image(self):
        self.check_image(AGENT_IMAGE, "edge-agent", "var/lib/edge-agent")

    def test_console_image(self):
        self.check_image(CONSOLE_IMAGE, "edge-console", "var/lib/edge-console")


@unittest.skipUnless(PODMAN and AGENT_IMAGE and CONSOLE_IMAGE,
                     "needs podman, AGENT_IMAGE and CONSOLE_IMAGE (run tools/deploy-test.sh)")
class AgentContainer(harness.IntegrationTest):
    def container(self, name, image, run_args, args=()):
        c = Container("%s-%d" % (name, os.getpid()), image, run_args, args)
        c.log_dir = self.tmp
        return self.own(c).start()

    def make_dir(self, name, owner=0, mode=0o755):
        path = os.path.join(self.tmp, name)
        os.makedirs(path)
        os.chown(path, owner, owner)
        os.chmod(path, mode)
        return path

    def write(self, path, text, owner=0, mode=0o644):
        with open(path, "w") as f:
            f.write(text)
        os.chown(path, owner, owner)
        os.chmod(path, mode)

    def test_agent_runs_as_the_daemonset_runs_it(self):
        os.chmod(self.tmp, 0o755)
        mq = self.start_mosquitto()

        # The console, from its image, with its tokens and database on mounts.
        tokens = {NODE: os.urandom(16).hex(), "admin": os.urandom(16).hex()}
        console_cfg = self.make_dir("console-etc")
        self.write(os.path.join(console_cfg, "tokens"),
                   "".join("%s %s\n" % kv for kv in tokens.items()), owner=NONROOT, mode=0o400)
        console_data = self.make_dir("console-data", owner=NONROOT, mode=0o700)
        console_port = harness.free_port()
        self.container("edge-console", CONSOLE_IMAGE,
                       ["--network=host", "--read-only", "--cap-drop=ALL",
                        "-v", "%s:/etc/edge-console:ro" % console_cfg,
                        "-v", "%s:/var/lib/edge-console" % console_data],
                       ["--listen", "127.0.0.1:%d" % console_port,
                        "--db", "/var/lib/edge-console/console.db",
                        "--tokens", "/etc/edge-console/tokens"])
        console_url = "http://127.0.0.1:%d" % console_port

        def console_get(path):
            status, raw, _ = harness.http_request(console_url + path, token=tokens["admin"])
            return status, (json.loads(raw) if status == 200 else raw)

        def console_up():
            try:
                return harness.http_request(console_url + "/healthz")[0] == 200
            except OSError:
                return False

        harness.wait_until(console_up, 30, 0.2, "edge-console container /healthz")

        # The agent: config and policy as the ConfigMap mounts them, the token as the
        # Secret does, the node id from the environment (the Downward API's job).
        http_port = harness.free_port()
        etc = self.make_dir("agent-etc")
        self.write(os.path.join(etc, "config.yaml"), "\n".join([
            "mqtt:",
            "  url: tcp://127.0.0.1:%d" % mq.port,
            "  topics: [\"sensors/#\"]",
            "store:",
            "  path: /var/lib/edge-agent/edge-agent.db",
            "http:",
            "  listen: 127.0.0.1:%d" % http_port,
            "console:",
            "  url: %s" % console_url,
            "  token_file: /run/secrets/edge-agent/token",
            "  backoff_initial: 200ms",
            "  backoff_max: 2s",
            "policy: /etc/edge-agent/policy.yaml",
            ""]))
        self.write(os.path.join(etc, "policy.yaml"), POLICY)
        secrets = self.make_dir("agent-secrets", owner=NONROOT, mode=0o500)
        self.write(os.path.join(secrets, "token"), tokens[NODE] + "\n", owner=NONROOT,
                   mode=0o400)
        data = self.make_dir("agent-data", owner=NONROOT, mode=0o700)
        agent = self.container("edge-agent", AGENT_IMAGE,
                               ["--network=host", "--read-only", "--cap-drop=ALL",
                                "--security-opt", "no-new-privileges",
                                "--tmpfs", "/tmp:rw,size=16m,mode=1777",
                                "-e", "EDGE_AGENT_NODE_ID=%s" % NODE,
                                "-v", "%s:/etc/edge-agent:ro" % etc,
                                "-v", "%s:/run/secrets/edge-agent:ro" % secrets,
                                "-v", "%s:/var/lib/edge-agent" % data])
        agent_url = "http://127.0.0.1:%d" % http_port

        def ready():
            if not agent.running():
                raise RuntimeError("agent container exited:\n" + agent.logs())
            try:
                return harness.http_request(agent_url + "/readyz", timeout=2)[0] == 200
            except OSError:
                return False

        harness.wait_until(ready, 30, 0.2, "agent container /readyz")

        # Who it runs as, and what it may do.
        pid = agent.pid()
        uids, gids = proc_ids(pid)
        self.assertEqual(set(uids), {NONROOT}, "uids %r" % uids)
        self.assertEqual(set(gids), {NONROOT}, "gids %r" % gids)
        self.assertEqual(cap_eff(pid), 0, "effective capabilities")
        self.assertIn("ro", root_mount_options(pid), "root filesystem must be read-only")
        self.assertTrue(agent.inspect()["HostConfig"]["ReadonlyRootfs"])

        # A reading above the threshold raises an alert that reaches the console.
        def received():
            harness.publish(mq.port, "sensors/probe/level", "1")
            status, body = harness.http_request(agent_url + "/metrics")[:2]
            m = harness.parse_prometheus(body.decode())
            return sum(v for (n, _), v in m.items()
                       if n == "edge_agent_readings_received_total") > 0

        harness.wait_until(received, 20, 0.5, "the agent to receive readings")
        harness.publish(mq.port, "sensors/boiler/temp",
                        harness.reading(80, harness.now_ms()))

        def alert_at_console():
            status, alerts = console_get("/v1/alerts?node=%s" % NODE)
            return status == 200 and [a for a in alerts if a["rule"] == "overheat"]

        alerts = harness.wait_until(alert_at_console, 20, 0.3, "the alert at the console")
        self.assertEqual(alerts[0]["sensor"], "sensors/boiler/temp")
        self.assertEqual(alerts[0]["state"], "firing")
        status, nodes = console_get("/v1/nodes")
        self.assertEqual(status, 200)
        seen = {n["node"]: n for n in nodes}
        self.assertIsNotNone(seen[NODE]["last_seen_ms"])

        # The database is on the mounted volume, written as 65532.
        db = os.path.join(data, "edge-agent.db")
        self.assertTrue(os.path.exists(db), os.listdir(data))
        self.assertEqual(os.stat(db).st_uid, NONROOT)

        # Logs are JSON lines on stdout.
        lines = [l for l in agent.logs().splitlines() if l.strip()]
        self.assertTrue(lines)
        for line in lines:
            json.loads(line)

        # podman stop sends SIGTERM: the agent drains and exits 0 within its 5 s drain
        # (podman would SIGKILL after 10 s).
        start = time.monotonic()
        podman("stop", "-t", "10", agent.name, timeout=30)
        took = time.monotonic() - start
        state = agent.inspect()["State"]
        self.assertEqual(state["ExitCode"], 0, "exit code after podman stop")
        self.assertLess(took, 6.0, "stop took %.1fs" % took)
        sys.stderr.write("podman stop: exit %d after %.2fs\n" % (state["ExitCode"], took))


if __name__ == "__main__":
    harness.main()
