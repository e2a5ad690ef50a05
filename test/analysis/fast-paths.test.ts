/**
 * The analysis's fast paths answer exactly as the plain code they stand in for: timestamps
 * as Date.parse, cached path keys as pathKey, the term index as extractTerms and the cache
 * (the very same lists), the split sum of a sketch as one sum, the hand-read stored
 * aggregate as the schema's reading.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  AggregateJsonSchema,
  MAX_PATH_KEY_LENGTH,
  addExecution,
  aggregateFromJSON,
  aggregateToJSON,
  cachedPathKey,
  createAggregate,
  pathKey,
  readAggregateJson,
} from "../../lib/analysis/aggregate.ts";
import { MovaError } from "../../lib/errors.ts";
import { LatencySketch } from "../../lib/analysis/sketch.ts";
import { extractTerms, termsOf } from "../../lib/analysis/terms.ts";
import { parseTimestamp } from "../../lib/analysis/time.ts";
import type { ExecutionRecord } from "../../lib/core/execution-record.ts";
import { seededRandom } from "../support/seeded-random.ts";

describe("parseTimestamp", () => {
  it("reads every canonical timestamp as Date.parse does, years 0000 to 9999", () => {
    const random = seededRandom(1);
    const min = Date.parse("0000-01-01T00:00:00.000Z");
    const max = Date.parse("9999-12-31T23:59:59.999Z");
    for (let i = 0; i < 20_000; i++) {
      const ms = min + Math.floor(random() * (max - min));
      const text = new Date(ms).toISOString();
      expect(parseTimestamp(text)).toBe(ms);
    }
    for (const text of ["2024-02-29T12:00:00.000Z", "2000-02-29T00:00:00.000Z", "1970-01-01T00:00:00.000Z"])
      expect(parseTimestamp(text)).toBe(Date.parse(text));
  });

  it("answers as Date.parse for anything else", () => {
    const odd = [
      "2023-02-29T00:00:00.000Z",
      "2024-02-30T00:00:00.000Z",
      "2024-04-31T00:00:00.000Z",
      "2024-13-01T00:00:00.000Z",
      "2024-00-10T00:00:00.000Z",
      "2024-01-00T00:00:00.000Z",
      "2024-01-01T24:00:00.000Z",
      "2024-01-01T23:60:00.000Z",
      "2024-01-01T23:59:60.000Z",
      "2024-01-01T00:00:00Z",
      "2024-01-01T00:00:00.000+02:00",
      "2024-01-01 00:00:00.000Z",
      "2024-01-01t00:00:00.000z",
      "+02024-01-01T00:00:00.00Z",
      "2024-1a-01T00:00:00.000Z",
      "2024-01-01T00:0:000.000Z",
      "２０２４-01-01T00:00:00.000Z",
      "",
      "garbage",
    ];
    const random = seededRandom(2);
    const base = "2025-11-19T17:45:12.345Z";
    for (let i = 0; i < 5000; i++) {
      const at = Math.floor(random() * base.length);
      const char = String.fromCharCode(32 + Math.floor(random() * 95));
      odd.push(base.slice(0, at) + char + base.slice(at + 1));
    }
    for (const text of odd) expect(parseTimestamp(text)).toBe(Date.parse(text));
    expect(parseTimestamp(undefined as unknown as string)).toBeNaN();
  });
});

describe("cachedPathKey", () => {
  it("is pathKey, for short and cut paths, past the cache's size", () => {
    const random = seededRandom(3);
    const ids = ["greet", "classify", "route", "x".repeat(60), "y".repeat(150), "notify"];
    for (let i = 0; i < 20_000; i++) {
      const path = Array.from({ length: Math.floor(random() * 12) }, () =>
        random() < 0.9 ? ids[Math.floor(random() * ids.length)]! : `step_${Math.floor(random() * 5000)}`,
      );
      const key = cachedPathKey(path);
      expect(key).toBe(pathKey(path));
      expect(key.length).toBeLessThanOrEqual(MAX_PATH_KEY_LENGTH + 4);
    }
    expect(cachedPathKey([])).toBe("");
    expect(cachedPathKey(["z".repeat(MAX_PATH_KEY_LENGTH + 1), "a"])).toBe(" > …");
  });
});

describe("termsOf", () => {
  it("gives extractTerms' lists, one list per prompt while cached, however the prompts collide", () => {
    const random = seededRandom(4);
    const cities = ["Kyiv", "Lviv", "Oslo", "Rome", "Paris", "Odesa"];
    const prompts = Array.from(
      { length: 600 },
      (_, i) =>
        `Reply to the customer in ${cities[i % cities.length]} about order ${i % 97} ${"and more ".repeat(i % 5)}`,
    );
    const first = new Map<string, readonly string[]>();
    for (let i = 0; i < 30_000; i++) {
      // A fresh string each time, as a record read from JSON holds.
      const prompt = JSON.parse(JSON.stringify(prompts[Math.floor(random() * prompts.length)]!)) as string;
      const terms = termsOf(prompt);
      expect(terms).toEqual(extractTerms(prompt));
      const seen = first.get(prompt);
      if (seen === undefined) first.set(prompt, terms);
      else expect(terms).toBe(seen);
    }
  });
});

describe("LatencySketch sums and extremes", () => {
  it("keeps the sum exact in microseconds far past 2^31, through merges and the stored form", () => {
    const random = seededRandom(5);
    const a = new LatencySketch();
    const b = new LatencySketch();
    let micros = 0;
    for (let i = 0; i < 200_000; i++) {
      const ms = random() < 0.5 ? Math.floor(random() * 60_000) : random() * 90_000;
      micros += Math.round(ms * 1000);
      (i % 3 === 0 ? a : b).add(ms);
    }
    const merged = new LatencySketch().merge(a).merge(b);
    expect(merged.sum).toBe(micros / 1000);
    expect(LatencySketch.fromJSON(JSON.parse(JSON.stringify(merged.toJSON()))).toJSON()).toEqual(
      merged.toJSON(),
    );
    expect(merged.toJSON().s).toBe(micros);
  });

  it("reads min and max from the first value and from merges into an empty sketch", () => {
    const sketch = new LatencySketch();
    expect(sketch.min).toBeUndefined();
    sketch.add(7);
    expect([sketch.min, sketch.max]).toEqual([7, 7]);
    const empty = new LatencySketch();
    empty.merge(new LatencySketch());
    expect(empty.min).toBeUndefined();
    empty.merge(sketch);
    expect([empty.min, empty.max]).toEqual([7, 7]);
    const other = new LatencySketch();
    other.add(3.5);
    other.add(12);
    empty.merge(other);
    expect([empty.min, empty.max, empty.count]).toEqual([3.5, 12, 3]);
  });

  it("stores and reads large bucket counts as base-36 integers", () => {
    const sketch = new LatencySketch();
    for (let i = 0; i < 5000; i++) sketch.add(100);
    sketch.add(200);
    const json = sketch.toJSON();
    expect(json.c.startsWith((5000).toString(36))).toBe(true);
    expect(LatencySketch.fromJSON(json).toJSON()).toEqual(json);
    const huge = { ...json, n: 2 ** 52 + 1, c: `${(2 ** 52).toString(36)},1` };
    expect(LatencySketch.fromJSON(huge).count).toBe(2 ** 52 + 1);
    expect(() => LatencySketch.fromJSON({ ...json, c: "zzzzzzzzzzzz,1" })).toThrow(/bucket count malformed/);
    expect(() => LatencySketch.fromJSON({ ...json, c: "1,A" })).toThrow(/bucket counts malformed/);
  });
});

describe("aggregateFromJSON", () => {
  const KEY = { tenant: "acme", document: "support", protocol: "triage" };
  const record = (i: number): ExecutionRecord => ({
    ...KEY,
    executionId: `e${i}`,
    documentVersion: 1,
    trigger: "api",
    intent: i % 2 === 0 ? "buy" : "ask",
    status: i % 5 === 0 ? "failed" : "completed",
    startedAt: "2026-02-10T00:00:00.000Z",
    finishedAt: "2026-02-10T00:00:01.000Z",
    durationMs: 1000 + i,
    path: ["ask", "call"],
    steps: [
      {
        id: "ask",
        action: "prompt",
        status: "succeeded",
        attempts: 1,
        startedAt: "2026-02-10T00:00:00.000Z",
        durationMs: 300 + i,
        prompt: `Answer question ${i % 7} politely`,
      },
      {
        id: "call",
        action: "tool_api",
        status: i % 5 === 0 ? "failed" : "succeeded",
        attempts: i % 5 === 0 ? 3 : 1,
        startedAt: "2026-02-10T00:00:00.300Z",
        durationMs: 40 + i,
        toolId: "crm",
        httpStatus: i % 5 === 0 ? 503 : 200,
        ...(i % 5 === 0 ? { error: { code: "tool_http_status", message: "503" } } : {}),
      },
    ],
    unresolved: [],
    offline: false,
    analysis: "published",
  });

  it("reads what it stores, keeps the key order of the parts it stores as read, ignores unknown keys", () => {
    const aggregate = createAggregate(KEY);
    for (let i = 0; i < 50; i++) addExecution(aggregate, record(i));
    const json = JSON.parse(JSON.stringify(aggregateToJSON(aggregate)));
    expect(aggregateToJSON(aggregateFromJSON(json))).toEqual(json);
    expect(JSON.stringify(aggregateToJSON(aggregateFromJSON(json)))).toBe(JSON.stringify(json));
    // Keys in another order, and keys the stored form does not have.
    const shuffled = JSON.parse(JSON.stringify(json));
    shuffled.extra = 1;
    shuffled.intents.e.buy = { waitingInput: 0, extra: 2, ...shuffled.intents.e.buy };
    shuffled.promptSteps = { failed: json.promptSteps.failed, succeeded: json.promptSteps.succeeded };
    expect(JSON.stringify(aggregateToJSON(aggregateFromJSON(shuffled)))).toBe(JSON.stringify(json));
  });

  it("reports a malformed stored aggregate as the schema does", () => {
    const aggregate = createAggregate(KEY);
    addExecution(aggregate, record(1));
    const json = aggregateToJSON(aggregate);
    expect(() => aggregateFromJSON({ ...json, executions: -1 })).toThrow(
      /stored aggregate is invalid at executions/,
    );
    expect(() => aggregateFromJSON({ ...json, terms: { e: { x: [1, 2, 3] } } })).toThrow(
      /stored aggregate is invalid at terms\.e\.x/,
    );
    expect(() => aggregateFromJSON({ ...json, firstStartedAt: "yesterday" })).toThrow(
      /stored aggregate is invalid at firstStartedAt/,
    );
  });

  const stepArbitrary = fc.record({
    id: fc.constantFrom("ask", "call", "route", "done"),
    action: fc.constantFrom("prompt", "tool_api", "condition"),
    status: fc.constantFrom("succeeded", "succeeded", "failed", "skipped"),
    attempts: fc.integer({ min: 0, max: 3 }),
    durationMs: fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.double({ min: 0, max: 60_000, noNaN: true })),
    error: fc.option(fc.constantFrom("timeout", "tool_http_status"), { nil: undefined }),
    toolId: fc.option(fc.constantFrom("crm", "search"), { nil: undefined }),
    httpStatus: fc.option(fc.constantFrom(200, 503), { nil: undefined }),
    branch: fc.option(fc.constantFrom("then" as const, "else" as const), { nil: undefined }),
    prompt: fc.option(fc.constantFrom("Answer politely", "Summarise the order of {name}"), {
      nil: undefined,
    }),
  });
  const recordArbitrary = fc
    .record({
      status: fc.constantFrom("completed", "failed", "timed_out", "waiting_input" as const),
      startedAt: fc.constantFrom("2026-02-10T00:00:00.000Z", "2026-02-11T10:30:00.500Z", "unreadable"),
      durationMs: fc.integer({ min: 0, max: 100_000 }),
      intent: fc.option(fc.constantFrom("buy", "ask"), { nil: undefined }),
      steps: fc.array(stepArbitrary, { maxLength: 5 }),
    })
    .map(
      (r): ExecutionRecord => ({
        ...KEY,
        executionId: "x",
        documentVersion: 1,
        trigger: "api",
        intent: r.intent,
        status: r.status,
        startedAt: r.startedAt,
        finishedAt: r.startedAt,
        durationMs: r.durationMs,
        path: r.steps.map((step) => step.id),
        steps: r.steps.map(({ error, ...step }) => ({
          ...step,
          startedAt: r.startedAt,
          ...(error === undefined ? {} : { error: { code: error, message: "x" } }),
        })),
        unresolved: [],
        offline: false,
        analysis: "published",
      }),
    );

  type Json = Record<string, unknown>;
  /** The path of every value inside `json` (parents before children). */
  const pathsIn = (json: unknown, path: string[] = []): string[][] => {
    if (typeof json !== "object" || json === null) return [];
    return Object.keys(json).flatMap((key) => [
      [...path, key],
      ...pathsIn((json as Json)[key], [...path, key]),
    ]);
  };
  const parentOf = (json: Json, path: readonly string[]): Json =>
    path.slice(0, -1).reduce((node, key) => node[key] as Json, json);
  const damagedValue = fc.oneof(
    fc.constantFrom(
      -1,
      0,
      1.5,
      2 ** 53,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      "",
      "7",
      "2026-02-10T00:00:00Z",
      "2026-02-10 00:00:00",
      null,
      undefined,
      true,
      [],
      [1],
      [1, 2],
      [1, -2],
      [1, 2, 3],
      {},
      { e: {} },
      { e: { k: 1 } },
      { e: {}, o: 1 },
    ),
    fc.anything(),
  );
  /** Well-formed variations (other key orders, an `o` in a map, keys the stored form lacks) and damage. */
  const change = fc.record({
    kind: fc.constantFrom("replace", "replace", "delete", "add", "fold", "reorder"),
    at: fc.nat(),
    key: fc.constantFrom("extra", "__proto__", "constructor", "o", "e", "v", "n"),
    value: damagedValue,
  });

  type Change = typeof change extends fc.Arbitrary<infer T> ? T : never;

  function changed(json: Json, changes: readonly Change[]): Json {
    const copy = JSON.parse(JSON.stringify(json)) as Json;
    for (const { kind, at, key, value: shared } of changes) {
      const value = structuredClone(shared);
      const paths = pathsIn(copy);
      const path = paths[at % paths.length]!;
      const parent = parentOf(copy, path);
      const last = path[path.length - 1]!;
      const target = parent[last];
      if (kind === "replace") parent[last] = value;
      else if (kind === "delete") delete parent[last];
      else if (typeof target !== "object" || target === null || Array.isArray(target)) continue;
      else if (kind === "add")
        Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
      else if (kind === "fold") {
        // A map that has folded entries away: `o` is one more entry's worth.
        const entries = (target as { e?: unknown }).e;
        if (typeof entries !== "object" || entries === null) continue;
        const first = Object.values(entries)[0];
        if (first !== undefined) (target as Json).o = JSON.parse(JSON.stringify(first));
      } else {
        const keys = Object.keys(target).reverse();
        parent[last] = Object.fromEntries(keys.map((k) => [k, (target as Json)[k]]));
      }
    }
    return copy;
  }

  it("reads by hand exactly what the schema reads, and leaves the rest to it, on random well-formed and damaged aggregates", () => {
    let rejected = 0;
    fc.assert(
      fc.property(
        fc.array(recordArbitrary, { maxLength: 12 }),
        fc.array(change, { maxLength: 3 }),
        (records, changes) => {
          const aggregate = createAggregate(KEY);
          for (const r of records) addExecution(aggregate, r);
          const stored = JSON.parse(JSON.stringify(aggregateToJSON(aggregate))) as Json;
          // What the store writes is read by hand.
          const read = readAggregateJson(stored);
          expect(read).toStrictEqual(AggregateJsonSchema.parse(stored));
          expect(pathsIn(read)).toEqual(pathsIn(AggregateJsonSchema.parse(stored)));

          const input = changed(stored, changes);
          const fast = readAggregateJson(input);
          const parsed = AggregateJsonSchema.safeParse(input);
          if (fast !== undefined) {
            expect(parsed.success).toBe(true);
            expect(fast).toEqual(parsed.data);
            // The same keys in the same order at every depth, those whose value is undefined too.
            expect(pathsIn(fast)).toEqual(pathsIn(parsed.data));
          }
          if (!parsed.success) {
            rejected += 1;
            const path = parsed.error.issues[0]!.path.join(".") || "(root)";
            expect(() => aggregateFromJSON(input)).toThrow(MovaError);
            expect(() => aggregateFromJSON(input)).toThrow(`stored aggregate is invalid at ${path}: `);
          }
        },
      ),
      { numRuns: 1000 },
    );
    expect(rejected).toBeGreaterThan(200);
  });
});
