"""``navarch crictl`` against a hollow runtime process: verbs, flags, config files and output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from runtime.crictl import human_duration, human_size, parse_cri_log_line
from tests.runtime.test_service import REPO, start_runtime


@pytest.fixture
def endpoint(tmp_path):
    rp = start_runtime(tmp_path / "root")
    try:
        yield rp.endpoint
    finally:
        rp.stop(signal.SIGKILL)


def crictl(endpoint: str | None, *args: str, check: bool = True, env: dict | None = None,
           stdin: bytes | None = None) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-c", "import sys, runtime.crictl as c; sys.exit(c.main(sys.argv[1:]))"]
    if endpoint:
        argv += ["--runtime-endpoint", endpoint]
    argv += ["--timeout", "120"]     # a loaded test machine can be slow; this bounds hangs only
    proc = subprocess.run(argv + list(args), cwd=REPO, capture_output=True, timeout=120,
                          env={**os.environ, **(env or {})}, input=stdin)
    if check and proc.returncode != 0:
        raise AssertionError(f"crictl {args} failed ({proc.returncode}): {proc.stderr.decode()}")
    return proc


def out(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout.decode()


def rows(text: str) -> list[list[str]]:
    """A crictl table as rows of cells (cells are separated by three or more spaces)."""
    import re
    return [re.split(r" {3,}", line.strip()) for line in text.strip().splitlines()]


def write_configs(tmp_path: Path, name: str = "web") -> tuple[Path, Path]:
    pod = tmp_path / f"{name}-pod.yaml"
    pod.write_text(yaml.safe_dump({
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "attempt": 1},
        "log_directory": str(tmp_path / "logs" / name), "labels": {"app": name},
        "linux": {}}))
    ctr = tmp_path / f"{name}-ctr.json"
    ctr.write_text(orjson.dumps({
        "metadata": {"name": "main"}, "image": {"image": "busybox"},
        "command": ["httpd", "-f", "-p", "80"], "log_path": "main/0.log", "linux": {}}).decode())
    return pod, ctr


@pytest.mark.parametrize(("seconds", "want"), [
    (0.2, "Less than a second"), (1, "1 second"), (42, "42 seconds"), (61, "About a minute"),
    (300, "5 minutes"), (3600, "About an hour"), (7200, "2 hours"), (3 * 86400, "3 days")])
def test_human_duration(seconds, want):
    assert human_duration(seconds) == want


@pytest.mark.parametrize(("size", "want"), [(0, "0B"), (999, "999B"), (1234, "1.23kB"),
                                            (4_260_000, "4.26MB"), (123_400_000, "123MB")])
def test_human_size(size, want):
    assert human_size(size) == want


def test_parse_cri_log_line():
    assert parse_cri_log_line(b"2026-01-01T00:00:00.1Z stdout F hello world\n") == (
        "2026-01-01T00:00:00.1Z", "stdout", True, b"hello world")
    assert parse_cri_log_line(b"2026-01-01T00:00:00.1Z stderr P part") == (
        "2026-01-01T00:00:00.1Z", "stderr", False, b"part")
    assert parse_cri_log_line(b"2026-01-01T00:00:00.1Z stdout F\n") == ("2026-01-01T00:00:00.1Z", "stdout", True, b"")


def test_pod_and_container_workflow(endpoint, tmp_path):
    assert "RuntimeName:  navarch" in out(crictl(endpoint, "version"))
    info = orjson.loads(crictl(endpoint, "info").stdout)
    assert {c["type"] for c in info["status"]["conditions"]} == {"RuntimeReady", "NetworkReady"}

    assert out(crictl(endpoint, "pull", "--creds", "user:secret", "busybox")).startswith(
        "Image is up to date for sha256:")
    table = rows(out(crictl(endpoint, "images")))
    assert table[0] == ["IMAGE", "TAG", "IMAGE ID", "SIZE"]
    assert table[1][:2] == ["docker.io/library/busybox", "latest"] and len(table[1][2]) == 13
    inspecti = orjson.loads(crictl(endpoint, "inspecti", "busybox").stdout)
    assert inspecti["status"]["repoTags"] == ["docker.io/library/busybox:latest"] and "info" in inspecti
    assert crictl(endpoint, "inspecti", "absent:1", check=False).returncode == 1
    fsinfo = orjson.loads(crictl(endpoint, "imagefsinfo").stdout)
    assert int(fsinfo["status"]["imageFilesystems"][0]["usedBytes"]["value"]) > 0
    image_id = out(crictl(endpoint, "images", "-q")).strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71

    pod_cfg, ctr_cfg = write_configs(tmp_path)
    pod = out(crictl(endpoint, "runp", str(pod_cfg))).strip()
    assert len(pod) == 64
    table = rows(out(crictl(endpoint, "pods")))
    assert table[0] == ["POD ID", "CREATED", "STATE", "NAME", "NAMESPACE", "ATTEMPT", "RUNTIME"]
    assert table[1][0] == pod[:13] and table[1][2:] == ["Ready", "web", "default", "1", "(default)"]
    assert out(crictl(endpoint, "pods", "-q", "--name", "we")).split() == [pod]
    assert out(crictl(endpoint, "pods", "-q", "--name", "nomatch")).split() == []
    assert out(crictl(endpoint, "pods", "-q", "--state", "notready")).split() == []

    inspectp = orjson.loads(crictl(endpoint, "inspectp", pod[:8]).stdout)
    assert inspectp["status"]["state"] == "SANDBOX_READY" and inspectp["status"]["network"]["ip"]
    assert inspectp["status"]["createdAt"].endswith("Z")

    ctr = out(crictl(endpoint, "create", pod[:10], str(ctr_cfg), str(pod_cfg))).strip()
    assert len(ctr) == 64
    assert out(crictl(endpoint, "ps", "-q")).split() == []
    assert out(crictl(endpoint, "ps", "-a", "-q")).split() == [ctr]
    assert out(crictl(endpoint, "start", ctr[:12])).strip() == ctr[:12]
    table = rows(out(crictl(endpoint, "ps")))
    assert table[0] == ["CONTAINER", "IMAGE", "CREATED", "STATE", "NAME", "ATTEMPT", "POD ID", "POD"]
    assert table[1][0] == ctr[:13] and table[1][3:] == ["Running", "main", "0", pod[:13], "web"]

    inspect = orjson.loads(crictl(endpoint, "inspect", ctr).stdout)
    assert inspect["status"]["state"] == "CONTAINER_RUNNING"
    assert inspect["status"]["logPath"] == str(tmp_path / "logs" / "web" / "main" / "0.log")
    assert inspect["info"]["sandboxID"] == pod
    assert yaml.safe_load(crictl(endpoint, "inspect", "-o", "yaml", ctr).stdout)["status"]["id"] == ctr

    sync = crictl(endpoint, "exec", "-s", ctr, "ls", "/")
    assert sync.returncode == 0
    streamed = crictl(endpoint, "exec", ctr, "ls", "/")
    assert streamed.returncode == 0
    assert crictl(endpoint, "attach", ctr).returncode == 0

    stats = rows(out(crictl(endpoint, "stats", "--seconds", "0.1")))
    assert stats[0] == ["CONTAINER", "NAME", "CPU %", "MEM", "DISK", "INODES"] and stats[1][:2] == [ctr[:13], "main"]

    assert out(crictl(endpoint, "stop", "-t", "2", ctr)).strip() == ctr
    assert rows(out(crictl(endpoint, "ps", "-a")))[1][3] == "Exited"
    assert out(crictl(endpoint, "ps", "-a", "-q", "--state", "exited")).split() == [ctr]
    assert out(crictl(endpoint, "rm", ctr)).strip() == ctr
    assert out(crictl(endpoint, "ps", "-a", "-q")).split() == []

    assert out(crictl(endpoint, "stopp", pod)).strip() == f"Stopped sandbox {pod}"
    assert rows(out(crictl(endpoint, "pods")))[1][2] == "NotReady"
    assert out(crictl(endpoint, "rmp", pod)).strip() == f"Removed sandbox {pod}"
    assert out(crictl(endpoint, "pods", "-q")).split() == []

    assert "Deleted: docker.io/library/busybox:latest" in out(crictl(endpoint, "rmi", "busybox"))
    assert out(crictl(endpoint, "images", "-q")).split() == []


def test_endpoint_from_environment_and_errors(endpoint, tmp_path):
    env = {"CONTAINER_RUNTIME_ENDPOINT": endpoint}
    assert "RuntimeApiVersion:  v1" in out(crictl(None, "version", env=env))
    missing = crictl(None, "inspect", "0" * 64, env=env, check=False)
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr.decode()
    bad = crictl(None, "pull", "Not A Ref", env=env, check=False)
    assert bad.returncode == 1 and "INVALID_ARGUMENT" in bad.stderr.decode()
    broken = tmp_path / "broken.json"
    broken.write_text('{"metadata": {"name": "x", "attempt": "many"}}')
    result = crictl(None, "runp", str(broken), env=env, check=False)
    assert result.returncode == 1 and "attempt" in result.stderr.decode()
    # Fields this runtime does not model are ignored, as crictl does.
    extra = tmp_path / "extra.json"
    extra.write_text('{"metadata": {"name": "x", "namespace": "default"}, "windows": {}, "linux": '
                     '{"security_context": {"namespace_options": {"network": 2}, "seccomp_profile_path": ""}}}')
    pod = out(crictl(None, "runp", str(extra), env=env)).strip()
    inspected = orjson.loads(crictl(None, "inspectp", pod, env=env).stdout)
    assert inspected["status"]["linux"]["namespaces"]["options"]["network"] == "NODE"


def test_logs(endpoint, tmp_path):
    crictl(endpoint, "pull", "busybox")
    pod_cfg, ctr_cfg = write_configs(tmp_path, "logger")
    pod = out(crictl(endpoint, "runp", str(pod_cfg))).strip()
    ctr = out(crictl(endpoint, "create", pod, str(ctr_cfg), str(pod_cfg))).strip()
    # The hollow driver writes no logs; write what a runc container would have.
    log = tmp_path / "logs" / "logger" / "main" / "0.log"
    log.parent.mkdir(parents=True)
    log.write_bytes(b"2026-01-01T00:00:00.000000001Z stdout F one\n"
                    b"2026-01-01T00:00:00.000000002Z stderr F oops\n"
                    b"2026-01-01T00:00:00.000000003Z stdout P tw\n"
                    b"2026-01-01T00:00:00.000000004Z stdout F o\n"
                    b"2026-01-01T00:00:00.000000005Z stdout F three\n")
    result = crictl(endpoint, "logs", ctr)
    assert out(result) == "one\ntwo\nthree\n" and result.stderr == b"oops\n"
    assert out(crictl(endpoint, "logs", "--tail", "1", ctr)) == "three\n"
    stamped = out(crictl(endpoint, "logs", "--timestamps", "--tail", "1", ctr))
    assert stamped == "2026-01-01T00:00:00.000000005Z three\n"
    # -f returns once the container is not running (it was never started).
    assert out(crictl(endpoint, "logs", "-f", ctr)) == "one\ntwo\nthree\n"
