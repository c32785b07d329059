"""Kubeconfig reading (as kubectl reads it) and writing (files real kubectl accepts)."""

import asyncio
import base64
import os
import shutil
import ssl

import orjson
import pytest
import yaml

from client.kubeconfig import Config, ConfigError, load_connection, write_kubeconfig


def write_yaml(path, doc):
    path.write_text(yaml.safe_dump(doc))
    return path


def two_context_doc(token="tok-a"):
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "a",
        "clusters": [
            {"name": "ca", "cluster": {"server": "https://127.0.0.1:6443/",
                                       "certificate-authority": "pki/ca.crt"}},
            {"name": "cb", "cluster": {"server": "http://127.0.0.1:8080", "insecure-skip-tls-verify": True}},
        ],
        "users": [
            {"name": "ua", "user": {"token": token}},
            {"name": "ub", "user": {"client-certificate-data": base64.b64encode(b"CERT").decode(),
                                    "client-key-data": base64.b64encode(b"KEY").decode()}},
            {"name": "uc", "user": {"username": "admin", "password": "secret"}},
        ],
        "contexts": [
            {"name": "a", "context": {"cluster": "ca", "user": "ua", "namespace": "team"}},
            {"name": "b", "context": {"cluster": "cb", "user": "ub"}},
            {"name": "c", "context": {"cluster": "cb", "user": "uc"}},
            {"name": "dangling", "context": {"cluster": "nope", "user": "ua"}},
        ],
    }


async def test_current_context_resolves_cluster_user_and_namespace(tmp_path):
    path = write_yaml(tmp_path / "config", two_context_doc())
    conn = Config.load(path).for_context()
    assert conn.server == "https://127.0.0.1:6443"
    assert conn.namespace == "team"
    assert conn.token == "tok-a"
    assert conn.ca_file == str(tmp_path / "pki" / "ca.crt"), "relative paths are relative to the file"
    assert conn.is_tls


@pytest.mark.parametrize(("context", "expect"), [
    ("b", {"namespace": "default", "insecure_skip_tls_verify": True, "client_cert_data": b"CERT",
           "client_key_data": b"KEY", "token": None}),
    ("c", {"username": "admin", "password": "secret", "server": "http://127.0.0.1:8080"}),
])
async def test_named_contexts(tmp_path, context, expect):
    path = write_yaml(tmp_path / "config", two_context_doc())
    conn = load_connection(path, context)
    for attr, value in expect.items():
        assert getattr(conn, attr) == value, attr


@pytest.mark.parametrize(("context", "message"), [
    ("missing", 'context "missing" not found'),
    ("dangling", 'cluster "nope" not found'),
])
async def test_unknown_names_are_clear_errors(tmp_path, context, message):
    path = write_yaml(tmp_path / "config", two_context_doc())
    with pytest.raises(ConfigError, match=message):
        Config.load(path).for_context(context)


async def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        Config.load(tmp_path / "nope")


async def test_kubeconfig_env_merges_first_file_wins(tmp_path, monkeypatch):
    first = write_yaml(tmp_path / "one", {
        "clusters": [{"name": "ca", "cluster": {"server": "https://first:1"}}],
        "users": [], "contexts": [{"name": "a", "context": {"cluster": "ca", "user": "ua"}}],
    })
    second = write_yaml(tmp_path / "two", two_context_doc(token="from-second"))
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(first), str(tmp_path / "absent"), str(second)]))
    cfg = Config.load()
    assert cfg.current_context == "a", "current-context comes from the first file that sets it"
    conn = cfg.for_context()
    assert conn.server == "https://first:1"
    assert conn.token == "from-second"
    assert set(cfg.contexts()) == {"a", "b", "c", "dangling"}


async def test_home_default_path(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".kube").mkdir()
    write_yaml(tmp_path / ".kube" / "config", two_context_doc(token="home"))
    assert Config.load().for_context().token == "home"


