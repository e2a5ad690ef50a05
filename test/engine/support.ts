/**
 * Shared set-up for the engine tests: the real adapters (OpenAI SDK, HTTP tool port) talking
 * to loopback servers, and documents normalised by the real schema.
 */
import { afterAll, beforeAll, beforeEach } from "vitest";
import { createHttpTools } from "../../lib/adapters/http/tools.ts";
import { createOpenAiLlm } from "../../lib/adapters/llm/openai.ts";
import type { Clock, EnginePorts, SecretsPort } from "../../lib/ports.ts";
import { MovaDocument, type MovaDocumentInput } from "../../lib/mova/schema.ts";
import { type FakeOpenAi, startFakeOpenAi } from "../support/fake-openai.ts";
import { type HttpDouble, startHttpDouble } from "../support/http-double.ts";

export interface Servers {
  openai: FakeOpenAi;
  api: HttpDouble;
  ports(extra?: Partial<EnginePorts>): EnginePorts;
  close(): Promise<void>;
}

export async function startServers(): Promise<Servers> {
  const [openai, api] = await Promise.all([startFakeOpenAi(), startHttpDouble()]);
  // The SDK's own retries are off so that every retry seen is the engine's.
  const llm = createOpenAiLlm({
    apiKey: "test-key",
    baseURL: openai.baseURL,
    model: "fake-model",
    maxRetries: 0,
  });
  const tools = createHttpTools({ allowHosts: ["127.0.0.1"] });
  return {
    openai,
    api,
    ports: (extra = {}) => ({ llm, tools, ...extra }),
    close: async () => {
      await Promise.all([openai.close(), api.close()]);
    },
  };
}

/**
 * The servers of a test file: started before its tests (then `setUp`, for the file's own
 * routes), closed after them, and their recorded requests cleared before each test. The
 * object returned is filled in when the servers are up.
 */
export function useServers(setUp?: (servers: Servers) => void): Servers {
  const servers = {} as Servers;
  beforeAll(async () => {
    Object.assign(servers, await startServers());
    setUp?.(servers);
  });
  afterAll(async () => {
    await servers.close?.();
  });
  beforeEach(() => {
    servers.openai.double.requests.length = 0;
    servers.api.requests.length = 0;
  });
  return servers;
}

/** A document with defaults filled in, as `loadDocument` would return it. */
export function documentOf(input: Omit<MovaDocumentInput, "version"> & { version?: string }): MovaDocument {
  return MovaDocument.parse({ version: "2.2", ...input });
}

export function secretsOf(values: Record<string, string>): SecretsPort {
  return { get: (name) => (Object.hasOwn(values, name) ? values[name] : undefined) };
}

/** A clock whose time the test moves, and whose sleeps are recorded (and really wait `scale` × ms). */
export function controlledClock(start = Date.parse("2025-01-01T00:00:00.000Z"), scale = 0) {
  let offset = 0;
  const sleeps: number[] = [];
  const clock: Clock = {
    now: () => start + offset,
    sleep: (ms, signal) =>
      new Promise<void>((resolve, reject) => {
        sleeps.push(ms);
        if (signal?.aborted) {
          reject(signal.reason);
          return;
        }
        const timer = setTimeout(resolve, ms * scale);
        signal?.addEventListener("abort", () => {
          clearTimeout(timer);
          reject(signal.reason);
        });
      }),
  };
  return {
    clock,
    sleeps,
    advance(ms: number) {
      offset += ms;
    },
  };
}
