"""The `ccs` command: case managers' and supervisors' tool. Every verb has --json."""

from __future__ import annotations

import argparse
import asyncio
import os
import json
import logging
import sys

from starters.client import CcsError
from starters.console import emit as _emit, load_settings as _settings, open_cases as _cases  # noqa: F401
from starters.console import render, render_request, render_status  # noqa: F401 (tests read them here)


async def cmd_reindex(args) -> None:
    from activities.db import make_engine, session_factory
    from starters.identity import reindex
    from starters.supervisor import database_url_for_cli

    settings = _settings()
    cases = await _cases(settings)
    engine = make_engine(database_url_for_cli(settings), pool_size=2)
    try:
        counts = await reindex(cases, session_factory(engine))
    finally:
        await engine.dispose()
    _emit(args, counts, f"{counts['cases']} open cases indexed, {counts['keys_added']} identity keys added")


async def cmd_up(args) -> None:
    from starters.up import up

    await up(_settings(), demo=args.demo)


async def cmd_worker(args) -> None:
    from workers.stack import worker

    await worker(_settings())


async def cmd_codec_server(args) -> None:
    from starters.up import codec_server

    await codec_server(_settings())


async def cmd_migrate(args) -> None:
    from workers.stack import migrate

    settings = _settings()
    if not settings.database_url:
        raise CcsError("`ccs migrate` needs DATABASE_URL (`ccs up` migrates the embedded database itself)")
    await migrate(settings.database_url)
    _emit(args, {"migrated": True}, "migrations applied")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ccs", description="California Children's Services case orchestrator")
    sub = p.add_subparsers(dest="verb", required=True)

    def verb(name: str, fn, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.add_argument("--json", action="store_true", help="one JSON document on stdout")
        sp.set_defaults(fn=fn)
        return sp

    verb("up", cmd_up, "run the whole stack on this machine").add_argument(
        "--demo", action="store_true", help="add demo people (passwords printed once) and synthetic children")
    verb("worker", cmd_worker, "run a worker against the configured services")
    verb("codec-server", cmd_codec_server, "run the codec server for the Web UI and CLI")
    verb("migrate", cmd_migrate, "apply database migrations to DATABASE_URL")
    verb("reindex", cmd_reindex, "add open cases to the identity index (cases opened before it existed)")
    from starters.api import cli_verbs

    cli_verbs.add_verbs(verb)  # sign-in, users, and the person verbs: clients of the HTTP API
    from starters import records

    records.add_verbs(verb)
    from starters import letters

    letters.add_verbs(verb)
    from starters import counties

    counties.add_verbs(verb)
    from starters import policy_cli

    policy_cli.add_verbs(verb)
    return p


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    try:
        asyncio.run(args.fn(args))
    except CcsError as e:
        if getattr(args, "json", False):
            print(json.dumps(e.to_json(), indent=2))
        else:
            print(f"error: {e.message}", file=sys.stderr)
            for field, msg in e.fields.items():
                print(f"  {field}: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `ccs show ... | head`
        return 0
    return 0


def entry() -> None:
    """Console entry point. Exits without interpreter teardown: the Temporal client's native
    runtime threads can crash a finalizing interpreter after the work is done."""
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
