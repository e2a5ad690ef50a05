/**
 * The learning loop through the API on the local stack: runs of two document versions judged
 * by the protocol's success criteria, figures per version, feedback (replaced, counted once,
 * tenant-scoped), the document's versions, a comparison that finds the candidate worse, and a
 * conversation that stays on the version it started with.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { analysisPollerWorker } from "../../infra/local/analysis-workers.ts";
import type { RunningWorker } from "../../infra/local/workers.ts";
import { type ApiFixture, startApiFixture } from "../support/api-fixture.ts";

let api: ApiFixture;
const workers: RunningWorker[] = [];

function qaDocument(prompt: string) {
  return {
    version: "2.2",
    intents: [{ name: "ask", patterns: ["question"], intent_type: "question", protocol: "answer" }],
    protocols: [
      {
        name: "answer",
        inputs: ["word"],
        success: [{ variable: "answer", operator: "contains", value: "good" }],
        steps: [
          { id: "reply", action: "prompt", prompt: `${prompt} {word}`, output: "answer" },
          { id: "end", action: "end", response_template: "{answer}" },
        ],
      },
    ],
  };
}

async function eventually<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 40_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function run(word: string): Promise<string> {
  const response = await api.call("POST", "/executions", {
    body: { document: "qa", protocol: "answer", variables: { word } },
  });
  expect(response.status).toBe(200);
  expect(response.body.status).toBe("completed");
  return response.body.executionId as string;
}

const v1Runs: string[] = [];
const v2Runs: string[] = [];

beforeAll(async () => {
  api = await startApiFixture({
    LLM_PRICES: JSON.stringify({ "fake-model": { inputPerMillionUsd: 1, outputPerMillionUsd: 2 } }),
  });
  workers.push(
    await analysisPollerWorker.start({
      env: api.env,
      config: api.config,
      logger: new Logger({ serviceName: "mova-learning-test", logLevel: "SILENT" }),
    }),
  );
  expect((await api.call("PUT", "/documents/qa", { body: qaDocument("Say") })).body.version).toBe(1);
  for (let i = 0; i < 30; i++) v1Runs.push(await run("good"));
  expect((await api.call("PUT", "/documents/qa", { body: qaDocument("Tell") })).body.version).toBe(2);
  for (let i = 0; i < 30; i++) v2Runs.push(await run(i < 10 ? "good" : "bad"));
}, 180_000);

afterAll(async () => {
  for (const worker of workers.reverse()) await worker.stop();
  await api?.close();
});

describe("quality and versions", () => {
  it("records each completed run's outcome by the protocol's criteria", async () => {
    const good = await api.call("GET", `/executions/${v2Runs[0]}`);
    expect(good.body).toMatchObject({ documentVersion: 2, outcome: "succeeded" });
    const bad = await api.call("GET", `/executions/${v2Runs[29]}`);
    expect(bad.body).toMatchObject({ documentVersion: 2, outcome: "unsuccessful" });
  });

  it("keeps every figure per version and overall, with tokens and cost", async () => {
    const overall = await eventually(
      () => api.call("GET", "/documents/qa/protocols/answer/patterns"),
      (r) => r.body?.statistics?.total === 60,
    );
    expect(overall.body.version).toBeNull();
    expect(overall.body.statistics.quality).toMatchObject({ succeeded: 40, unsuccessful: 20 });
    expect(
      overall.body.versions.map((v: { version: number; executions: number }) => [v.version, v.executions]),
    ).toEqual([
      [1, 30],
      [2, 30],
    ]);
    const v2 = await api.call("GET", "/documents/qa/protocols/answer/patterns?version=2");
    expect(v2.body.version).toBe(2);
    expect(v2.body.statistics.total).toBe(30);
    expect(v2.body.statistics.quality).toEqual({
      succeeded: 10,
      unsuccessful: 20,
      unknown: 0,
      successRate: 0.3333,
    });
    // The fake model answers every prompt with 7 tokens in and 3 out: (7 · 1 + 3 · 2) / 1e6 dollars a run.
    expect(v2.body.statistics.cost).toMatchObject({
      promptTokens: 210,
      completionTokens: 90,
      costPerRun: 0.000013,
    });
    const recommendations = await api.call("GET", "/documents/qa/protocols/answer/recommendations?version=1");
    expect(recommendations.status).toBe(200);
    expect(recommendations.body.version).toBe(1);
  });

  it("lists the document's versions and shows each as it was sent", async () => {
    const list = await api.call("GET", "/documents/qa/versions");
    expect(list.body.items.map((v: { version: number }) => v.version)).toEqual([1, 2]);
    const first = await api.call("GET", "/documents/qa/versions/1");
    expect(first.body.document.protocols[0].steps[0].prompt).toBe("Say {word}");
    expect((await api.call("GET", "/documents/qa/versions/9")).status).toBe(404);
    expect((await api.call("GET", "/documents/qa/versions", { key: api.acmeKey })).status).toBe(404);
  });

  it("compares the versions: the candidate is worse on success rate, with its test and p-value", async () => {
    const compare = await api.call("GET", "/documents/qa/protocols/answer/compare?base=1&candidate=2");
    expect(compare.status).toBe(200);
    expect(compare.body.verdict).toBe("worse");
    const success = compare.body.measures.find((m: { measure: string }) => m.measure === "success_rate");
    expect(success).toMatchObject({
      base: 1,
      candidate: 0.3333,
      test: "two-proportion z-test",
      verdict: "worse",
    });
    expect(success.pValue).toBeLessThan(0.001);
    expect((await api.call("GET", "/documents/qa/protocols/answer/compare?base=1&candidate=1")).status).toBe(
      400,
    );
  });
});

describe("usage", () => {
  it("adds up tokens and cost per version and per model, for the caller's tenant only", async () => {
    const byVersion = await api.call("GET", "/usage?groupBy=version");
    expect(byVersion.status).toBe(200);
    const rows = byVersion.body.items.map((r: { group: { version: number }; runs: number; cost: number }) => [
      r.group.version,
      r.runs,
      r.cost,
    ]);
    // 30 runs a version, (7 + 3 · 2) / 1e6 dollars each.
    expect(rows).toEqual([
      [1, 30, 0.00039],
      [2, 30, 0.00039],
    ]);
    const byModel = await api.call("GET", "/usage?groupBy=model");
    expect(byModel.body.items).toEqual([
      expect.objectContaining({
        group: { model: "fake-model" },
        calls: 60,
        promptTokens: 420,
        completionTokens: 180,
      }),
    ]);
    expect(byModel.body.total.cost).toBe(0.00078);
    expect((await api.call("GET", "/usage?groupBy=version", { key: api.acmeKey })).body.items).toEqual([]);
    expect((await api.call("GET", "/usage?from=2026-02-01&to=2026-01-01")).status).toBe(400);
    expect((await api.call("GET", "/usage?groupBy=colour")).status).toBe(400);
  });
});

describe("feedback", () => {
  it("keeps one per execution and source: a repeat replaces it and counts once", async () => {
    const id = v1Runs[0]!;
    const first = await api.call("POST", `/executions/${id}/feedback`, {
      body: { score: 0.8, comment: "nice" },
    });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ source: "user", score: 0.8, replaced: false });
    const again = await api.call("POST", `/executions/${id}/feedback`, {
      body: { score: 0.4, label: "meh" },
    });
    expect(again.body).toMatchObject({ score: 0.4, replaced: true });
    // Delivered twice: still one.
    await api.call("POST", `/executions/${id}/feedback`, { body: { score: 0.4, label: "meh" } });
    await api.call("POST", `/executions/${id}/feedback`, { body: { score: 1, source: "support-team" } });
    const listed = await api.call("GET", `/executions/${id}/feedback`);
    expect(
      listed.body.items.map((s: { source: string; score: number }) => [s.source, s.score]).sort(),
    ).toEqual([
      ["support-team", 1],
      ["user", 0.4],
    ]);
    await api.call("POST", `/executions/${v2Runs[0]}/feedback`, { body: { score: 0.2 } });
    const compare = await api.call("GET", "/documents/qa/protocols/answer/compare?base=1&candidate=2");
    const feedback = compare.body.measures.find((m: { measure: string }) => m.measure === "feedback");
    expect(feedback).toMatchObject({ n: { base: 2, candidate: 1 }, base: 0.7, candidate: 0.2 });
  });

  it("is a 404 for another tenant's or an unknown execution, and a 400 for a score out of range", async () => {
    const id = v1Runs[1]!;
    const other = await api.call("POST", `/executions/${id}/feedback`, {
      body: { score: 1 },
      key: api.acmeKey,
    });
    expect(other.status).toBe(404);
    expect((await api.call("GET", `/executions/${id}/feedback`, { key: api.acmeKey })).status).toBe(404);
    expect((await api.call("POST", "/executions/nope/feedback", { body: { score: 1 } })).status).toBe(404);
    const bad = await api.call("POST", `/executions/${id}/feedback`, { body: { score: 1.5 } });
    expect(bad.status).toBe(400);
    const spoof = await api.call("POST", `/executions/${id}/feedback`, {
      body: { score: 1, source: "evaluator:helpful" },
    });
    expect(spoof.status).toBe(400);
    const long = await api.call("POST", `/executions/${id}/feedback`, {
      body: { score: 1, comment: "x".repeat(2001) },
    });
    expect(long.status).toBe(400);
    expect((await api.call("GET", `/executions/${id}/feedback`)).body.items).toEqual([]);
  });
});

describe("recommendations become versions", () => {
  it("carry a JSON Patch and a statement; applying one makes the next version, once", async () => {
    api.tools.route("GET", "/flaky", { status: 503, body: { error: "busy" } });
    const flaky = {
      version: "2.2",
      protocols: [
        {
          name: "fetch",
          steps: [
            { id: "call", action: "tool_api", tool_api_id: "flaky", output: "result" },
            { id: "end", action: "end" },
          ],
        },
      ],
      tools: [{ id: "flaky", endpoint: `${api.tools.url}/flaky`, method: "GET" }],
    };
    expect((await api.call("PUT", "/documents/flaky", { body: flaky })).status).toBe(201);
    for (let i = 0; i < 12; i++) {
      const response = await api.call("POST", "/executions", {
        body: { document: "flaky", protocol: "fetch" },
      });
      expect(response.body.status).toBe("failed");
    }
    const listed = await eventually(
      () => api.call("GET", "/documents/flaky/protocols/fetch/recommendations?version=1"),
      (r) => r.body?.recommendations?.some((x: { kind: string }) => x.kind === "failing_step"),
    );
    const recommendation = listed.body.recommendations.find(
      (x: { kind: string }) => x.kind === "failing_step",
    );
    expect(recommendation).toMatchObject({
      step: "call",
      version: 1,
      statement: expect.stringMatching(/^Step "call" fails in 100%/),
    });
    expect(recommendation.patch).toEqual([
      { op: "test", path: "/protocols/0/steps/0", value: flaky.protocols[0]!.steps[0] },
      { op: "add", path: "/protocols/0/steps/0/retry", value: { attempts: 3, backoff_ms: 200 } },
    ]);

    const applied = await api.call(
      "POST",
      `/documents/flaky/protocols/fetch/recommendations/${recommendation.id}/apply`,
      { body: { version: 1, canary: 10 } },
    );
    expect(applied.status).toBe(201);
    expect(applied.body).toMatchObject({ version: 2, previousVersion: 1, weights: { "1": 90, "2": 10 } });
    expect((await api.call("GET", "/documents/flaky/routing")).body).toMatchObject({
      base: 1,
      candidates: [2],
    });
    const v2 = await api.call("GET", "/documents/flaky/versions/2");
    expect(v2.body.document.protocols[0].steps[0].retry).toEqual({ attempts: 3, backoff_ms: 200 });

    // The step changed since: the same patch no longer applies, and nothing changes.
    const again = await api.call(
      "POST",
      `/documents/flaky/protocols/fetch/recommendations/${recommendation.id}/apply`,
      { body: { version: 1 } },
    );
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("patch_conflict");
    expect((await api.call("GET", "/documents/flaky/versions")).body.items).toHaveLength(2);
    const unknown = await api.call(
      "POST",
      "/documents/flaky/protocols/fetch/recommendations/rec_0000000000000000/apply",
      {
        body: {},
      },
    );
    expect(unknown.status).toBe(404);
    const otherTenant = await api.call(
      "POST",
      `/documents/flaky/protocols/fetch/recommendations/${recommendation.id}/apply`,
      { body: { version: 1 }, key: api.acmeKey },
    );
    expect(otherTenant.status).toBe(404);
  });
});

describe("sessions", () => {
  it("stay on the version they started with", async () => {
    const session = await api.call("POST", "/sessions", { body: { document: "qa", userId: "u9" } });
    expect(session.status).toBe(201);
    expect((await api.call("PUT", "/documents/qa", { body: qaDocument("Shout") })).body.version).toBe(3);
    const message = await api.call("POST", `/sessions/${session.body.sessionId}/messages`, {
      body: { text: "question" },
    });
    expect(message.status).toBe(200);
    const record = await api.call("GET", `/executions/${message.body.executionId}`);
    expect(record.body.documentVersion).toBe(2);
    expect(record.body.steps[0].prompt).toMatch(/^Tell /);
  });
});

describe("traffic split", () => {
  it("refuses shares that do not add up to 100 and versions never stored", async () => {
    expect(
      (await api.call("PUT", "/documents/qa/routing", { body: { weights: { "1": 60, "2": 30 } } })).status,
    ).toBe(400);
    const unknown = await api.call("PUT", "/documents/qa/routing", {
      body: { weights: { "1": 50, "9": 50 } },
    });
    expect(unknown.status).toBe(422);
    expect(unknown.body.error.code).toBe("unknown_version");
    expect((await api.call("GET", "/documents/qa/routing")).status).toBe(404);
  });

  it("keeps a user on one version, and returns to the base by itself when the candidate is worse", async () => {
    const put = await api.call("PUT", "/documents/qa/routing", { body: { weights: { "1": 50, "2": 50 } } });
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ base: 1, candidates: [2], weights: { "1": 50, "2": 50 } });
    const versionsOf = async (userId: string) => {
      const session = await api.call("POST", "/sessions", { body: { document: "qa", userId } });
      return (await api.call("GET", `/sessions/${session.body.sessionId}`)).body.documentVersion as number;
    };
    const first = await versionsOf("ada");
    expect([1, 2]).toContain(first);
    expect(await versionsOf("ada")).toBe(first);

    // The next merges judge the split: version 2 succeeds in a third of its runs, version 1 in all.
    for (let i = 0; i < 4; i++) await run("good");
    const routing = await eventually(
      () => api.call("GET", "/documents/qa/routing"),
      (r) => r.body?.rolledBack !== undefined,
    );
    expect(routing.body).toMatchObject({ weights: { "1": 100 }, base: 1, candidates: [] });
    expect(routing.body.rolledBack).toMatchObject({ candidate: 2, base: 1, measure: "success_rate" });
    expect(routing.body.rolledBack.reason).toContain("version 2 is worse than version 1 on success_rate");
    // Every new session now takes the base.
    expect(await versionsOf("grace")).toBe(1);
  });
});
