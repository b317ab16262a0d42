"""Linux network namespaces on a bridge: every party of a federation behind its own network stack.

    host:  bridge <prefix>-br  10.A.B.1/24
             ├─ veth <prefix>-s   ⇄ eth0 in namespace <prefix>-server     10.A.B.2
             ├─ veth <prefix>-c0  ⇄ eth0 in namespace <prefix>-client-0   10.A.B.3
             └─ ...

Each client's link is shaped in both directions (its eth0 and the host end of its veth), with
netem for delay and loss and tbf for rate; so the round trip between a client and the server
carries twice the one-way ``--delay``.

Everything is recorded in a state file *before* it is created, so ``down`` removes exactly
what ``up`` made — also after an ``up`` that failed half-way — and nothing else.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from protoken.errors import UserError

from .shaping import Shaping

STATE_FILE = "netns.json"
_NO_NETEM = ("this kernel has no netem queueing discipline (sch_netem), so --delay and --loss cannot be "
             "applied (try: modprobe sch_netem); --rate alone works without it")


class CommandFailed(UserError):
    """An `ip` or `tc` command that failed; the message names the command and its error."""


def run(*argv: str) -> str:
    """Run a command; its stdout, or CommandFailed with its first line of stderr."""
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        reason = (result.stderr.strip() or result.stdout.strip() or f"exit {result.returncode}").splitlines()[0]
        raise CommandFailed(f"{' '.join(argv)}: {reason}")
    return result.stdout


@dataclass
class Node:
    role: str       # "server" or "client-<i>"
    namespace: str
    host_link: str  # the veth end on the bridge; its peer is eth0 in the namespace
    address: str


@dataclass
class Process:
    role: str
    pid: int
    started: int  # start time from /proc/<pid>/stat: a recycled pid does not match
    log: str


@dataclass
class Lab:
    """What exists for one `up`: the bridge, the nodes and the processes started in them."""

    prefix: str
    subnet: str
    bridge: str
    gateway: str
    nodes: list[Node] = field(default_factory=list)
    processes: list[Process] = field(default_factory=list)
    info: dict = field(default_factory=dict)  # what the launcher wants to remember (ports, paths)
    path: Path | None = None

    def save(self) -> None:
        data = asdict(self)
        data.pop("path")
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True))
        os.replace(tmp, self.path)

    @classmethod
    def load(cls, path: Path) -> "Lab":
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise UserError(f"{path} does not exist: nothing was started there (or it is already down)") from None
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot read the namespace state file {path}: {exc}") from exc
        try:
            return cls(prefix=data["prefix"], subnet=data["subnet"], bridge=data["bridge"], gateway=data["gateway"],
                       nodes=[Node(**n) for n in data["nodes"]],
                       processes=[Process(**p) for p in data["processes"]], info=data["info"], path=Path(path))
        except (KeyError, TypeError) as exc:
            raise UserError(f"the namespace state file {path} is not one `netns up` wrote ({exc!r} is wrong "
                            "or missing); remove what it made by hand") from None

    def node(self, role: str) -> Node:
        return next(n for n in self.nodes if n.role == role)


def require_root() -> None:
    if os.geteuid() != 0:
        raise UserError("network namespaces need root: run this as root (or with sudo)")
    if shutil.which("ip") is None or shutil.which("tc") is None:
        raise UserError("network namespaces need the `ip` and `tc` commands (package iproute2)")


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.200.0.0–10.254.255.0 that overlaps no address or route of this host."""
    used = []
    for entry in json.loads(run("ip", "-j", "-4", "route", "show", "table", "all") or "[]"):
        if entry.get("dst", "default") != "default":
            used.append(ipaddress.ip_network(entry["dst"], strict=False))
    for link in json.loads(run("ip", "-j", "-4", "addr") or "[]"):
        for info in link.get("addr_info", []):
            used.append(ipaddress.ip_network(f"{info['local']}/{info['prefixlen']}", strict=False))
    rng = secrets.SystemRandom()
    for _ in range(200):
        candidate = ipaddress.ip_network(f"10.{rng.randint(200, 254)}.{rng.randint(0, 255)}.0/24")
        if not any(candidate.overlaps(net) for net in used):
            return candidate
    raise UserError("found no free 10.200-254.x.0/24 subnet on this host")


