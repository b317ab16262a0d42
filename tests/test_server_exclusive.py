"""One coordinator per port and per state directory."""

import pytest

from federation_harness import tiny_config
from protoken.credentials import issue_credential
from protoken.errors import UserError
from protoken.server.app import Coordinator


def _config(tmp_path, address: str, state: str):
    registry = tmp_path / "credentials.toml"
    if not registry.exists():
        issue_credential(registry, "medical", tmp_path / "medical.credential")
    return tiny_config(["medical"], federation__address=address, federation__state_dir=str(tmp_path / state),
                       federation__credentials=str(registry))


def test_a_second_server_cannot_share_the_port_or_the_state_directory(tmp_path):
    first = Coordinator(_config(tmp_path, "127.0.0.1:0", "state-a"), resume=False, log=lambda message: None)
    try:
        with pytest.raises(UserError, match="cannot listen"):
            Coordinator(_config(tmp_path, f"127.0.0.1:{first.port}", "state-b"), resume=False,
                        log=lambda message: None)
        assert not (tmp_path / "state-b").exists()
        with pytest.raises(UserError, match="in use by another server"):
            Coordinator(_config(tmp_path, "127.0.0.1:0", "state-a"), resume=True, log=lambda message: None)
    finally:
        first.server.stop(None)
