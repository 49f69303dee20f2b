// The page's sections, built with textContent only (no HTML from data).
import { epsilonPlot, lineageGraph, shortDigest, shortSite } from "./charts.js";
import { toHex } from "./ledger.js";
import { epsilonBudget, policyRows } from "./policy.js";

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function table(headers, rows, attrs = {}) {
  return h(
    "table", attrs,
    h("thead", {}, h("tr", {}, headers.map((title) => h("th", {}, title)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, row.map((cell) => h("td", {}, cell))))),
  );
}

function digest(value) {
  return value ? h("code", { title: value }, shortDigest(value)) : "—";
}

function summary(entry) {
  const parts = [];
  if (entry.site) parts.push(shortSite(entry.site));
  if (entry.job_id) parts.push(entry.job_id);
  if (entry.round !== undefined) parts.push(`round ${entry.round}`);
  if (entry.model_digest) parts.push(`model ${shortDigest(entry.model_digest)}`);
  if (entry.contributors) parts.push(`from ${entry.contributors.map(shortSite).join(", ")}`);
  if (entry.epsilon_spent) parts.push(`ε ${entry.epsilon_spent}`);
  if (entry.mode) parts.push(entry.mode);
  if (entry.recipients) parts.push(`to ${entry.recipients.join(", ")}`);
  return parts.join(" · ");
}

export function renderLedger(el, result, pinned, onPin) {
  const state = result.verified ? "verified" : "failed";
  const note = result.checkpoint;
  el.replaceChildren(
    h("p", {},
      h("span", { id: "ledger-status", class: `badge ${state}`, "data-state": state },
        result.verified ? "verified" : "NOT VERIFIED"),
      " ", h("span", { id: "ledger-reason" }, result.reason)),
    h("dl", { class: "facts" },
      h("dt", {}, "Log"), h("dd", {}, note ? note.origin : "—"),
      h("dt", {}, "Size"), h("dd", {}, note ? String(note.size) : "—"),
      h("dt", {}, "Root"), h("dd", {}, note ? h("code", {}, toHex(note.root)) : "—"),
      h("dt", {}, "Ledger key"),
      h("dd", {}, result.key ? h("code", {}, result.key.text) : "—", " ",
        pinned ? h("span", { class: "muted" }, "(pinned in this browser)")
          : result.key ? h("button", { type: "button", onclick: onPin }, "Pin this key") : null)),
    table(
      ["#", "time", "kind", "what"],
      [...result.entries].reverse().slice(0, 300)
        .map((e) => [String(e.index), e.time || "", e.kind || "", summary(e)]),
      { id: "ledger-entries" },
    ),
  );
}

export function renderMember(el, me) {
  const what = me.role === "operator" ? "the consortium operator"
    : me.site ? `site ${me.site}` : "an auditor";
  el.replaceChildren(
    h("span", { id: "member" }, `Signed in as ${what}`),
    me.audits.length ? ` (auditing ${me.audits.join(", ")})` : "",
    ` · key ${me.key_id.slice(0, 12)}`,
  );
}

function policyTable(policy) {
  return table(["", ""], policyRows(policy), { class: "policy" });
}

export function renderSites(el, sites, policies) {
  el.replaceChildren(...sites.map((site) => {
    const own = policies.filter((p) => p.site === site.name);
    const current = own.find((p) => p.current);
    const older = own.filter((p) => !p.current);
    return h("article", { class: "site", "data-site": site.name },
      h("h3", {}, site.name, " ",
        h("span", { class: `badge ${site.revoked ? "failed" : "verified"}` },
          site.revoked ? "revoked" : current ? "active" : "no policy")),
      h("p", { class: "muted" }, site.urn, " · signing key ", site.signing_key_id.slice(0, 12)),
      current ? policyTable(current) : h("p", {}, "No current policy: the site takes part in no job."),
      older.length ? h("details", {}, h("summary", {}, `${older.length} earlier policies`),
        table(["policy", "issued", "expires", "status"], older.map((p) => [
          digest(p.policy_id), p.issued, p.expires,
          p.revoked ? `revoked ${p.revoked_at || ""} (${p.revocation_mode || ""})` : "superseded",
        ]))) : null,
    );
  }));
}

