"""The page's own cryptography, run in Chromium against the kernel's (real keys, real trees)."""

from __future__ import annotations

import hashlib

import pytest
from tests.integration.dashboard.conftest import Browser, Live

from dure.policies.encoding import b64encode
from dure.policies.merkle import leaf_hash, root_hash

pytestmark = [
    pytest.mark.slow,
    pytest.mark.ci_required(
        "Debian chromium at /usr/bin/chromium (.ci/run installs it with apt-get)"
    ),
]

_ROOTS = """async (sizes) => {
  const { merkleRoot, toHex } = await import('/dashboard/ledger.js');
  const { sha256, sha256Sync } = await import('/dashboard/sha256.js');
  const out = [];
  for (const n of sizes) {
    const leaves = [];
    for (let i = 0; i < n; i++) {
      const entry = new TextEncoder().encode(`entry ${i}`);
      const data = new Uint8Array(entry.length + 1);
      data.set(entry, 1);
      leaves.push(await sha256(data));
    }
    out.push(toHex(await merkleRoot(leaves)));
  }
  const text = new TextEncoder().encode('x'.repeat(200));
  out.push(toHex(sha256Sync(text)), toHex(sha256Sync(new Uint8Array(0))));
  return out;
}"""


def test_merkle_root_and_sha256_match_the_kernel(live: Live, browser: Browser) -> None:
    browser.page.goto(f"{live.url}/")
    sizes = [*range(18), 31, 32, 33, 100]
    got = browser.page.evaluate(_ROOTS, sizes)
    expected = [root_hash([f"entry {i}".encode() for i in range(n)]).hex() for n in sizes]
    expected += [hashlib.sha256(b"x" * 200).hexdigest(), hashlib.sha256(b"").hexdigest()]
    assert got == expected
    assert expected[1] == leaf_hash(b"entry 0").hex() != hashlib.sha256(b"entry 0").hexdigest()
    assert browser.errors == []


def test_verifier_keys_holding_plus_signs_parse(live: Live, browser: Browser) -> None:
    browser.page.goto(f"{live.url}/")
    name = "dure.test/ledger"
    raw = bytes.fromhex("01" + "fb" * 32)  # base64 of 0xfb bytes is full of "+"
    key_id = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4].hex()
    text = f"{name}+{key_id}+{b64encode(raw)}"
    assert text.count("+") > 2
    parsed = browser.page.evaluate(
        """async (text) => {
          const { parseVerifierKey, toHex } = await import('/dashboard/ledger.js');
          const key = await parseVerifierKey(text);
          return [key.name, toHex(key.keyId)];
        }""",
        text,
    )
    assert parsed == [name, key_id]
    assert browser.errors == []
