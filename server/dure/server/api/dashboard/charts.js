// Inline SVG drawn here: the lineage graph (models <- rounds <- sites) and
// a site's cumulative epsilon over time.
const NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

export function shortSite(urn) {
  return urn.startsWith("urn:dure:site:") ? urn.slice("urn:dure:site:".length) : urn;
}

export function shortDigest(digest) {
  return digest ? digest.slice(0, 12) : "scratch";
}

function box(parent, x, y, label, kind, title) {
  const group = svg("g", { class: `node ${kind}`, "data-kind": kind, "data-id": title });
  group.append(svg("title", {}, title));
  group.append(svg("rect", { x, y: y - 13, width: 170, height: 26, rx: 6 }));
  group.append(svg("text", { x: x + 8, y: y + 4 }, label));
  parent.append(group);
}

function edge(parent, x1, y1, x2, y2, kind) {
  const mid = (x1 + x2) / 2;
  const d = `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
  parent.append(svg("path", { d, class: `edge ${kind}` }));
}

// lineage: the API's LineagePublic.
export function lineageGraph(lineage) {
  const rounds = [...lineage.rounds].sort((a, b) => a.index - b.index);
  const sites = lineage.sites;
  const rows = Math.max(rounds.length, sites.length, 1);
  const height = rows * 44 + 30;
  const root = svg("svg", {
    viewBox: `0 0 720 ${height}`, width: 720, height, role: "img",
    "aria-label": `lineage of model ${lineage.model}`, class: "lineage",
  });
  const edges = svg("g");
  const nodes = svg("g");
  root.append(edges, nodes);
  const siteY = new Map(sites.map((site, i) => [site, 30 + i * 44 * (rows / sites.length)]));
  const modelY = new Map();
  rounds.forEach((node, i) => modelY.set(node.model_digest, 30 + i * 44));
  rounds.forEach((node, i) => {
    const y = 30 + i * 44;
    box(nodes, 270, y, `${node.job_id} · round ${node.round}`, "round", `${node.job_id} round ${node.round}`);
    box(nodes, 530, y, `model ${shortDigest(node.model_digest)}`, "model", node.model_digest);
    edge(edges, 440, y, 530, y, "commits");
    for (const contribution of node.contributions) {
      const from = siteY.get(contribution.site);
      if (from !== undefined) edge(edges, 180, from, 270, y, "contributes");
    }
    if (node.parent_model && modelY.has(node.parent_model)) {
      const parentY = modelY.get(node.parent_model);
      const d = `M700,${parentY} C718,${parentY} 718,${y} 700,${y}`;
      edges.append(svg("path", { d, class: "edge parent" }));
    }
  });
  for (const [site, y] of siteY) box(nodes, 10, y, shortSite(site), "site", site);
  return root;
}

// Cumulative epsilon of a site over its usage records (ε per job is the
// largest cumulative value the job reported; the total sums the jobs).
export function epsilonSeries(records) {
  const perJob = new Map();
  const points = [];
  for (const record of [...records].sort((a, b) => a.index - b.index)) {
    if (record.epsilon_spent === null) continue;
    const spent = Number(record.epsilon_spent);
    perJob.set(record.job_id, Math.max(perJob.get(record.job_id) || 0, spent));
    const total = [...perJob.values()].reduce((a, b) => a + b, 0);
    points.push({ index: record.index, time: record.time, job: record.job_id, total });
  }
  return points;
}

export function epsilonPlot(records, budget) {
  const points = epsilonSeries(records);
  const width = 520;
  const height = 200;
  const left = 48;
  const bottom = 170;
  const top = 14;
  const root = svg("svg", {
    viewBox: `0 0 ${width} ${height}`, width, height, class: "epsilon", role: "img",
    "aria-label": "cumulative epsilon spent",
  });
  if (points.length === 0) {
    root.append(svg("text", { x: left, y: 90 }, "no ε reported for this site's data"));
    return root;
  }
  const most = Math.max(...points.map((p) => p.total), budget || 0) * 1.1 || 1;
  const x = (i) => left + (points.length === 1 ? 0.5 : i / (points.length - 1)) * (width - left - 20);
  const y = (v) => bottom - (v / most) * (bottom - top);
  root.append(svg("line", { x1: left, y1: bottom, x2: width - 10, y2: bottom, class: "axis" }));
  root.append(svg("line", { x1: left, y1: top, x2: left, y2: bottom, class: "axis" }));
  for (const tick of [0, most / 2, most / 1.1]) {
    root.append(svg("text", { x: 4, y: y(tick) + 4, class: "tick" }, tick.toFixed(2)));
  }
  root.append(svg("text", { x: left, y: height - 8, class: "tick" }, points[0].time));
  root.append(
    svg("text", { x: width - 150, y: height - 8, class: "tick" }, points[points.length - 1].time),
  );
  if (budget !== null && budget !== undefined) {
    root.append(svg("line", { x1: left, y1: y(budget), x2: width - 10, y2: y(budget), class: "budget" }));
    root.append(svg("text", { x: width - 110, y: y(budget) - 4, class: "tick" }, `budget ε ${budget}`));
  }
  let d = "";
  points.forEach((p, i) => {
    d += i === 0 ? `M${x(i)},${y(p.total)}` : ` H${x(i)} V${y(p.total)}`;
  });
  root.append(svg("path", { d, class: "series" }));
  points.forEach((p, i) => {
    const dot = svg("circle", { cx: x(i), cy: y(p.total), r: 4, class: "point", "data-total": p.total });
    dot.append(svg("title", {}, `entry ${p.index} ${p.time} ${p.job}: ε total ${p.total}`));
    root.append(dot);
  });
  return root;
}