export function renderJobs(el, jobs, rounds) {
  const jobRows = jobs.map((job) => {
    const doc = job.document || {};
    const dp = doc.dp ? `ε ${doc.dp.epsilon}, δ ${doc.dp.delta}` : "none";
    const aggregation = doc.aggregation
      ? `${doc.aggregation.strategy}${doc.aggregation.secure ? ", secure" : ""}` : "";
    return [job.job_id, job.purpose, String(job.rounds), String(doc.min_contributors ?? ""),
      aggregation, dp, job.recipients.map(shortSite).join(", "), job.expires];
  });
  const roundRows = rounds.map((r) => [
    r.job_id, String(r.round), r.status, r.accepted.map(shortSite).join(", "),
    Object.keys(r.rejected).map(shortSite).join(", ") || "—", digest(r.model_digest),
    r.epsilon_spent ?? "—", r.reason || "",
  ]);
  el.replaceChildren(
    table(["job", "purpose", "rounds", "min contributors", "aggregation", "DP", "recipients",
      "expires"], jobRows, { id: "jobs" }),
    h("h3", {}, "Rounds"),
    table(["job", "round", "status", "contributors", "rejected", "model", "ε", "reason"],
      roundRows, { id: "rounds" }),
  );
}

export function renderModels(el, models, onSelect) {
  const select = h("select", { id: "model-select", onchange: () => onSelect(select.value) },
    h("option", { value: "" }, "choose a model…"),
    models.map((m) => h("option", { value: m.model.model_digest },
      `${shortDigest(m.model.model_digest)} · ${m.model.job_id} round ${m.model.round}`)));
  el.replaceChildren(
    table(["model", "job", "round", "parent", "contributors", "ε", "released to"],
      models.map((m) => [digest(m.model.model_digest), m.model.job_id, String(m.model.round),
        digest(m.model.parent_model),
        m.model.contributions.map((c) => shortSite(c.site)).join(", "),
        m.model.epsilon_spent ?? "—", m.released_to.join(", ") || "—"]), { id: "models" }),
    h("p", {}, h("label", {}, "Lineage of ", select)),
    h("div", { id: "lineage" }),
  );
}

export function renderLineage(el, lineage) {
  el.replaceChildren(
    h("p", {}, "Model ", h("code", {}, lineage.model), lineage.base_model
      ? ` · base model ${shortDigest(lineage.base_model)}` : " · trained from scratch"),
    h("p", {}, "Data from these sites reached this model:"),
    h("ul", { id: "lineage-sites" }, lineage.sites.map((s) => h("li", { "data-site": s }, shortSite(s)))),
    lineageGraph(lineage),
    table(["site", "policy"], lineage.policies.map((p) => [shortSite(p.site), digest(p.policy_id)])),
  );
}

export function renderUsage(el, site, usage, policy) {
  const budget = epsilonBudget(policy);
  el.append(h("article", { class: "usage", "data-site": site },
    h("h3", {}, `Usage of ${site}'s data`),
    h("p", {}, `ε spent in total: `, h("strong", { class: "epsilon-total" }, usage.epsilon_total),
      budget !== null ? ` of a budget of ${budget} per job` : ""),
    epsilonPlot(usage.records, budget),
    table(["#", "time", "job", "round", "model", "ε (cumulative)", "examples"],
      usage.records.map((r) => [String(r.index), r.time, r.job_id, String(r.round),
        digest(r.model_digest), r.epsilon_spent ?? "—", String(r.examples ?? "—")])),
    h("p", {}, `Models holding this data: ${usage.models.map(shortDigest).join(", ") || "none"}`),
  ));
}

export function renderRevocations(el, revocations) {
  el.replaceChildren(revocations.length === 0 ? h("p", {}, "No revocations.") : table(
    ["#", "site", "policy", "mode", "models affected", "retrain from"],
    revocations.map((r) => [String(r.index), r.site, digest(r.policy_id), r.mode,
      h("ul", { class: "affected" }, r.affected_models.map((m) => h("li", { "data-model": m }, digest(m)))),
      Object.entries(r.retrain_from).map(([m, p]) => `${shortDigest(m)} ← ${shortDigest(p)}`).join("; ")]),
    { id: "revocations-table" },
  ));
}
