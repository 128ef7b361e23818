"""``auditdm serve``: a model as an OpenAI-compatible server (``serve.py``)."""

from __future__ import annotations

import argparse


def _serve(args: argparse.Namespace) -> int:
    from auditdm.serve import serve

    serve(args.model, args.host, args.port, threads=args.threads, device=args.device, dtype=args.dtype,
          revision=args.revision, trust_remote_code=args.trust_remote_code, access_log=args.access_log)  # fmt: skip
    return 0


def add_serve(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    serve = commands.add_parser(
        "serve", help="serve a model as an OpenAI-compatible API",
        description="Serve MODEL (world:NAME or hf:PATH) over HTTP as an OpenAI-compatible chat-completions API "
        "(GET /v1/models, POST /v1/chat/completions with one image as a data URL and its prompt), under the "
        "name after its kind: `auditdm serve world:target` is audited elsewhere with --target "
        "openai:target@http://HOST:PORT/v1. With logprobs, the reply's probability comes as one entry for the "
        "whole reply. Needs the serve extra: pip install 'auditdm[serve]'. No authentication: keep the default "
        "host (this machine only) unless the network is trusted.",
    )  # fmt: skip
    serve.add_argument("model", help="the model to serve: world:NAME or hf:PATH")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default: %(default)s)")
    serve.add_argument("--device", default="cpu", help="where the model runs: cpu, cuda:0, ... (default: %(default)s)")
    serve.add_argument("--dtype", help="model dtype, e.g. bfloat16 (default: as saved)")
    serve.add_argument("--threads", type=int, metavar="N", help="CPU threads for the model's computations; give "
                       "servers that share a machine a share of its cores each (default: torch's, one per core)")
    serve.add_argument("--revision", metavar="REV", help="the hub revision (branch, tag or commit) an hf: hub id "
                       "loads at (default: its default branch)")  # fmt: skip
    serve.add_argument("--trust-remote-code", action="store_true", help="let an hf: model run the code its hub "
                       "repository holds (off: only transformers' own code runs)")  # fmt: skip
    serve.add_argument("--access-log", action="store_true", help="print a line for every request (default: off; "
                       "an audit sends thousands)")  # fmt: skip
    serve.set_defaults(handler=_serve)
