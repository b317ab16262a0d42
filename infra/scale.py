"""`protoken infra scale`: start N client containers against a running server through the Docker SDK.

Every container runs the same ``protoken infra join`` command on a shared bundle directory
(from ``protoken infra certs``) and claims its own identity there; each container's name is
its claimant, so a restarted container keeps its identity.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from protoken.errors import UserError

from .shards import domain_files

BUNDLES_MOUNT, DATA_MOUNT, WORK_MOUNT = "/bundles", "/data", "/work"
IMAGE_DATA = "/opt/protoken/data"  # the data set built into the image


@dataclass
class ScalePlan:
    clients: int
    server: str
    bundles: Path      # the output directory of `protoken infra certs`
    workdir: Path      # client state, shared by the containers
    image: str = "protoken:latest"
    network: str | None = None
    data: Path | None = None  # a data root on the host; default: the one built into the image
    name: str = "protoken-client"


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _docker_client():
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env()
        client.ping()
    except DockerException as exc:
        raise UserError(f"no Docker daemon reachable ({_first_line(exc)}): start Docker or set DOCKER_HOST") from None
    return client


def _check(plan: ScalePlan) -> None:
    """Validate the plan before touching Docker."""
    if plan.clients < 1:
        raise UserError("--clients must be at least 1")
    clients_dir = plan.bundles / "clients"
    pool = list(clients_dir.glob("*/credential.toml")) if clients_dir.is_dir() else []
    if len(pool) < plan.clients:
        raise UserError(f"{clients_dir} holds {len(pool)} client bundles, fewer than --clients {plan.clients}: "
                        f"issue them with protoken infra certs --out {plan.bundles} --count {plan.clients}")
    if plan.data is not None:
        domain_files(plan.data)


def container_command(plan: ScalePlan, claimant: str) -> list[str]:
    """Arguments after the image's `protoken` entry point."""
    data = DATA_MOUNT if plan.data is not None else IMAGE_DATA
    return ["infra", "join", "--bundles", f"{BUNDLES_MOUNT}/clients", "--server", plan.server, "--data", data,
            "--state", f"{WORK_MOUNT}/clients", "--claimant", claimant, "--threads", "1"]


def scale(plan: ScalePlan) -> list[str]:
    """Start the containers; returns their names."""
    _check(plan)
    docker = _docker_client()
    from docker.errors import DockerException

    plan.workdir.mkdir(parents=True, exist_ok=True)
    volumes = {str(plan.bundles.resolve()): {"bind": BUNDLES_MOUNT, "mode": "rw"},
               str(plan.workdir.resolve()): {"bind": WORK_MOUNT, "mode": "rw"}}
    if plan.data is not None:
        volumes[str(plan.data.resolve())] = {"bind": DATA_MOUNT, "mode": "ro"}
    names = []
    for index in range(plan.clients):
        name = f"{plan.name}-{index}"
        try:
            docker.containers.run(plan.image, container_command(plan, name), name=name, detach=True,
                                  volumes=volumes, network=plan.network,
                                  user=f"{os.getuid()}:{os.getgid()}",  # claims and state stay the caller's
                                  environment={"PROTOKEN_HEALTH_ADDRESS": plan.server, "HOME": WORK_MOUNT},
                                  labels={"protoken.role": "client", "protoken.scale": plan.name},
                                  restart_policy={"Name": "on-failure", "MaximumRetryCount": 3})
        except DockerException as exc:
            raise UserError(f"cannot start container {name} ({len(names)} started before it): "
                            f"{_first_line(exc)}") from None
        names.append(name)
    return names
