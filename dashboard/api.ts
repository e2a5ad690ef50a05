/**
 * The page's API client: every call carries the key as `Authorization: Bearer <key>`, the way
 * any client calls the API. The key is kept in the tab's sessionStorage (gone when the tab
 * closes), read once from the page's `#key=` fragment (never sent to the server) or asked for.
 * URLs are relative to the page, so the dashboard works under a stage path too.
 */
const KEY_ITEM = "mova.apiKey";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function storedKey(): string | null {
  const fragment = new URLSearchParams(location.hash.slice(1)).get("key");
  if (fragment) {
    sessionStorage.setItem(KEY_ITEM, fragment);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(KEY_ITEM);
}

export function saveKey(key: string): void {
  sessionStorage.setItem(KEY_ITEM, key);
}

export function forgetKey(): void {
  sessionStorage.removeItem(KEY_ITEM);
}

// biome-ignore lint/suspicious/noExplicitAny: the page reads the API's JSON field by field
export type Json = any;

export async function api(path: string, options: { method?: string; body?: unknown } = {}): Promise<Json> {
  const key = sessionStorage.getItem(KEY_ITEM) ?? "";
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(new URL(path.replace(/^\//, ""), document.baseURI), {
    method: options.method ?? "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.text();
  const json = text ? JSON.parse(text) : undefined;
  if (!response.ok) {
    const error = json?.error ?? {};
    throw new ApiError(response.status, error.code ?? "error", error.message ?? response.statusText);
  }
  return json;
}

export const enc = encodeURIComponent;
