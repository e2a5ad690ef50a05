/**
 * End to end, in process: the local stack, the real API handler behind the local gateway and
 * the dev workers (the analysis poller and the batch-run poller). Runs made through the API
 * become patterns and recommendations through the API; analysis runs are started and
 * followed through the API.
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { analysisPollerWorker, analysisRunWorker } from "../../infra/local/analysis-workers.ts";
import type { RunningWorker } from "../../infra/local/workers.ts";
import { type ApiFixture, shopDocument, startApiFixture } from "../support/api-fixture.ts";

let api: ApiFixture;
const workers: RunningWorker[] = [];

beforeAll(async () => {
  api = await startApiFixture();
  const context = {
    env: api.env,
    config: api.config,
    logger: new Logger({ serviceName: "mova-analysis-test", logLevel: "SILENT" }),
  };
  workers.push(await analysisPollerWorker.start(context));
  workers.push(await analysisRunWorker.start(context));
  expect((await api.call("PUT", "/documents/shop", { body: shopDocument(api.tools.url) })).status).toBe(201);
}, 60_000);

afterAll(async () => {
  for (const worker of workers.reverse()) await worker.stop();
  await api?.close();
});

async function eventually<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe("patterns through the API", () => {
  it("shows the runs made through the API within seconds, with their paths and failure points", async () => {
    for (let i = 0; i < 3; i++) {
      const run = await api.call("POST", "/executions", {
        body: { document: "shop", protocol: "echo", variables: { word: `w${i}` } },
      });
      expect(run.status).toBe(200);
      expect(run.body.status).toBe("completed");
    }
    const broken = await api.call("POST", "/executions", { body: { document: "shop", protocol: "broken" } });
    expect(broken.status).toBe(200);
    expect(broken.body.status).toBe("failed");

    const echo = await eventually(
      () => api.call("GET", "/documents/shop/protocols/echo/patterns"),
      (r) => r.body?.statistics?.total === 3,
    );
    expect(echo.status).toBe(200);
    expect(echo.body.statistics).toMatchObject({ total: 3, successful: 3 });
    const strategy = echo.body.patterns.filter((p: { type: string }) => p.type === "strategy");
    expect(strategy[0]).toMatchObject({ path: ["say", "end"], figures: { runs: 3 } });

    const failures = await eventually(
      () => api.call("GET", "/documents/shop/protocols/broken/patterns?type=failure_point&window=7"),
      (r) => r.body?.patterns?.length > 0,
    );
    expect(failures.body.window.days).toBe(7);
    expect(failures.body.patterns.every((p: { type: string }) => p.type === "failure_point")).toBe(true);
    expect(failures.body.patterns[0]).toMatchObject({ step: "call", figures: { failedRuns: 1 } });

    const all = await api.call("GET", "/patterns?type=strategy");
    expect(all.status).toBe(200);
    const protocols = all.body.items.map((item: { protocol: string }) => item.protocol).sort();
    expect(protocols).toEqual(["broken", "echo"]);

    const recommendations = await api.call("GET", "/documents/shop/protocols/echo/recommendations");
    expect(recommendations.status).toBe(200);
    expect(Array.isArray(recommendations.body.recommendations)).toBe(true);
  }, 30_000);

  it("keeps tenants apart and rejects bad windows and unknown protocols", async () => {
    const other = await api.call("GET", "/patterns", { key: api.acmeKey });
    expect(other.body.items).toEqual([]);
    const foreign = await api.call("GET", "/documents/shop/protocols/echo/patterns", { key: api.acmeKey });
    expect(foreign.status).toBe(404);
    expect((await api.call("GET", "/documents/shop/protocols/echo/patterns?window=366")).status).toBe(400);
    expect((await api.call("GET", "/documents/shop/protocols/echo/patterns?type=nope")).status).toBe(400);
    expect((await api.call("GET", "/documents/shop/protocols/nope/patterns")).status).toBe(404);
    expect((await api.call("GET", "/patterns", { key: null })).status).toBe(401);
  });

  it("lists the analysis routes in the OpenAPI document", async () => {
    const { body } = await api.call("GET", "/openapi.json", { key: null });
    for (const path of [
      "/documents/{name}/protocols/{protocol}/patterns",
      "/documents/{name}/protocols/{protocol}/recommendations",
      "/patterns",
      "/analysis/runs",
      "/analysis/runs/{id}",
    ]) {
      expect(Object.keys(body.paths)).toContain(path);
    }
  });
});

describe("POST /analysis/runs and GET /analysis/runs/{id}", () => {
  it("queues a run that the batch worker executes, with its figures", async () => {
    const created = await api.call("POST", "/analysis/runs", {
      body: { document: "shop", protocol: "echo", timeRangeDays: 3 },
    });
    expect(created.status).toBe(202);
    expect(created.body).toMatchObject({ status: "queued" });
    expect(created.headers.get("location")).toBe(`/analysis/runs/${created.body.runId}`);

    const run = await eventually(
      () => api.call("GET", `/analysis/runs/${created.body.runId}`),
      (r) => r.body?.status === "succeeded" || r.body?.status === "failed",
    );
    expect(run.body.status).toBe("succeeded");
    expect(run.body.request).toEqual({ document: "shop", protocol: "echo", timeRangeDays: 3 });
    // Every echo run was counted by the stream already: the batch finds nothing to reconcile.
    expect(run.body.progress).toMatchObject({
      daysTotal: 3,
      daysDone: 3,
      executionsInScope: 3,
      reconciled: 0,
    });
    expect(run.body.tenant).toBeUndefined();

    const echo = await api.call("GET", "/documents/shop/protocols/echo/patterns");
    expect(echo.body.statistics.total).toBe(3);

    expect((await api.call("GET", `/analysis/runs/${created.body.runId}`, { key: api.acmeKey })).status).toBe(
      404,
    );
    expect((await api.call("GET", "/analysis/runs/run_missing")).status).toBe(404);
  }, 30_000);

  it("rejects a malformed run request and changes nothing", async () => {
    const bad = await api.call("POST", "/analysis/runs", { body: { timeRangeDays: 0 } });
    expect(bad.status).toBe(400);
    expect((await api.call("POST", "/analysis/runs", { body: { extra: true } })).status).toBe(400);
  });
});
