/**
 * Signed callback URLs (`{callback.EVENT}`): a token that delivers one event to one execution
 * without an API key, like a task token. The token is the claims (tenant, execution, event,
 * expiry, a nonce) in base64url, a dot, and their HMAC-SHA256 with CALLBACK_SECRET. A token
 * whose signature does not match is `callback_invalid`, one past its expiry `callback_expired`;
 * each token is accepted once (the caller claims its nonce), a replay is `callback_replayed`.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { MovaError } from "../errors.ts";
import { EVENT_NAME } from "../mova/schema.ts";

export interface CallbackClaims {
  tenant: string;
  executionId: string;
  event: string;
  /** Epoch ms. */
  expiresAt: number;
  /** Makes every URL rendered unique, so that each is used once. */
  nonce: string;
}

const MAX_TOKEN_LENGTH = 2048;

const invalid = () =>
  new MovaError("callback_invalid", "the callback URL is not valid (its signature does not match)", {
    status: 403,
  });

function sign(payload: string, secret: string): Buffer {
  return createHmac("sha256", secret).update(payload).digest();
}

export function signCallback(claims: Omit<CallbackClaims, "nonce">, secret: string, nonce?: string): string {
  const full: CallbackClaims = { ...claims, nonce: nonce ?? randomBytes(9).toString("base64url") };
  const payload = Buffer.from(
    JSON.stringify({
      t: full.tenant,
      x: full.executionId,
      e: full.event,
      exp: full.expiresAt,
      n: full.nonce,
    }),
  ).toString("base64url");
  return `${payload}.${sign(payload, secret).toString("base64url")}`;
}

/** The claims of a genuine token that has not expired; throws otherwise (nothing is claimed). */
export function verifyCallback(token: string, secret: string, nowMs: number): CallbackClaims {
  if (token.length > MAX_TOKEN_LENGTH) throw invalid();
  const [payload, signature, extra] = token.split(".");
  if (!payload || !signature || extra !== undefined) throw invalid();
  const expected = sign(payload, secret);
  const given = Buffer.from(signature, "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid();
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<string, unknown>;
  } catch {
    throw invalid();
  }
  const { t, x, e, exp, n } = raw;
  if (
    typeof t !== "string" ||
    typeof x !== "string" ||
    typeof e !== "string" ||
    !EVENT_NAME.test(e) ||
    typeof exp !== "number" ||
    typeof n !== "string"
  )
    throw invalid();
  if (nowMs >= exp) {
    throw new MovaError("callback_expired", "the callback URL has expired", { status: 410 });
  }
  return { tenant: t, executionId: x, event: e, expiresAt: exp, nonce: n };
}

/** The `{callback.EVENT}` URL maker of one execution, or undefined without a secret and base URL. */
export function callbackUrlMaker(
  settings: { secret?: string | undefined; baseUrl?: string | undefined },
  run: { tenant: string; executionId: string; expiresAt: number },
): ((event: string) => string | undefined) | undefined {
  const { secret, baseUrl } = settings;
  if (!secret || !baseUrl) return undefined;
  const base = baseUrl.replace(/\/+$/, "");
  return (event) =>
    `${base}/callbacks/${signCallback({ tenant: run.tenant, executionId: run.executionId, event, expiresAt: run.expiresAt }, secret)}`;
}
