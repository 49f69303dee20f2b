import os
from pathlib import Path

import pytest

from dure.policies.errors import EncodingError, KeyFileError, SignatureError
from dure.policies.keys import SigningKey, VerifyKey


def test_sign_and_verify() -> None:
    key = SigningKey.generate()
    signature = key.sign(b"message")
    key.public.verify(signature, b"message")
    with pytest.raises(SignatureError):
        key.public.verify(signature, b"other message")
    with pytest.raises(SignatureError):
        SigningKey.generate().public.verify(signature, b"message")


def test_rfc8032_known_answer() -> None:
    # SPEC: RFC 8032 §7.1 TEST 1
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    key = SigningKey.from_seed(seed)
    assert key.public.raw.hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    assert key.sign(b"").hex().startswith("e5564300c360ac729086e2cc806e828a")


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    key = SigningKey.generate()
    key.save(tmp_path / "site.key")
    key.public.save(tmp_path / "site.pub")
    assert os.stat(tmp_path / "site.key").st_mode & 0o777 == 0o600
    loaded = SigningKey.load(tmp_path / "site.key")
    assert loaded.public == key.public
    assert VerifyKey.load(tmp_path / "site.pub") == key.public
    assert VerifyKey.from_pem(key.public.to_pem()) == key.public


def test_refuses_readable_private_key(tmp_path: Path) -> None:
    path = tmp_path / "site.key"
    SigningKey.generate().save(path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="accessible by others") as info:
        SigningKey.load(path)
    assert "chmod 600" in info.value.hint


def test_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "site.key"
    SigningKey.generate().save(path)
    with pytest.raises(KeyFileError, match="already exists"):
        SigningKey.generate().save(path)


def test_bad_key_files(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot read"):
        SigningKey.load(tmp_path / "missing.key")
    junk = tmp_path / "junk.key"
    junk.write_bytes(b"not a key")
    junk.chmod(0o600)
    with pytest.raises(KeyFileError, match="not an unencrypted PEM"):
        SigningKey.load(junk)
    with pytest.raises(KeyFileError, match="not a PEM public key"):
        VerifyKey.load(junk)
    with pytest.raises(EncodingError):
        VerifyKey(b"short")


def test_repr_hides_secret() -> None:
    key = SigningKey.generate()
    assert key.seed().hex() not in repr(key)
