/**
 * Retries with exponential backoff and jitter, per-attempt timeouts enforced with an
 * AbortSignal, and the classification of what is worth retrying.
 */
import { MovaError } from "../errors.ts";
import type { Retry } from "../mova/schema.ts";

type Jitter = "full" | "equal" | "none";

/** No single wait between attempts is longer than this. */
export const MAX_BACKOFF_MS = 60_000;

interface RetryPolicy {
  /** Tries in all, the first included. */
  attempts: number;
  backoffMs: number;
}

/** The step's `retry`, else the tool's, else a single try. */
export function resolveRetryPolicy(stepRetry?: Retry, toolRetry?: Retry): RetryPolicy {
  const retry = stepRetry ?? toolRetry;
  if (!retry) return { attempts: 1, backoffMs: 0 };
  return { attempts: Math.max(1, Math.floor(retry.attempts)), backoffMs: Math.max(0, retry.backoff_ms) };
}

/**
 * The wait before retry number `retryNumber` (1 = before the second try): the exponential
 * ceiling `backoffMs * 2^(retryNumber-1)`, jittered. Full jitter waits anywhere in
 * [0, ceiling); equal jitter in [ceiling/2, ceiling), so the waits still visibly grow.
 */
export function backoffDelay(
  retryNumber: number,
  backoffMs: number,
  random: () => number = Math.random,
  jitter: Jitter = "equal",
): number {
  const ceiling = Math.min(MAX_BACKOFF_MS, backoffMs * 2 ** Math.max(0, retryNumber - 1));
  const r = Math.min(Math.max(random(), 0), 1);
  switch (jitter) {
    case "full":
      return Math.floor(r * ceiling);
    case "equal":
      return Math.floor(ceiling / 2 + (r * ceiling) / 2);
    default:
      return ceiling;
  }
}

/** HTTP statuses worth another try: 429 and 5xx. Never another 4xx. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599);
}

/** Whether a failed attempt may succeed if tried again. */
export function isRetryable(error: unknown): boolean {
  if (!(error instanceof MovaError)) return false;
  if (error.status !== undefined) return isRetryableStatus(error.status);
  return error.retryable;
}

export interface AttemptFailure {
  code: string;
  message: string;
  retryable: boolean;
  httpStatus?: number;
  /** The run's own signal was aborted (deadline or cancellation): stop, do not retry. */
  aborted?: boolean;
}

type RetryOutcome<T> =
  | { ok: true; value: T; attempts: number }
  | { ok: false; failure: AttemptFailure; attempts: number };

interface RetryOptions {
  policy: RetryPolicy;
  /** One attempt's time bound; enforced with an AbortSignal. */
  timeoutMs?: number | undefined;
  /** The run's signal (deadline, cancellation). */
  signal: AbortSignal;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
  jitter?: Jitter;
  /** Turns what an attempt threw into a failure. */
  classify: (error: unknown) => AttemptFailure;
  /** Told of each wait before a retry (for tests and logs). */
  onBackoff?: (ms: number, retryNumber: number) => void;
}

/** Resolves with the promise, or rejects with the signal's reason as soon as it aborts. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      promise.catch(() => {});
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

const never = (): boolean => false;
const nothing = (): void => {};

/** A signal aborted by its parent or after `timeoutMs`, whichever comes first. */
function attemptSignal(
  parent: AbortSignal,
  timeoutMs: number | undefined,
): { signal: AbortSignal; timedOut: () => boolean; dispose: () => void } {
  // Without a timeout only the parent can abort the attempt: its own signal would add nothing
  // but an AbortController and a listener per attempt (a fifth of the engine's cost per step).
  if (timeoutMs === undefined) return { signal: parent, timedOut: never, dispose: nothing };
  const controller = new AbortController();
  let timedOut = false;
  const onParent = () => controller.abort(parent.reason);
  if (parent.aborted) controller.abort(parent.reason);
  else parent.addEventListener("abort", onParent, { once: true });
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(
      new MovaError("timeout", `the attempt timed out after ${timeoutMs} ms`, { retryable: true }),
    );
  }, timeoutMs);
  return {
    signal: controller.signal,
    timedOut: () => timedOut,
    dispose() {
      clearTimeout(timer);
      parent.removeEventListener("abort", onParent);
    },
  };
}

function abortedFailure(): AttemptFailure {
  return { code: "aborted", message: "the run was stopped", retryable: false, aborted: true };
}

/** Runs `attempt` until it succeeds, fails for good, or the tries run out. */
export async function runWithRetry<T>(
  options: RetryOptions,
  attempt: (signal: AbortSignal, attemptNumber: number) => Promise<T>,
): Promise<RetryOutcome<T>> {
  const { policy, signal } = options;
  let attempts = 0;
  for (;;) {
    if (signal.aborted) return { ok: false, failure: abortedFailure(), attempts };
    attempts += 1;
    const bound = attemptSignal(signal, options.timeoutMs);
    let failure: AttemptFailure;
    try {
      const value = await raceAbort(attempt(bound.signal, attempts), bound.signal);
      return { ok: true, value, attempts };
    } catch (error) {
      if (signal.aborted) return { ok: false, failure: abortedFailure(), attempts };
      failure = bound.timedOut()
        ? { code: "timeout", message: `the attempt timed out after ${options.timeoutMs} ms`, retryable: true }
        : options.classify(error);
    } finally {
      bound.dispose();
    }
    if (!failure.retryable || attempts >= policy.attempts) return { ok: false, failure, attempts };
    const wait = backoffDelay(attempts, policy.backoffMs, options.random, options.jitter);
    options.onBackoff?.(wait, attempts);
    try {
      await options.sleep(wait, signal);
    } catch {
      return { ok: false, failure: abortedFailure(), attempts };
    }
  }
}
