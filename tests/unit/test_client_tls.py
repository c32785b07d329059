"""TLS from a kubeconfig: CA trust, client certificates and insecure-skip-tls-verify, against an
HTTPS server with certificates made by the real openssl."""

import asyncio
import os
import shutil
import ssl

import aiohttp
import pytest
from aiohttp import web

from api import errors
from client.kubeconfig import write_kubeconfig
from client.rest import Client


async def openssl(*args, cwd):
    proc = await asyncio.create_subprocess_exec("openssl", *args, cwd=cwd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()


async def issue(cwd, name, cn, ext=None):
    await openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=cwd)
    args = ["x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "1"]
    if ext:
        (cwd / f"{name}.ext").write_text(ext)
        args += ["-extfile", f"{name}.ext"]
    await openssl(*args, cwd=cwd)


@pytest.fixture
async def pki(tmp_path):
    if shutil.which("openssl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("openssl is required")
        pytest.skip("openssl not installed")
    await openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=test-ca", cwd=tmp_path)
    await issue(tmp_path, "server", "127.0.0.1", "subjectAltName=IP:127.0.0.1\n")
    await issue(tmp_path, "client", "admin")
    return tmp_path


@pytest.fixture
async def https_server(pki):
    seen = []

    async def handler(request):
        peer = request.transport.get_extra_info("peercert") or {}
        subject = dict(x[0] for x in peer.get("subject", ()))
        seen.append(subject.get("commonName"))
        if request.match_info["name"] == "missing":
            raise web.HTTPNotFound(text='{"kind":"Status","code":404,"reason":"NotFound","message":"nope"}',
                                   content_type="application/json")
        return web.json_response({"kind": "Namespace", "metadata": {"name": request.match_info["name"]}})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{name}", handler)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki / "server.crt", pki / "server.key")
    ctx.load_verify_locations(pki / "ca.crt")
    ctx.verify_mode = ssl.CERT_OPTIONAL
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    yield f"https://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_ca_data_and_client_certificate_from_kubeconfig(pki, https_server):
    url, seen = https_server
    path = write_kubeconfig(pki / "kc", url, ca_data=(pki / "ca.crt").read_bytes(),
                            client_cert_data=(pki / "client.crt").read_bytes(),
                            client_key_data=(pki / "client.key").read_bytes())
    async with await Client.from_kubeconfig(path) as client:
        assert (await client.get("namespaces", "default"))["metadata"]["name"] == "default"
        with pytest.raises(errors.NotFound):
            await client.get("namespaces", "missing")
    assert seen[0] == "admin", "the server saw our client certificate"


async def test_ca_file_paths_and_untrusted_servers(pki, https_server):
    url, seen = https_server
    trusted = write_kubeconfig(pki / "kc-file", url, ca_file="ca.crt")  # relative to the kubeconfig
    async with await Client.from_kubeconfig(trusted) as client:
        await client.get("namespaces", "x")
    assert seen == [None], "no client certificate configured, none presented"
    untrusted = write_kubeconfig(pki / "kc-none", url)
    async with await Client.from_kubeconfig(untrusted) as client:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await client.get("namespaces", "x")
    insecure = write_kubeconfig(pki / "kc-insecure", url, insecure_skip_tls_verify=True)
    async with await Client.from_kubeconfig(insecure) as client:
        await client.get("namespaces", "x")
