// A signed ODRL usage policy (docs/policy-language.md) as plain sentences.
const LABELS = {
  purpose: "Purposes allowed",
  recipient: "Models may go to",
  dateTime: "Valid until",
  count: "At most (rounds)",
  "dure:minContributors": "Minimum contributors per round",
  "dure:secureAggregation": "Secure aggregation required",
  "dure:aggregation": "Aggregation strategies",
  "dure:dpEpsilon": "Differential privacy budget ε at most",
  "dure:dpDelta": "DP δ at most",
  "dure:dpClip": "DP clipping norm at most",
  "dure:coordinator": "Coordinator",
  "dure:task": "Tasks",
  "dure:tag": "Tags",
};
const ACTIONS = { use: "Training", derive: "Derived models", distribute: "Distribution" };
const OPERATORS = {
  eq: "",
  lt: "before ",
  lteq: "≤ ",
  gteq: "≥ ",
  isAnyOf: "",
  isNoneOf: "none of: ",
};

function value(operand) {
  if (Array.isArray(operand)) return operand.map(value).join(", ");
  if (operand && typeof operand === "object" && "@value" in operand) return String(operand["@value"]);
  if (typeof operand === "boolean") return operand ? "yes" : "no";
  return String(operand);
}

function describe(constraint) {
  const left = constraint.leftOperand;
  const label = LABELS[left] || left;
  const prefix = OPERATORS[constraint.operator] ?? `${constraint.operator} `;
  return [label, prefix + value(constraint.rightOperand)];
}

function constraints(rule) {
  return (rule.constraint || []).map(describe);
}

// Rows [label, text] summarising a policy (its PolicyPublic from the API).
export function policyRows(policy) {
  const doc = policy.document || {};
  const rows = [
    ["Policy", doc.uid || policy.uid],
    ["Issued", policy.issued],
    ["Expires", policy.expires],
    ["On revocation", policy.on_revocation],
  ];
  for (const refinement of (doc.target && doc.target.refinement) || []) {
    rows.push(["Data: " + describe(refinement)[0].toLowerCase(), describe(refinement)[1]]);
  }
  for (const rule of doc.permission || []) {
    const action = ACTIONS[rule.action] || rule.action;
    rows.push([`${action}: allowed to`, value(rule.assignee || "anyone")]);
    for (const [label, text] of constraints(rule)) rows.push([`${action}: ${label}`, text]);
  }
  for (const rule of doc.prohibition || []) {
    for (const [label, text] of constraints(rule)) {
      const what = label === LABELS.purpose ? "Purposes forbidden" : `Forbidden: ${label}`;
      rows.push([what, text]);
    }
  }
  return rows;
}

// The ε budget a policy allows (a number), or null when it sets none.
export function epsilonBudget(policy) {
  for (const rule of (policy && policy.document && policy.document.permission) || []) {
    for (const constraint of rule.constraint || []) {
      if (constraint.leftOperand === "dure:dpEpsilon") return Number(value(constraint.rightOperand));
    }
  }
  return null;
}