async def test_write_then_read_round_trip(tmp_path):
    path = write_kubeconfig(tmp_path / "out" / "kubeconfig", "https://127.0.0.1:7443", token="t0k",
                            ca_data=b"-----BEGIN CERTIFICATE-----\n", namespace="dev")
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    conn = Config.load(path).for_context()
    assert (conn.server, conn.token, conn.namespace, conn.context) == (
        "https://127.0.0.1:7443", "t0k", "dev", "navarch")
    assert conn.ca_data == b"-----BEGIN CERTIFICATE-----\n"


async def test_set_and_use_context_edits(tmp_path):
    path = write_yaml(tmp_path / "config", two_context_doc())
    cfg = Config.load(path)
    cfg.set_context("a", namespace="other")
    cfg.set_context("new", cluster="cb", user="ua")
    cfg.use_context("new")
    with pytest.raises(ConfigError):
        cfg.use_context("ghost")
    cfg.save()
    again = Config.load(path)
    assert again.current_context == "new"
    assert again.for_context("a").namespace == "other"
    assert again.for_context("a").token == "tok-a", "editing a context keeps its other fields"
    assert again.for_context().server == "http://127.0.0.1:8080"
    again.set_context("a", namespace="")
    assert again.for_context("a").namespace == "default"


async def test_ssl_settings():
    from client.kubeconfig import ConnectionConfig

    assert ConnectionConfig(server="http://127.0.0.1:1").ssl_context() is None
    assert ConnectionConfig(server="https://127.0.0.1:1", insecure_skip_tls_verify=True).ssl_context() is False
    ctx = ConnectionConfig(server="https://127.0.0.1:1").ssl_context()
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED


async def _run(*argv):
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_real_kubectl_reads_what_we_write_and_we_read_what_it_writes(tmp_path):
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kubectl is required")
        pytest.skip("kubectl not installed")
    path = write_kubeconfig(tmp_path / "kc", "https://127.0.0.1:7443", token="abc", namespace="ns1",
                            insecure_skip_tls_verify=True)
    view = orjson.loads(await _run(kubectl, "--kubeconfig", str(path), "config", "view", "--raw", "-o", "json"))
    assert view["current-context"] == "navarch"
    assert view["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:7443"
    assert view["users"][0]["user"]["token"] == "abc"
    assert (await _run(kubectl, "--kubeconfig", str(path), "config", "view", "--minify", "-o",
                       "jsonpath={.contexts[0].context.namespace}")) == "ns1"
    await _run(kubectl, "--kubeconfig", str(path), "config", "set-context", "other", "--cluster=navarch",
               "--user=navarch-admin", "--namespace=ns2")
    await _run(kubectl, "--kubeconfig", str(path), "config", "use-context", "other")
    conn = Config.load(path).for_context()
    assert (conn.context, conn.namespace, conn.token, conn.insecure_skip_tls_verify) == (
        "other", "ns2", "abc", True)


async def test_in_cluster_service_account(tmp_path, monkeypatch):
    from client.kubeconfig import default_connection, in_cluster

    sa = tmp_path / "sa"
    sa.mkdir()
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    with pytest.raises(ConfigError, match="no service account token"):
        in_cluster(sa, env)
    (sa / "token").write_text("sa-token\n")
    (sa / "namespace").write_text("apps")
    (sa / "ca.crt").write_text("CA")
    conn = in_cluster(sa, env)
    assert (conn.server, conn.namespace, conn.bearer_token(), conn.ca_file) == (
        "https://10.96.0.1:443", "apps", "sa-token", str(sa / "ca.crt"))
    assert in_cluster(sa, {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}).server == \
        "https://[fd00::1]:443"
    with pytest.raises(ConfigError, match="not in a cluster"):
        in_cluster(sa, {})
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "nohome"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigError, match="not in a cluster"):
        default_connection()
    write_yaml(tmp_path / "kc", two_context_doc())
    assert default_connection(tmp_path / "kc").token == "tok-a"
