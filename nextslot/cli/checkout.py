"""The commands that run what the source checkout keeps beside the package (evals/): bench, eval."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from nextslot.cli.common import add_command, refuse
from nextslot.settings import Settings


def source_checkout() -> bool:
    """Make the checkout's `evals/` importable: benchmarks and scenario evals are not part of the installed package.

    They live beside `nextslot/` in a git clone (an editable install); an installed wheel has no `evals/`.
    """
    try:
        import evals  # noqa: F401 - already importable (tests, or run from the checkout's root)
        return True
    except ImportError:
        root = Path(__file__).resolve().parents[2]
        if not (root / "evals" / "__init__.py").is_file():
            return False
        sys.path.append(str(root))
        return True


def no_checkout(command: str) -> int:
    return refuse("needs_source_checkout", f"`nextslot {command}` runs the benchmarks and evals kept in the source "
                                           "checkout's evals/ folder (git clone, then pip install -e '.[test]').")


def cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    if not source_checkout():
        return no_checkout("bench")
    if args.suite == "load":
        try:
            from evals.bench_load import run_bench_load
        except ImportError as missing:  # its SMTP server (aiosmtpd) comes with the test extra
            return refuse("missing_dependency", f"`nextslot bench load` needs {missing.name}: "
                                                "pip install -e '.[test]'")
        return run_bench_load(settings, quick=args.quick, faults=not args.no_faults, servers=args.servers,
                              json_path=Path(args.json) if args.json else None,
                              log_dir=Path(args.logs) if args.logs else None, channel=args.channel)
    if args.suite == "chat":
        from evals.bench_chat import run_bench_chat

        return run_bench_chat(settings, quick=args.quick)
    if args.suite == "tools":
        from evals.bench_tools import run_bench_tools

        return run_bench_tools(settings, quick=args.quick)
    if args.suite == "rival":
        if not args.floyd:
            return refuse("missing_floyd", "`nextslot bench rival` needs --floyd URL: a Floyd Engine you started on "
                                           "the same PostgreSQL server (see the README).", "floyd")
        from evals.bench_rival import run_bench_rival

        return run_bench_rival(settings, args.floyd, args.floyd_key, quick=args.quick)
    if args.suite == "capacity":
        from evals.bench_capacity import run_bench_capacity

        return run_bench_capacity(settings, quick=args.quick)
    from evals.bench_core import run_bench_core

    return run_bench_core(settings, quick=args.quick)


def cmd_eval(settings: Settings, args: argparse.Namespace) -> int:
    if not source_checkout():
        return no_checkout("eval")
    json_path = Path(args.json) if args.json else None
    if (args.base_url or args.api_key) and not args.model:
        return refuse("missing_model", "A live run needs --model (the name the endpoint knows the model by).",
                      "model")
    try:
        if args.chats:
            from evals.chat_evals import LiveModel, run_chat_evals

            live = LiveModel(args.model, args.base_url or os.environ.get("OPENAI_BASE_URL"),
                             args.api_key or os.environ.get("OPENAI_API_KEY"), args.timeout) if args.model else None
            return run_chat_evals(settings, only=args.only, json_path=json_path, live=live)
        if args.model:
            from evals.live_agent import Endpoint, EndpointError, run_live_evals

            endpoint = Endpoint(args.model, args.base_url, args.api_key or os.environ.get("OPENAI_API_KEY"),
                                timeout=args.timeout)
            try:
                return run_live_evals(settings, endpoint, only=args.only, json_path=json_path)
            except EndpointError as error:
                return refuse(error.code, error.message)
        from evals.agent_evals import run_evals

        return run_evals(settings, only=args.only, json_path=json_path)
    except LookupError as error:
        return refuse("unknown_scenario", str(error))


def register(sub) -> None:
    # both make throwaway databases of their own
    p = add_command(sub, "bench", cmd_bench, "benchmarks", needs_schema=False)
    p.add_argument("suite", choices=["core", "tools", "load", "chat", "capacity", "rival"])
    p.add_argument("--quick", action="store_true", help="smaller data and fewer samples (a smoke run)")
    p.add_argument("--no-faults", action="store_true", help="load: no killed server, dropped connections or "
                                                            "Twilio trouble")
    p.add_argument("--servers", type=int, default=2, choices=range(2, 9), metavar="N",
                   help="load: how many `nextslot serve` processes (default 2)")
    p.add_argument("--json", help="load: also write the results to this file")
    p.add_argument("--logs", help="load: keep each server's and scheduler's output in this folder")
    p.add_argument("--channel", choices=["mcp", "page", "staff"],
                   help="load: only this channel's steady clients, no bursts (what one channel costs)")
    p.add_argument("--floyd", help="rival: the address of a Floyd Engine running on this machine, e.g. "
                                   "http://127.0.0.1:4000")
    p.add_argument("--floyd-key", help="rival: its FLOYD_API_KEY, if it was started with one")
    p = add_command(sub, "eval", cmd_eval, "agent scenario evals through the real tools, scored from the database "
                    "(a throwaway one): a scripted agent, or a live model with --model", needs_schema=False)
    p.add_argument("--only", help="run one scenario, by name")
    p.add_argument("--chats", action="store_true", help="the conversation scenarios (evals/chats): chats over "
                                                        "WhatsApp and SMS through the engine and the outbox")
    p.add_argument("--json", help="where to write the results (default: artifacts/agent_evals.json, "
                                  "artifacts/agent_evals_live.json for a live model)")
    p.add_argument("--model", help="play the agent with this model over an OpenAI-compatible chat completions "
                                   "endpoint, letting it choose the tools")
    p.add_argument("--base-url", help="the endpoint, e.g. http://127.0.0.1:11434/v1 (Ollama), "
                                      "http://127.0.0.1:8000/v1 (vLLM) (default: $OPENAI_BASE_URL, else OpenAI)")
    p.add_argument("--api-key", help="the endpoint's API key (default: $OPENAI_API_KEY; local servers need none)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for one model reply (default 120)")
