"""``navctl`` entry point: ``main(argv) -> int``, runnable as ``python -m cli``.

Flags kubectl users put anywhere (``-n``, ``--kubeconfig``, ``--context``, ``-s``,
``--request-timeout``) are accepted before or after the verb. Errors print the way kubectl prints
them (``Error from server (NotFound): pods "x" not found``, ``error: ...``) and exit non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import TextIO
from urllib.parse import urlsplit

import aiohttp

from api import errors
from cli import (
    cmd_apply,
    cmd_config,
    cmd_create,
    cmd_delete,
    cmd_get,
    cmd_info,
    cmd_modify,
    cmd_rollout,
    cmd_whypending,
    describe,
)
from cli.context import CLIError, Ctx, Failed, normalize_argv
from client.kubeconfig import ConfigError

MODULES = (cmd_get, cmd_apply, describe, cmd_delete, cmd_create, cmd_modify, cmd_rollout, cmd_info,
           cmd_config, cmd_whypending)


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        raise CLIError(message)


def build_parser() -> Parser:
    common = Parser(add_help=False)
    s = argparse.SUPPRESS
    common.add_argument("-n", "--namespace", default=s, help="the namespace scope for this request")
    common.add_argument("--kubeconfig", default=s, help="path to the kubeconfig file")
    common.add_argument("--context", default=s, help="the kubeconfig context to use")
    common.add_argument("-s", "--server", default=s, help="the address of the API server")
    common.add_argument("--request-timeout", default=s,
                        help="how long to wait for a server response (e.g. 30s); 0 waits forever")
    parser = Parser(prog="navctl", parents=[common],
                    description="navctl controls a Navarch (Kubernetes-compatible) cluster.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in MODULES:
        module.register(sub, common)
    return parser


def parse(parser: Parser, argv: list[str]) -> argparse.Namespace:
    """Parse like kubectl: positional arguments may come after flags (``label cm -l a=b k=v``).

    argparse fills a ``*`` positional from the first run of positionals only; the rest come back
    as extras and are appended to the command's positional list, in order."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        flags = [x for x in extras if x.startswith("-") and x != "-"]
        if flags:
            raise CLIError(f"unknown flag: {flags[0]}")
        for dest in ("targets", "args", "names", "command"):
            value = getattr(args, dest, None)
            if isinstance(value, list):
                value.extend(extras)
                break
        else:
            raise CLIError(f"unrecognized arguments: {' '.join(extras)}")
    return args


def format_status(e: errors.StatusError) -> str:
    if e.reason == "Invalid":
        return f"The {e.message}"
    return f"Error from server ({e.reason}): {e.message}"


async def _run(args: argparse.Namespace, out: TextIO, err: TextIO, inp: TextIO) -> int:
    ctx = Ctx(args, out, err, inp)
    try:
        return int(await args.func(ctx) or 0)
    except Failed as e:
        return e.code
    except CLIError as e:
        err.write(f"error: {e.message}\n")
        return e.code
    except errors.StatusError as e:
        err.write(format_status(e) + "\n")
        return 1
    except ConfigError as e:
        err.write(f"error: {e}\n")
        return 1
    except BrokenPipeError:
        raise
    except (aiohttp.ClientConnectionError, ConnectionError, OSError) as e:
        server = ctx._conn.server if ctx._conn else ctx.opt("server", "")
        netloc = urlsplit(server).netloc or server
        if isinstance(e, aiohttp.ClientConnectorError | ConnectionRefusedError):
            err.write(f"The connection to the server {netloc} was refused - did you specify the right "
                      "host or port?\n")
        else:
            err.write(f"error: {e}\n")
        return 1
    except TimeoutError:
        err.write("error: timed out waiting for the server\n")
        return 1
    finally:
        await ctx.close()


def main(argv: list[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None,
         stdin: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    inp = stdin or sys.stdin
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parse(parser, normalize_argv(argv))
    except CLIError as e:
        err.write(f"error: {e.message}\n")
        return 1
    except SystemExit as e:  # --help
        return int(e.code or 0)
    if not getattr(args, "func", None):
        out.write(parser.format_help())
        return 0
    try:
        return asyncio.run(_run(args, out, err, inp))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (``navctl get ... | head``): stop quietly, as kubectl does.
        if out is sys.stdout:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