def create_lab(workdir: Path, clients: int, shaping: Shaping) -> Lab:
    """Bridge, server namespace and `clients` client namespaces, shaped; recorded in workdir."""
    require_root()
    if not 1 <= clients <= 250:
        raise UserError("--clients must be between 1 and 250")
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / STATE_FILE
    if path.exists():
        raise UserError(f"{path} records a running lab: run `protoken infra netns down --workdir {workdir}` first")
    subnet = _free_subnet()
    hosts = list(subnet.hosts())
    prefix = "pt" + secrets.token_hex(2)
    lab = Lab(prefix=prefix, subnet=str(subnet), bridge=f"{prefix}-br", gateway=str(hosts[0]), path=path)
    lab.save()
    try:
        run("ip", "link", "add", lab.bridge, "type", "bridge")
        run("ip", "addr", "add", f"{lab.gateway}/{subnet.prefixlen}", "dev", lab.bridge)
        run("ip", "link", "set", lab.bridge, "up")
        roles = [("server", f"{prefix}-s")] + [(f"client-{i}", f"{prefix}-c{i}") for i in range(clients)]
        for (role, link), address in zip(roles, hosts[1:], strict=False):
            node = Node(role=role, namespace=f"{prefix}-{role}", host_link=link, address=str(address))
            lab.nodes.append(node)
            lab.save()
            _plug(node, lab, subnet.prefixlen)
            if role != "server" and shaping:
                _shape(node, shaping)
    except BaseException:
        destroy_lab(lab)
        raise
    return lab


def _plug(node: Node, lab: Lab, prefixlen: int) -> None:
    run("ip", "netns", "add", node.namespace)
    run("ip", "link", "add", node.host_link, "type", "veth", "peer", "name", "eth0", "netns", node.namespace)
    run("ip", "link", "set", node.host_link, "master", lab.bridge, "up")
    run("ip", "-n", node.namespace, "addr", "add", f"{node.address}/{prefixlen}", "dev", "eth0")
    run("ip", "-n", node.namespace, "link", "set", "eth0", "up")
    run("ip", "-n", node.namespace, "link", "set", "lo", "up")


def _shape(node: Node, shaping: Shaping) -> None:
    try:
        for tc in shaping.qdiscs(node.host_link):
            run("tc", *tc)
        for tc in shaping.qdiscs("eth0"):
            run("ip", "netns", "exec", node.namespace, "tc", *tc)
    except CommandFailed as exc:
        if "netem" in str(exc) and "unknown" in str(exc).lower():
            raise UserError(_NO_NETEM) from None
        raise


# -- processes --------------------------------------------------------------------------------

def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state letter, start time) of a live process, None when it is gone."""
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
    except ChildProcessError:
        pass
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[19])


def alive(process: Process) -> bool:
    stat = _proc_stat(process.pid)
    return stat is not None and stat[0] != "Z" and stat[1] == process.started


def spawn(lab: Lab, role: str, argv: list[str], log: Path, env: dict[str, str]) -> Process:
    """Start `argv` inside the namespace of `role`, output to `log`; recorded in the lab."""
    node = lab.node(role)
    with open(log, "ab") as out:
        child = subprocess.Popen(["ip", "netns", "exec", node.namespace, *argv], stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    stat = _proc_stat(child.pid)
    process = Process(role=role, pid=child.pid, started=stat[1] if stat else 0, log=str(log))
    lab.processes.append(process)
    lab.save()
    return process


def _namespace_pids(namespace: str) -> list[int]:
    try:
        return [int(pid) for pid in run("ip", "netns", "pids", namespace).split()]
    except CommandFailed:
        return []  # the namespace is gone


def _stop_processes(lab: Lab, grace_s: float) -> None:
    """SIGTERM what was started and whatever else runs in the lab's namespaces; SIGKILL after grace."""
    targets = [p.pid for p in lab.processes if alive(p)]
    targets += [pid for node in lab.nodes for pid in _namespace_pids(node.namespace) if pid not in targets]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in targets:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            targets = [pid for pid in targets if (_proc_stat(pid) or ("Z",))[0] != "Z"]
            if not targets:
                return
            time.sleep(0.1)


# -- teardown ---------------------------------------------------------------------------------

def _delete(*argv: str) -> None:
    """Run a delete command; something already gone is fine."""
    try:
        run(*argv)
    except CommandFailed as exc:
        if not re.search(r"Cannot find device|No such file|does not exist|Cannot open", str(exc)):
            raise


def leftovers(lab: Lab) -> list[str]:
    """What of the lab still exists: namespaces, links, processes."""
    namespaces = set(run("ip", "netns", "list").split())
    links = {entry["ifname"] for entry in json.loads(run("ip", "-j", "link", "show") or "[]")}
    found = [f"namespace {n.namespace}" for n in lab.nodes if n.namespace in namespaces]
    found += [f"link {name}" for name in [lab.bridge] + [n.host_link for n in lab.nodes] if name in links]
    found += [f"process {p.pid} ({p.role})" for p in lab.processes if alive(p)]
    return found


def destroy_lab(lab: Lab, grace_s: float = 5.0) -> None:
    """Stop the lab's processes and delete its links, namespaces and bridge, then its state file."""
    _stop_processes(lab, grace_s)
    for node in lab.nodes:
        _delete("ip", "link", "del", node.host_link)
        _delete("ip", "netns", "del", node.namespace)
    _delete("ip", "link", "del", lab.bridge)
    remaining = leftovers(lab)
    if remaining:
        raise UserError(f"could not remove {', '.join(remaining)}; {lab.path} is kept for another try")
    lab.path.unlink(missing_ok=True)
