// The dashboard: verifies the ledger (public), then reads what the viewer's
// read token may read. Nothing is cached across tabs; every load starts over.
import { ApiError, forgetToken, member, setToken, takeTokenFromFragment, token } from "./api.js";
import { verifyLedger } from "./ledger.js";
import {
  h, renderJobs, renderLedger, renderLineage, renderMember, renderModels, renderRevocations,
  renderSites, renderUsage,
} from "./views.js";

const PINNED = "dure.dashboard.ledgerKey";
const REFRESH_MS = 15000;
const $ = (id) => document.getElementById(id);
let selectedModel = "";
let loading = false;

function problem(el, error) {
  const text = error instanceof ApiError && error.status === 401
    ? "Members only: sign in with a read token (see docs/api.md, Dashboard)."
    : `Could not load: ${error.message}`;
  el.replaceChildren(h("p", { class: "problem" }, text));
}

async function ledger() {
  const pinned = localStorage.getItem(PINNED);
  const result = await verifyLedger(pinned);
  renderLedger($("ledger"), result, pinned, () => {
    localStorage.setItem(PINNED, result.key.text);
    load();
  });
}

async function lineage(digest) {
  selectedModel = digest;
  const el = $("lineage");
  if (!digest) return el.replaceChildren();
  try {
    renderLineage(el, await member(`/v1/models/${digest}/lineage`));
  } catch (error) {
    problem(el, error);
  }
}

async function usage(me, policies) {
  const el = $("usage");
  el.replaceChildren();
  // Only the member's own site and the sites it audits: nobody else's report is asked for.
  const readable = [...new Set([me.site, ...me.audits].filter(Boolean))];
  if (readable.length === 0) {
    el.append(h("p", { class: "muted" },
      "A site's usage is shown to that site and the auditors it named only; you are neither."));
  }
  for (const site of readable) {
    const current = policies.find((p) => p.site === site && p.current);
    renderUsage(el, site, await member(`/v1/sites/${site}/usage`), current);
  }
}

async function members() {
  const sections = ["sites", "jobs", "models", "usage", "revocations"].map($);
  if (!token()) {
    $("whoami").replaceChildren("Not signed in: only the public ledger is shown.");
    $("signin").hidden = false;
    $("signout").hidden = true;
    sections.forEach((el) => problem(el, new ApiError(401, null)));
    return;
  }
  $("signin").hidden = true;
  $("signout").hidden = false;
  try {
    const me = await member("/v1/me");
    renderMember($("whoami"), me);
    const [sites, policies, jobs, rounds, models, revocations] = await Promise.all(
      ["/v1/sites", "/v1/policies", "/v1/jobs", "/v1/rounds", "/v1/models", "/v1/revocations"]
        .map(member),
    );
    renderSites($("sites"), sites, policies);
    renderJobs($("jobs"), jobs, rounds);
    renderModels($("models"), models, lineage);
    renderRevocations($("revocations"), revocations);
    if (selectedModel) {
      $("model-select").value = selectedModel;
      await lineage(selectedModel);
    }
    await usage(me, policies);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      forgetToken();
      $("whoami").replaceChildren(`Signed out: ${error.message}`);
      $("signin").hidden = false;
      $("signout").hidden = true;
    }
    sections.forEach((el) => problem(el, error));
  }
}

async function load() {
  if (loading) return;
  loading = true;
  try {
    await Promise.all([ledger(), members()]);
    $("updated").textContent = `updated ${new Date().toISOString().slice(0, 19)}Z`;
    document.body.dataset.loaded = "true";
  } finally {
    loading = false;
  }
}

function start() {
  takeTokenFromFragment();
  $("signin").addEventListener("submit", (event) => {
    event.preventDefault();
    try {
      setToken($("token").value);
      $("token").value = "";
      load();
    } catch (error) {
      $("whoami").replaceChildren(error.message);
    }
  });
  $("signout").addEventListener("click", () => {
    forgetToken();
    load();
  });
  $("refresh").addEventListener("click", load);
  load();
  setInterval(() => {
    if ($("live").checked) load();
  }, REFRESH_MS);
}

start();
