"""The `protoken` command."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from protoken.errors import UserError


def _server(args: argparse.Namespace) -> int:
    from protoken.config import load_config
    from protoken.server.app import serve

    flags = {key: getattr(args, key) for key in ("address", "state_dir", "rounds") if getattr(args, key) is not None}
    config = load_config(args.config, list(args.set or []), {"federation": flags})
    return serve(config, resume=args.resume)


def _client(args: argparse.Namespace) -> int:
    from protoken.client.daemon import ClientOptions, FederatedClient

    if args.threads is not None:
        if args.threads < 1:
            raise UserError("--threads must be at least 1")
        import torch

        torch.set_num_threads(args.threads)
    options = ClientOptions(server=args.server, data=Path(args.data), credential=Path(args.credential),
                            state_dir=args.state_dir, tls_ca=args.tls_ca, tls_cert=args.tls_cert,
                            tls_key=args.tls_key, allowed_modules=tuple(args.allow_module or ()),
                            release_model=args.release_model)
    client = FederatedClient(options)
    import signal

    signal.signal(signal.SIGTERM, lambda *_: client.stop())
    return client.run()


def _credentials(args: argparse.Namespace) -> int:
    from protoken.credentials import issue_credential

    out = Path(args.out or f"{args.client_id}.credential")
    issue_credential(Path(args.registry), args.client_id, out, replace=args.replace)
    print(f"credential for {args.client_id} written to {out}; registry {args.registry} updated")
    return 0


def _attribute(args: argparse.Namespace) -> int:
    import json

    from protoken.attribution import render_html
    from protoken.query import AttributionClient, format_text

    if not args.prompt.strip():
        raise UserError("--prompt is empty")
    if args.round < 0 or args.max_new_tokens < 0:
        raise UserError("--round and --max-new-tokens must not be negative")
    if args.out:
        _check_output_file(args.out)
    client = AttributionClient(args.server, tls_ca=args.tls_ca, tls_cert=args.tls_cert, tls_key=args.tls_key)
    try:
        result = client.attribute(args.prompt, round_number=args.round, max_new_tokens=args.max_new_tokens,
                                  mode=args.mode)
    finally:
        client.close()
    if args.format == "json":
        data = result.provenance.to_dict()
        data["wire"] = {"probe_bytes": result.probe_bytes, "answer_bytes": result.answer_bytes}
        text = json.dumps(data, indent=2, ensure_ascii=False)
    elif args.format == "html":
        text = render_html(result.provenance)
    else:
        text = format_text(result)
    if args.out:
        Path(args.out).write_text(text)
        print(f"written to {args.out}")
    else:
        print(text)
    return 0


def _check_output_file(out: str) -> None:
    """Refuse an output path that cannot be a file before any work is done."""
    path = Path(out)
    if out.endswith(os.sep) or path.is_dir():
        raise UserError(f"--out {out} is a directory: name a file")
    if not path.parent.is_dir():
        raise UserError(f"--out {out}: directory {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise UserError(f"--out {out}: directory {path.parent} is not writable")


def _demo(args: argparse.Namespace) -> int:
    from protoken.demo import run_demo

    return run_demo(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="protoken", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    server = commands.add_parser("server", help="run the coordinator")
    server.add_argument("--config", type=Path, help="federation TOML file (defaults apply without one)")
    server.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config key")
    server.add_argument("--address", help="HOST:PORT to listen on")
    server.add_argument("--state-dir", help="where completed rounds are persisted")
    server.add_argument("--rounds", type=int)
    server.add_argument("--resume", action="store_true", help="continue after the last completed round")
    server.set_defaults(func=_server)

    client = commands.add_parser("client", help="run a party's client daemon")
    client.add_argument("--server", required=True, help="HOST:PORT of the coordinator")
    client.add_argument("--data", required=True, help="directory with train.jsonl (or a JSONL file)")
    client.add_argument("--credential", required=True, help="this client's credential file")
    client.add_argument("--state-dir", type=Path, help="where this client keeps its own round models")
    client.add_argument("--threads", type=int, help="torch threads for local training")
    client.add_argument("--tls-ca", help="CA certificate that signed the server's certificate")
    client.add_argument("--tls-cert", help="this client's certificate (mutual TLS)")
    client.add_argument("--tls-key", help="this client's private key (mutual TLS)")
    client.add_argument("--allow-module", action="append", metavar="REGEX",
                        help="module names probes may ask about (default: last 2 blocks and lm_head)")
    client.add_argument("--release-model", action="store_true",
                        help="load the model only for a task or probe and release it after (many idle clients "
                             "on one machine)")
    client.set_defaults(func=_client)

    credentials = commands.add_parser("credentials", help="issue a client credential")
    credentials.add_argument("client_id")
    credentials.add_argument("--registry", default="credentials.toml", help="the server's credential registry")
    credentials.add_argument("--out", help="the client's credential file (default CLIENT_ID.credential)")
    credentials.add_argument("--replace", action="store_true",
                             help="issue a new secret for a registered client (its old credential stops working)")
    credentials.set_defaults(func=_credentials)

    attribute = commands.add_parser("attribute", help="which client is responsible for each token of an answer")
    attribute.add_argument("--server", required=True, help="HOST:PORT of the coordinator")
    attribute.add_argument("--prompt", required=True)
    attribute.add_argument("--round", type=int, default=0, help="round whose model answers (default: latest)")
    attribute.add_argument("--max-new-tokens", type=int, default=0, help="default: the server's setting")
    attribute.add_argument("--mode", choices=["calibrated", "paper", "no-gradient"])
    attribute.add_argument("--format", choices=["text", "json", "html"], default="text")
    attribute.add_argument("--out", help="write to a file instead of standard output")
    attribute.add_argument("--tls-ca")
    attribute.add_argument("--tls-cert")
    attribute.add_argument("--tls-key")
    attribute.set_defaults(func=_attribute)

    demo = commands.add_parser("demo", help="the main job: a federation of processes on loopback")
    demo.add_argument("--quick", action="store_true", help="tiny model, 3 clients, 2 rounds (smoke test)")
    demo.add_argument("--out", type=Path, help="output directory (default: a new runs/demo/TIMESTAMP)")
    demo.add_argument("--data", type=Path, default=Path("data"), help="dataset directory (built if missing)")
    demo.add_argument("--rounds", type=int)
    demo.add_argument("--local-steps", type=int)
    demo.set_defaults(func=_demo)

    from protoken.data.cli import register as register_data

    register_data(commands)
    from protoken.experiments.cli import register as register_eval

    register_eval(commands)
    from protoken.infra.cli import register as register_infra

    register_infra(commands)
    return parser


def _quiet_libraries() -> None:
    """Progress bars and deprecation chatter of the ML libraries drown our own progress lines."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    _quiet_libraries()
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a path the user gave that cannot be read or written
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
