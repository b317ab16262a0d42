import stat

import pytest

from protoken.credentials import CredentialRegistry, issue_credential, read_credential
from protoken.errors import UserError


def test_issue_and_identify(tmp_path):
    registry = tmp_path / "credentials.toml"
    issue_credential(registry, "hospital-a", tmp_path / "a.credential")
    issue_credential(registry, "bank-b", tmp_path / "b.credential")
    loaded = CredentialRegistry.load(registry)
    for name, file in (("hospital-a", "a.credential"), ("bank-b", "b.credential")):
        client_id, secret = read_credential(tmp_path / file)
        assert client_id == name and loaded.identify(secret) == name
        assert secret not in registry.read_text(), "the registry keeps only hashes"
        assert stat.S_IMODE((tmp_path / file).stat().st_mode) == 0o600
    assert loaded.identify("guess") is None and loaded.identify(None) is None and len(loaded) == 2


def test_bad_files_and_ids(tmp_path):
    with pytest.raises(UserError, match="cannot read credential file"):
        read_credential(tmp_path / "none")
    bad = tmp_path / "bad.toml"
    bad.write_text("[clients\n")
    with pytest.raises(UserError, match="credential registry .* is not valid TOML"):
        CredentialRegistry.load(bad)
    bad.write_text('[clients]\na = "short"\n')
    with pytest.raises(UserError, match="sha256"):
        CredentialRegistry.load(bad)
    with pytest.raises(UserError, match="client id"):
        issue_credential(tmp_path / "r.toml", "no spaces please", tmp_path / "x")


def test_reissue_needs_replace_and_unwritable_registry_leaves_no_secret(tmp_path):
    registry = tmp_path / "credentials.toml"
    issue_credential(registry, "alice", tmp_path / "a1")
    with pytest.raises(UserError, match="already in"):
        issue_credential(registry, "alice", tmp_path / "a2")
    assert not (tmp_path / "a2").exists()
    issue_credential(registry, "alice", tmp_path / "a2", replace=True)
    loaded = CredentialRegistry.load(registry)
    assert loaded.identify(read_credential(tmp_path / "a2")[1]) == "alice"
    assert loaded.identify(read_credential(tmp_path / "a1")[1]) is None
    (tmp_path / "a-file").write_text("")
    with pytest.raises(OSError):
        issue_credential(tmp_path / "a-file" / "credentials.toml", "bob", tmp_path / "b")
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("client_id", ["..", ".hidden", "ａｂ", "médecin", "x" * 65, ""])
def test_ids_that_cannot_name_files_or_certificates_are_refused(tmp_path, client_id):
    with pytest.raises(UserError, match="client id"):
        issue_credential(tmp_path / "r.toml", client_id, tmp_path / "x")
    assert list(tmp_path.iterdir()) == []


def test_credential_file_that_cannot_be_written_leaves_the_registry_unchanged(tmp_path):
    registry = tmp_path / "credentials.toml"
    issue_credential(registry, "alice", tmp_path / "alice.credential")
    before = registry.read_text()
    with pytest.raises(UserError, match="the registry itself"):
        issue_credential(registry, "bob", registry)
    (tmp_path / "adir").mkdir()
    with pytest.raises(UserError, match="is a directory"):
        issue_credential(registry, "bob", tmp_path / "adir")
    (tmp_path / "a-file").write_text("")
    with pytest.raises(OSError):
        issue_credential(registry, "bob", tmp_path / "a-file" / "bob.credential")
    assert registry.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "adir", "alice.credential", "credentials.toml"]


@pytest.mark.parametrize("body", ['clients = "oops"\n', '[clients]\nbob = 5\n'])
def test_a_malformed_registry_is_refused_when_issuing(tmp_path, body):
    registry = tmp_path / "credentials.toml"
    registry.write_text(body)
    with pytest.raises(UserError, match="sha256"):
        issue_credential(registry, "alice", tmp_path / "alice.credential")
    assert registry.read_text() == body and not (tmp_path / "alice.credential").exists()
