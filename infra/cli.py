"""`protoken infra`: TLS bundles, joining from a bundle pool, health checks, containers, namespaces.

Handlers import their modules lazily so that `protoken --help` and the container health check
stay fast.
"""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

from protoken.errors import UserError


_RELEASE_HELP = "clients load the model only for a task or probe (light when idle)"


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UserError(f"{text!r} names nothing: give a comma-separated list")
    return names


def _certs(args: argparse.Namespace) -> int:
    from .bundles import counted_ids, issue_bundles

    ids = _names(args.clients) if args.clients is not None else counted_ids(args.count)
    names = _names(args.server_names) if args.server_names is not None else None
    report = issue_bundles(args.out, ids, names)
    print(f"{args.out}: created {', '.join(report.created) or 'nothing'}"
          + (f"; kept {len(report.kept)} existing" if report.kept else ""))
    print(f"server bundle {args.out / 'server'}; client bundles {args.out / 'clients'}/<id>; "
          f"keep {args.out / 'ca.key'} with the operator")
    return 0


def _join(args: argparse.Namespace) -> int:
    from .join import join

    return join(args.bundles, args.server, args.data, args.state, args.claimant or socket.gethostname(),
                args.threads, args.release_model)


def _health(args: argparse.Namespace) -> int:
    from .health import check

    print(f"{check(args.address)} is reachable")
    return 0


def _scale(args: argparse.Namespace) -> int:
    from .scale import ScalePlan, scale

    plan = ScalePlan(clients=args.clients, server=args.server, bundles=args.bundles, workdir=args.workdir,
                     image=args.image, network=args.network, data=args.data, name=args.name)
    for name in scale(plan):
        print(f"started {name}")
    return 0


def _netns_up(args: argparse.Namespace) -> int:
    from .shaping import Shaping
    from .netns_federation import NetnsFederation, up

    plan = NetnsFederation(clients=args.clients, data=args.data, config=args.config, workdir=args.workdir,
                           shaping=Shaping(args.delay, args.loss, args.rate or ""), port=args.port,
                           threads=args.threads, release_model=args.release_model)
    lab = up(plan)
    print(f"lab {lab.prefix}: bridge {lab.bridge} {lab.subnet}; client links {lab.info['shaping']}")
    for node, process in zip(lab.nodes, lab.processes, strict=True):
        print(f"  {node.role:10} {node.namespace:18} {node.address:15} pid {process.pid:<7} {process.log}")
    print(f"server {lab.info['server']}; stop with: protoken infra netns down --workdir {args.workdir}")
    return 0


def _netns_down(args: argparse.Namespace) -> int:
    from .netns_federation import down

    lab = down(args.workdir)
    print(f"lab {lab.prefix} removed: {len(lab.processes)} processes stopped, {len(lab.nodes)} namespaces "
          f"and bridge {lab.bridge} deleted; files kept in {lab.info.get('run_dir', args.workdir)}")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError("must be a port number, 1-65535")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `infra` command and its subcommands."""
    infra = subparsers.add_parser("infra", help="deployment: TLS bundles, containers, network namespaces")
    commands = infra.add_subparsers(dest="infra_command", required=True, metavar="COMMAND")

    certs = commands.add_parser("certs", help="issue a CA, a server certificate and per-client bundles",
                                description="Make sure OUT holds a CA, a server bundle and one bundle per client "
                                "(certificate, key, credential). Existing bundles are kept.")
    certs.add_argument("--out", type=Path, required=True, help="bundle directory")
    who = certs.add_mutually_exclusive_group(required=True)
    who.add_argument("--clients", help="comma-separated client ids, e.g. hospital-a,bank-b")
    who.add_argument("--count", type=_positive, help="a pool of N clients named client-000, client-001, ...")
    certs.add_argument("--server-names", help="comma-separated host names and IP addresses clients dial "
                       "(default: localhost,127.0.0.1)")
    certs.set_defaults(func=_certs)

    join = commands.add_parser("join", help="claim a client bundle from a pool and run that client",
                               description="Claim one bundle of a pool made by `infra certs` (atomically), "
                               "write the matching data shard, then run `protoken client` with mutual TLS.")
    join.add_argument("--bundles", type=Path, required=True, help="the clients/ directory of a bundle pool")
    join.add_argument("--server", required=True, help="HOST:PORT of the coordinator")
    join.add_argument("--data", type=Path, required=True, help="data root: train.jsonl or <domain>/train.jsonl")
    join.add_argument("--state", type=Path, required=True, help="directory for every pool client's state")
    join.add_argument("--claimant", help="this replica's name (default: the host name)")
    join.add_argument("--threads", type=_positive, help="torch threads for local training")
    join.add_argument("--release-model", action="store_true", help=_RELEASE_HELP)
    join.set_defaults(func=_join)

    health = commands.add_parser("health", help="container health check: is the coordinator's port reachable")
    health.add_argument("--address", help="HOST:PORT (default: $PROTOKEN_HEALTH_ADDRESS or 127.0.0.1:50051)")
    health.set_defaults(func=_health)

    scale = commands.add_parser("scale", help="start N client containers against a running server (Docker)")
    scale.add_argument("--clients", type=_positive, required=True)
    scale.add_argument("--server", required=True, help="HOST:PORT of the coordinator, as seen from a container")
    scale.add_argument("--bundles", type=Path, required=True, help="output directory of `protoken infra certs`")
    scale.add_argument("--workdir", type=Path, default=Path("runs/scale"), help="client state (default: runs/scale)")
    scale.add_argument("--image", default="protoken:latest")
    scale.add_argument("--network", help="Docker network to attach the containers to (e.g. host)")
    scale.add_argument("--data", type=Path, help="data root on this host (default: the image's built-in data)")
    scale.add_argument("--name", default="protoken-client", help="container name prefix")
    scale.set_defaults(func=_scale)

    netns = commands.add_parser("netns", help="a federation across Linux network namespaces (root)")
    netns_commands = netns.add_subparsers(dest="netns_command", required=True, metavar="COMMAND")
    up = netns_commands.add_parser("up", help="bridge + one namespace per process; start server and clients",
                                   description="Put the server and each client in its own network namespace on a "
                                   "bridge, shape the client links, start everything with mutual TLS.")
    up.add_argument("--clients", type=_positive, required=True)
    up.add_argument("--data", type=Path, required=True, help="data root: train.jsonl or <domain>/train.jsonl")
    up.add_argument("--config", type=Path, help="federation TOML for the server")
    up.add_argument("--workdir", type=Path, default=Path("runs/netns"), help="state file and run files")
    up.add_argument("--delay", type=float, default=0.0, metavar="MS", help="one-way delay on each client link")
    up.add_argument("--loss", type=float, default=0.0, metavar="PCT", help="packet loss on each client link")
    up.add_argument("--rate", metavar="RATE", help="bandwidth of each client link, e.g. 10mbit")
    up.add_argument("--port", type=_port, default=50051, help="the server's port (default 50051)")
    up.add_argument("--threads", type=_positive, default=1, help="torch threads per client (default 1)")
    up.add_argument("--release-model", action="store_true", help=_RELEASE_HELP)
    up.set_defaults(func=_netns_up)
    down = netns_commands.add_parser("down", help="stop and remove everything `up` created")
    down.add_argument("--workdir", type=Path, default=Path("runs/netns"), help="where `up` recorded the lab")
    down.set_defaults(func=_netns_down)
