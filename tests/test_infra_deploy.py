"""The image and compose files say what the code can do: every command they run parses, every
path they use is mounted or built in, every volume and port they name exists.

No Docker engine is needed: the files are read as data (PyYAML) and checked against the
`protoken` parser and the configuration loader.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from protoken.cli import build_parser
from protoken.config import load_config

REPO = Path(__file__).resolve().parents[1]
INFRA = REPO / "infra"
_VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")
PARTY_ENV = {"PROTOKEN_SERVER": "coordinator.example.org:50051", "PROTOKEN_BUNDLE": "/srv/bundle",
             "PROTOKEN_DATA": "/srv/data"}


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} substitution."""
    def substitute(match: re.Match) -> str:
        name, kind, argument = match.groups()
        if env.get(name):
            return env[name]
        if kind == "?":
            raise KeyError(f"{name}: {argument}")
        return argument if kind == "-" else ""
    return _VARIABLE.sub(substitute, text)


def compose(name: str, env: dict[str, str]) -> dict:
    return yaml.safe_load(interpolate((INFRA / name).read_text(), env))


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (INFRA / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def instruction(name: str) -> list[str]:
    return [arguments for keyword, arguments in dockerfile() if keyword == name]


def entrypoint() -> list[str]:
    return json.loads(instruction("ENTRYPOINT")[-1])


def parses(argv: list[str]) -> None:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"`protoken {' '.join(argv)}` does not parse")
    assert callable(args.func)


def image_paths() -> list[str]:
    """Directories and files the Dockerfile creates."""
    made = [m.group(1) for run in instruction("RUN") for m in re.finditer(r"--out (/\S+)", run)]
    made += [m.group(0) for run in instruction("RUN") for m in re.finditer(r"/var/lib/protoken/\w+", run)]
    made += [copy.split()[-1] for copy in instruction("COPY")]
    made += [value for env in instruction("ENV") for value in re.findall(r"=(/\S+)", env)]
    return made


