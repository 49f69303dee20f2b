from pathlib import Path

import pytest

from dure.policies.dsse import Envelope, sign_envelope
from dure.policies.errors import DocumentError, KeyFileError, SignatureError
from dure.policies.identity import SiteIdentity, open_site_identity, sign_site_identity
from dure.policies.keys import SigningKey
from dure.policies.supernode_key import generate_supernode_key


@pytest.fixture
def supernode_pub(tmp_path: Path) -> str:
    return generate_supernode_key(tmp_path / "node.key")


def test_identity_round_trip(supernode_pub: str) -> None:
    key = SigningKey.generate()
    identity = SiteIdentity.create("factory-a", key, supernode_pub)
    envelope = sign_site_identity(identity, key)
    opened = open_site_identity(Envelope.from_json(envelope.to_json()))
    assert opened == identity
    assert opened.verify_key == key.public


def test_identity_signed_by_another_key_is_refused(supernode_pub: str) -> None:
    key, thief = SigningKey.generate(), SigningKey.generate()
    identity = SiteIdentity.create("factory-a", key, supernode_pub)
    with pytest.raises(SignatureError):
        sign_site_identity(identity, thief)
    forged = sign_envelope(
        "application/vnd.dure.site-identity+json", identity.to_canonical_bytes(), thief
    )
    with pytest.raises(SignatureError):
        open_site_identity(forged)


def test_identity_validation(supernode_pub: str) -> None:
    key = SigningKey.generate()
    with pytest.raises(DocumentError, match="not valid"):
        SiteIdentity.create("Factory A", key, supernode_pub)
    with pytest.raises(DocumentError, match="OpenSSH"):
        SiteIdentity.create("factory-a", key, "ssh-rsa garbage")


def test_supernode_key_files(tmp_path: Path) -> None:
    line = generate_supernode_key(tmp_path / "n.key")
    assert line.startswith("ecdsa-sha2-nistp384 ")
    assert (tmp_path / "n.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "n.key.pub").read_text().strip() == line
    with pytest.raises(KeyFileError, match="already exists"):
        generate_supernode_key(tmp_path / "n.key")
