"""TLS files are parsed before use: a wrong or damaged one is named, nothing is started."""

from types import SimpleNamespace

import pytest

from protoken.errors import UserError
from protoken.infra.bundles import client_bundle, issue_bundles, server_bundle
from protoken.tls import channel_credentials, server_credentials


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("pki")
    issue_bundles(root, ["alice", "bob"], ["localhost"])
    junk = root / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    return root


def test_good_files_make_credentials(bundles):
    alice, server = client_bundle(bundles, "alice"), server_bundle(bundles)
    assert channel_credentials(str(alice.ca), str(alice.cert), str(alice.key)) is not None
    tls = SimpleNamespace(enabled=True, ca=str(server.ca), cert=str(server.cert), key=str(server.key),
                          require_client_cert=True)
    assert server_credentials(tls) is not None


def test_bad_files_are_named(bundles):
    alice, bob = client_bundle(bundles, "alice"), client_bundle(bundles, "bob")
    junk = str(bundles / "junk.pem")
    with pytest.raises(UserError, match="CA certificate .*junk.pem is not a PEM certificate"):
        channel_credentials(junk, None, None)
    with pytest.raises(UserError, match="client certificate .*junk.pem is not a PEM certificate"):
        channel_credentials(str(alice.ca), junk, str(alice.key))
    with pytest.raises(UserError, match="client key .*junk.pem is not an unencrypted PEM private key"):
        channel_credentials(str(alice.ca), str(alice.cert), junk)
    with pytest.raises(UserError, match="does not belong to the certificate"):
        channel_credentials(str(alice.ca), str(alice.cert), str(bob.key))
    tls = SimpleNamespace(enabled=True, ca=str(alice.ca), cert=junk, key=str(alice.key), require_client_cert=True)
    with pytest.raises(UserError, match="server certificate .*junk.pem"):
        server_credentials(tls)
