// The ledger, checked in the browser against its signed checkpoint
// (docs/ledger-format.md): the checkpoint's Ed25519 signature against the
// verifier key, then the RFC 9162 root recomputed over every entry.
import { hasWebCrypto, sha256 } from "./sha256.js";

export const MAX_VERIFIED_ENTRIES = 50000;
const PAGE = 1000;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export function fromBase64(text) {
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function equal(a, b) {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

export function parseCheckpoint(text) {
  const split = text.indexOf("\n\n");
  if (split < 0) throw new Error("the checkpoint is not a signed note (no blank line)");
  const body = text.slice(0, split + 1);
  const lines = body.split("\n");
  const size = Number(lines[1]);
  if (lines.length < 4 || !/^\d+$/.test(lines[1]) || !Number.isSafeInteger(size)) {
    throw new Error("the checkpoint body is not origin, size and root");
  }
  const root = fromBase64(lines[2]);
  if (root.length !== 32) throw new Error("the checkpoint root is not 32 bytes");
  const signatures = text
    .slice(split + 2)
    .split("\n")
    .filter((line) => line.startsWith("\u2014 "))
    .map((line) => {
      const [name, value] = line.slice(2).split(" ");
      return { name, value: fromBase64(value || "") };
    });
  return { body, origin: lines[0], size, root, signatures };
}

export async function parseVerifierKey(text) {
  // The base64 key may itself hold "+": split on the first two only.
  const parts = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(text.trim())?.slice(1);
  if (!parts) throw new Error("the verifier key is not name+keyid+key");
  const raw = fromBase64(parts[2]);
  if (raw.length !== 33 || raw[0] !== 0x01) throw new Error("the verifier key is not Ed25519");
  const keyId = (await sha256(concat(encoder.encode(parts[0] + "\n"), raw))).slice(0, 4);
  if (toHex(keyId) !== parts[1]) throw new Error("the verifier key's id does not match its key");
  return { text: text.trim(), name: parts[0], keyId, publicKey: raw.slice(1) };
}

async function verifySignature(note, key) {
  if (!hasWebCrypto()) {
    throw new Error("this browser cannot check Ed25519 here (open the page over HTTPS)");
  }
  const mine = note.signatures.filter(
    (sig) => sig.name === key.name && equal(sig.value.slice(0, 4), key.keyId),
  );
  if (mine.length === 0) throw new Error(`the checkpoint carries no signature by ${key.name}`);
  let publicKey;
  try {
    publicKey = await crypto.subtle.importKey("raw", key.publicKey, { name: "Ed25519" }, false, [
      "verify",
    ]);
  } catch (error) {
    throw new Error(`this browser cannot check Ed25519 signatures (${error})`);
  }
  for (const sig of mine) {
    const ok = await crypto.subtle.verify(
      { name: "Ed25519" }, publicKey, sig.value.slice(4), encoder.encode(note.body),
    );
    if (!ok) throw new Error("the checkpoint signature does not verify");
  }
}

export async function merkleRoot(leafHashes) {
  if (leafHashes.length === 0) return sha256(new Uint8Array(0));
  let level = leafHashes;
  while (level.length > 1) {
    const next = [];
    for (let i = 0; i + 1 < level.length; i += 2) {
      next.push(await sha256(concat(Uint8Array.of(1), level[i], level[i + 1])));
    }
    if (level.length % 2 === 1) next.push(level[level.length - 1]);
    level = next;
  }
  return level[0];
}

async function fetchText(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path} answered ${response.status}`);
  return response.text();
}

async function fetchEntries(size) {
  const entries = [];
  for (let start = 0; start < size; start += PAGE) {
    const end = Math.min(size, start + PAGE);
    const response = await fetch(`/v1/ledger/entries?start=${start}&end=${end}`, {
      cache: "no-store",
    });
    if (!response.ok) throw new Error(`entries ${start}..${end} answered ${response.status}`);
    const page = (await response.json()).entries;
    for (const item of page) {
      if (item.index !== entries.length) throw new Error(`entry ${entries.length} is missing`);
      entries.push(fromBase64(item.entry));
    }
    if (page.length !== end - start) throw new Error(`entries ${start}..${end} are incomplete`);
  }
  return entries;
}

function decodeEntry(bytes, index) {
  try {
    return { index, ...JSON.parse(decoder.decode(bytes)) };
  } catch (error) {
    return { index, kind: "(undecodable)", error: String(error) };
  }
}

// Resolve to {verified, reason, checkpoint, key, entries, pinned}; never throws.
export async function verifyLedger(pinnedKey) {
  const result = { verified: false, reason: "", checkpoint: null, key: null, entries: [] };
  try {
    const served = await parseVerifierKey(await fetchText("/v1/ledger/public-key"));
    result.key = served;
    if (pinnedKey && pinnedKey.trim() !== served.text) {
      throw new Error("the coordinator serves another ledger key than the one you pinned");
    }
    const key = pinnedKey ? await parseVerifierKey(pinnedKey) : served;
    const note = parseCheckpoint(await fetchText("/v1/ledger/checkpoint"));
    result.checkpoint = note;
    await verifySignature(note, key);
    if (note.size > MAX_VERIFIED_ENTRIES) {
      throw new Error(`${note.size} entries: too many to check here, run dure audit`);
    }
    const raw = await fetchEntries(note.size);
    result.entries = raw.map(decodeEntry);
    const leaves = [];
    for (const entry of raw) leaves.push(await sha256(concat(Uint8Array.of(0), entry)));
    const root = await merkleRoot(leaves);
    if (!equal(root, note.root)) {
      throw new Error("the entries do not hash to the checkpoint's root");
    }
    result.verified = true;
    result.reason = `${note.size} entries hash to the root signed by ${key.name}`;
  } catch (error) {
    result.reason = error instanceof Error ? error.message : String(error);
  }
  return result;
}
