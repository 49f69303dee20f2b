// Reads with the viewer's read token (POST /v1/auth/token), kept in this
// tab's sessionStorage only. A token in the URL fragment (#token=...) is taken
// once and removed from the address bar; the fragment never reaches a server.
const TOKEN = "dure.dashboard.token";

export function takeTokenFromFragment() {
  const match = /(?:^#|&)token=([A-Za-z0-9._-]+)/.exec(location.hash);
  if (match) {
    sessionStorage.setItem(TOKEN, match[1]);
    history.replaceState(null, "", location.pathname + location.search);
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN);
}

export function setToken(value) {
  const clean = value.trim();
  if (!/^[A-Za-z0-9._-]+$/.test(clean)) throw new Error("that is not a read token");
  sessionStorage.setItem(TOKEN, clean);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN);
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem && problem.detail ? `${problem.detail}` : `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export async function member(path) {
  const current = token();
  if (!current) throw new ApiError(401, { detail: "not signed in" });
  const response = await fetch(path, {
    headers: { Authorization: `Bearer ${current}`, Accept: "application/json" },
    cache: "no-store",
    credentials: "omit",
  });
  if (!response.ok) {
    let problem = null;
    try {
      problem = await response.json();
    } catch {
      problem = null;
    }
    throw new ApiError(response.status, problem);
  }
  return response.json();
}
