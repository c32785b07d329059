"""Done-when scenario: ``navarch crictl`` pulls the test image from the local registry, runs a pod
serving HTTP with busybox httpd, and a second pod fetches from it by pod IP."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import yaml

from tests.runtime.test_crictl import crictl, out
from tests.runtime.test_service_runc import RuncEnv, require_runc_env

PAGE = "hello from navarch httpd"


@pytest.fixture
async def env(tmp_path, registry):
    require_runc_env()
    e = RuncEnv(tmp_path, registry.address)
    try:
        yield e
    finally:
        await e.cleanup()


def pod_config(tmp_path, name: str) -> str:
    path = tmp_path / f"{name}-pod.yaml"
    path.write_text(yaml.safe_dump({
        "metadata": {"name": name, "namespace": "default", "uid": f"{name}-uid", "attempt": 0},
        "hostname": name, "log_directory": str(tmp_path / "logs" / name), "linux": {}}))
    return str(path)


def container_config(tmp_path, name: str, image: str, command: list[str]) -> str:
    path = tmp_path / f"{name}-ctr.json"
    path.write_text(orjson.dumps({"metadata": {"name": name}, "image": {"image": image},
                                  "command": command, "log_path": f"{name}.log", "linux": {}}).decode())
    return str(path)


async def test_pod_fetches_from_httpd_pod_by_ip(env, busybox_image, tmp_path):
    env.start()
    ep = env.proc.endpoint

    def run(*args: str, check: bool = True):
        return asyncio.to_thread(crictl, ep, *args, check=check)

    assert out(await run("pull", busybox_image)).startswith("Image is up to date for sha256:")
    assert busybox_image.rsplit(":", 1)[0] in out(await run("images"))

    server_pod_cfg = pod_config(tmp_path, "server")
    server_pod = out(await run("runp", server_pod_cfg)).strip()
    serve = f"mkdir -p /www && echo '{PAGE}' > /www/index.html && exec httpd -f -p 80 -h /www"
    server = out(await run("create", server_pod, container_config(tmp_path, "httpd", busybox_image,
                                                                  ["sh", "-c", serve]), server_pod_cfg)).strip()
    await run("start", server)

    client_pod_cfg = pod_config(tmp_path, "client")
    client_pod = out(await run("runp", client_pod_cfg)).strip()
    client = out(await run("create", client_pod, container_config(tmp_path, "client", busybox_image,
                                                                  ["sleep", "1000"]), client_pod_cfg)).strip()
    await run("start", client)
    assert sorted(out(await run("ps", "-q")).split()) == sorted([server, client])

    server_ip = orjson.loads((await run("inspectp", server_pod)).stdout)["status"]["network"]["ip"]
    client_ip = orjson.loads((await run("inspectp", client_pod)).stdout)["status"]["network"]["ip"]
    assert server_ip and client_ip and server_ip != client_ip

    # httpd may still be binding its port: retry a few times (a bound against a hang, no timing check).
    for _ in range(50):
        fetched = await run("exec", "-s", client, "wget", "-q", "-O", "-", f"http://{server_ip}/",
                            check=False)
        if fetched.returncode == 0:
            break
        await asyncio.sleep(0.2)
    assert fetched.returncode == 0, fetched.stderr
    assert out(fetched) == PAGE + "\n"
    # The same through the streaming exec endpoint.
    streamed = await run("exec", client, "wget", "-q", "-O", "-", f"http://{server_ip}/")
    assert out(streamed) == PAGE + "\n"
    failed = await run("exec", client, "sh", "-c", "exit 5", check=False)
    assert failed.returncode == 5

    for pod in (client_pod, server_pod):
        assert out(await run("stopp", pod)).strip() == f"Stopped sandbox {pod}"
        assert out(await run("rmp", pod)).strip() == f"Removed sandbox {pod}"
    assert out(await run("pods", "-q")).split() == []
    assert out(await run("ps", "-a", "-q")).split() == []


async def test_crictl_exec_with_stdin_and_logs(env, busybox_image, tmp_path):
    env.start()
    ep = env.proc.endpoint

    def run(*args: str, check: bool = True, stdin: bytes | None = None):
        return asyncio.to_thread(crictl, ep, *args, check=check, stdin=stdin)

    await run("pull", busybox_image)
    pod_cfg = pod_config(tmp_path, "talker")
    pod = out(await run("runp", pod_cfg)).strip()
    ctr = out(await run("create", pod, container_config(
        tmp_path, "talker", busybox_image, ["sh", "-c", "echo first; echo second >&2; exec sleep 1000"]),
        pod_cfg)).strip()
    await run("start", ctr)
    echoed = await run("exec", "-i", ctr, "sh", "-c", "tr a-z A-Z", stdin=b"shout this\n")
    assert out(echoed) == "SHOUT THIS\n"
    for _ in range(50):
        logs = await run("logs", ctr)
        if logs.stderr:
            break
        await asyncio.sleep(0.2)
    assert (out(logs), logs.stderr) == ("first\n", b"second\n")
    await run("stop", "-t", "0", ctr)
    # -f returns once the container has exited; --tail counts lines of both streams.
    tailed = await run("logs", "-f", "--tail", "1", ctr)
    assert (out(tailed), tailed.stderr) == ("", b"second\n")
    await run("rmp", "-f", pod)
