// Typed access to /api/v1: every answer is one of the ts-rs types of
// baton-protocol (web/types), so `tsc --noEmit` checks the UI against the API.
import type { ErrorBody } from "../types/ErrorBody";

const TOKEN_KEY = "baton-token";

/** The bearer token kept in localStorage ("" when signed out). */
export function token(): string {
  return localStorage.getItem(TOKEN_KEY) ?? "";
}

/** Keep (or with "" forget) the bearer token. */
export function setToken(value: string): void {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

/** An API error: the HTTP status and the server's message. */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Call `path` under /api/v1 with the token (unless `anonymous`), parse the JSON answer. */
export async function api<T>(path: string, init: RequestInit = {}, anonymous = false): Promise<T> {
  const headers = new Headers(init.headers);
  if (!anonymous) headers.set("Authorization", "Bearer " + token());
  if (init.body) headers.set("Content-Type", "application/json");
  const res = await fetch("/api/v1" + path, { ...init, headers });
  if (res.status === 204) return undefined as T;
  const body: unknown = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = body as Partial<ErrorBody>;
    throw new ApiError(res.status, err.message ?? res.statusText);
  }
  return body as T;
}

/** A query string from the set values of `params` ("" when none). */
export function query(params: Record<string, string | number | boolean | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== "" && v !== false) q.set(k, String(v));
  }
  const s = q.toString();
  return s ? "?" + s : "";
}