def _within(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


@pytest.fixture(params=[("compose.yaml", {}), ("compose.party.yaml", PARTY_ENV)], ids=["single-host", "party"])
def services(request) -> dict[str, dict]:
    return compose(*request.param)["services"]


def test_the_files_name_their_services():
    assert set(compose("compose.yaml", {})["services"]) == {"bundles", "server", "client"}
    assert set(compose("compose.party.yaml", PARTY_ENV)["services"]) == {"client"}  # a party runs only its client


def test_a_party_must_say_where_its_server_bundle_and_data_are():
    for missing in PARTY_ENV:
        with pytest.raises(KeyError, match=missing):
            compose("compose.party.yaml", {k: v for k, v in PARTY_ENV.items() if k != missing})


def test_every_command_is_a_protoken_command_that_parses(services):
    assert entrypoint() == ["protoken"]
    for service in services.values():
        assert "entrypoint" not in service  # the image's `protoken` runs every command
        parses([str(arg) for arg in service["command"]])


def test_every_path_a_command_uses_is_mounted_or_built_into_the_image(services):
    for name, service in services.items():
        mounts = [volume.split(":")[1] for volume in service.get("volumes", [])]
        for arg in map(str, service["command"]):
            if arg.startswith("/"):
                assert _within(arg, mounts + image_paths()), f"{name}: {arg} is neither mounted nor in the image"


def test_named_volumes_are_declared_and_used():
    for name, file_env in [("compose.yaml", {}), ("compose.party.yaml", PARTY_ENV)]:
        document = compose(name, file_env)
        used = {volume.split(":")[0] for service in document["services"].values()
                for volume in service.get("volumes", []) if not volume.startswith(("/", "."))}
        assert used == set(document["volumes"]), name


def test_clients_dial_the_server_service_on_the_port_it_listens_on():
    document = compose("compose.yaml", {})
    services = document["services"]
    server_args = [str(a) for a in services["server"]["command"]]
    overrides = [server_args[i + 1] for i, arg in enumerate(server_args) if arg == "--set"]
    config = load_config(INFRA / "federation.toml", overrides)
    port = config.federation.address.rsplit(":", 1)[1]
    assert f"{port}" in instruction("EXPOSE")[0].split()
    assert services["server"]["ports"] == [f"50051:{port}"]
    client_args = [str(a) for a in services["client"]["command"]]
    assert client_args[client_args.index("--server") + 1] == f"server:{port}"
    assert services["client"]["environment"]["PROTOKEN_HEALTH_ADDRESS"] == f"server:{port}"
    assert config.tls.enabled and config.tls.require_client_cert
    bundles = services["bundles"]["command"]
    assert "server" in bundles[bundles.index("--server-names") + 1].split(",")


def test_the_server_config_names_the_bundle_the_pool_service_issues():
    config = load_config(INFRA / "federation.toml")
    pool = compose("compose.yaml", {})["services"]["bundles"]["command"]
    out = pool[pool.index("--out") + 1]
    for path in (config.tls.ca, config.tls.cert, config.tls.key, config.federation.credentials):
        assert path.startswith(f"{out}/server/")


def test_the_image_default_command_and_health_check_are_real_commands():
    cmd = json.loads(instruction("CMD")[-1])
    parses(cmd)
    config_path = cmd[cmd.index("--config") + 1]
    copied = {copy.split()[-1]: copy.split()[-2] for copy in instruction("COPY")}
    load_config(REPO / copied[config_path])
    health = instruction("HEALTHCHECK")[-1]
    parses(json.loads(health[health.index("CMD") + 3:].strip())[len(entrypoint()):])
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint()[0] in scripts


def test_the_image_installs_cpu_torch_first_runs_as_a_user_and_prepares_model_and_data():
    runs = instruction("RUN")
    torch = next(i for i, run in enumerate(runs) if "torch==" in run)
    project = next(i for i, run in enumerate(runs) if re.search(r"pip install \.(\s|$)", run))
    assert torch < project and "download.pytorch.org/whl/cpu" in " ".join(instruction("ARG"))
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"torch==[\d.]+", makefile).group(0) in runs[torch]  # the Makefile's pin
    without_deps = {pin for line in re.findall(r"pip install -q --no-deps (.*)", makefile) for pin in line.split()}
    in_image = {pin for run in runs[:project] for line in re.findall(r"pip install --no-deps ([^&]*)", run)
                for pin in line.split()}
    assert in_image == without_deps  # the same packages the Makefile installs without dependencies
    build = next(run for run in runs if "data build" in run)
    parses(shlex.split(build.split("&&")[0].strip())[1:])
    assert any("default_model_dir()" in run for run in runs)
    assert any(env.startswith("PROTOKEN_CACHE=") or " PROTOKEN_CACHE=" in env for env in instruction("ENV"))
    user = instruction("USER")[-1]
    assert user not in ("root", "0")


def test_the_build_context_holds_what_the_image_copies():
    ignore = (INFRA / "Dockerfile.dockerignore").read_text().split()
    for copy in instruction("COPY"):
        source = copy.split()[-2]
        assert (REPO / source).exists(), source
        assert f"!{source.split('/')[0]}" in ignore, f"{source} is excluded from the build context"


def test_the_installed_package_holds_every_subpackage():
    # The image installs a wheel, which carries only the packages pyproject.toml lists.
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed, dirs = set(tool["packages"]), tool["package-dir"]
    for package, directory in dirs.items():
        for init in (REPO / directory).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / directory)
            name = ".".join([package, *relative.parts])
            if not any(part.startswith(("_", ".")) for part in relative.parts) and name not in dirs:
                assert name in listed, f"{name} is missing from [tool.setuptools] packages"


def test_the_deployment_instructions_use_real_commands():
    section = (REPO / "README.md").read_text().split("\n## Deployment\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    commands = [line for block in blocks for line in re.sub(r"\\\n\s*", " ", block).splitlines()]
    checked = 0
    for command in commands:
        tokens = shlex.split(command.split("#", 1)[0])
        for i, token in enumerate(tokens):
            runs_protoken = token == "protoken" or token.endswith("/protoken")
            runs_image = token == "protoken:latest" and tokens[i - 1] != "-t"  # `docker run IMAGE ARGS`
            if runs_protoken or runs_image:
                parses(tokens[i + 1:])
                checked += 1
    assert checked >= 6
