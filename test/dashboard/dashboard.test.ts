/**
 * The dashboard in a real browser (Debian's chromium, driven by playwright-core) against the
 * local stack: history of two document versions is made through the API, the analysis
 * worker turns it into figures, and the page must show the flow graph with the document's
 * steps and their figures, the comparison's verdict, the cost, and a recommendation whose
 * Apply button makes the document's next version.
 *
 * DASHBOARD_SCREENSHOT=docs/dashboard.png also saves a screenshot of the page (README).
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Logger } from "@aws-lambda-powertools/logger";
import { type BrowserContext, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { analysisPollerWorker } from "../../infra/local/analysis-workers.ts";
import { type Gateway, startGateway } from "../../infra/local/gateway.ts";
import type { RunningWorker } from "../../infra/local/workers.ts";
import { createApiHandler } from "../../lib/http/handler.ts";
import { lazyDashboardBundle } from "../../scripts/dashboard-bundle.ts";
import { type ApiFixture, startApiFixture } from "../support/api-fixture.ts";

const CHROMIUM = "/usr/bin/chromium";
/** The page re-renders after a choice; on a loaded machine that can take a while. */
const POLL = { timeout: 20_000, interval: 100 };

let api: ApiFixture;
let gateway: Gateway;
let browser: BrowserContext;
let profile: string;
const workers: RunningWorker[] = [];

function ordersDocument(toolsUrl: string, prompt: string) {
  return {
    version: "2.2",
    protocols: [
      {
        name: "lookup",
        inputs: ["item"],
        steps: [
          { id: "ask_model", action: "prompt", prompt: `${prompt} {item}`, output: "answer" },
          { id: "check_stock", action: "tool_api", tool_api_id: "stock", output: "stock" },
          { id: "finish", action: "end", response_template: "{answer}" },
        ],
      },
    ],
    tools: [{ id: "stock", endpoint: `${toolsUrl}/stock`, method: "GET" }],
  };
}

async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 40_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe.runIf(existsSync(CHROMIUM))("the dashboard in a browser", () => {
  beforeAll(async () => {
    api = await startApiFixture({
      LLM_PRICES: JSON.stringify({ "fake-model": { inputPerMillionUsd: 1, outputPerMillionUsd: 2 } }),
    });
    // The same handler as the fixture's, with the dashboard's script bundled on first request.
    gateway = await startGateway({
      handler: createApiHandler({ ...api.deps, dashboardScript: lazyDashboardBundle() }),
      port: 0,
    });
    workers.push(
      await analysisPollerWorker.start({
        env: api.env,
        config: api.config,
        logger: new Logger({ serviceName: "mova-dashboard-test", logLevel: "SILENT" }),
      }),
    );
    // The stock service fails (503) every `failEvery`-th call: the step fails in some runs.
    let calls = 0;
    let failEvery = 4;
    api.tools.route("GET", "/stock", () =>
      ++calls % failEvery === 0 ? { status: 503, body: { error: "busy" } } : { body: { inStock: true } },
    );
    const run = () =>
      api.call("POST", "/executions", {
        body: { document: "orders", protocol: "lookup", variables: { item: "tea" } },
      });
    expect(
      (await api.call("PUT", "/documents/orders", { body: ordersDocument(api.tools.url, "Find") })).status,
    ).toBe(201);
    for (let i = 0; i < 20; i++) await run();
    expect(
      (await api.call("PUT", "/documents/orders", { body: ordersDocument(api.tools.url, "Look up") })).body
        .version,
    ).toBe(2);
    failEvery = 2;
    calls = 0;
    for (let i = 0; i < 20; i++) await run();
    // Wait for the analysis to have every run and the recommendation the page will apply.
    await eventually(
      () => api.call("GET", "/documents/orders/protocols/lookup/patterns"),
      (r) => r.body?.statistics?.total === 40,
    );
    await eventually(
      () => api.call("GET", "/documents/orders/protocols/lookup/recommendations"),
      (r) => r.body?.recommendations?.some((x: { patch: unknown }) => x.patch !== null),
    );

    profile = await mkdtemp(path.join(tmpdir(), "mova-dashboard-chromium-"));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
    for (const worker of workers.reverse()) await worker.stop();
    await gateway?.close();
    await api?.close();
  });

  it("serves the page without a key and its script from this origin only", async () => {
    const page = await fetch(`${gateway.url}/dashboard`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/^text\/html/);
    expect(page.headers.get("content-security-policy")).toContain("script-src 'self'");
    const html = await page.text();
    expect(html).not.toMatch(/https?:\/\//);
    const script = await fetch(`${gateway.url}/dashboard/app.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toMatch(/^text\/javascript/);
    // The data itself still needs the key.
    expect((await fetch(`${gateway.url}/documents`)).status).toBe(401);
  });

  it("asks for the key, draws the flow with its figures, compares versions and applies a recommendation", async () => {
    const page = await browser.newPage();
    const outside: string[] = [];
    page.on("request", (request) => {
      if (!request.url().startsWith(gateway.url)) outside.push(request.url());
    });
    await page.goto(`${gateway.url}/dashboard`);

    // A wrong key is refused and asked for again.
    await page.fill("#api-key", "not-a-key");
    await page.click("#login button[type=submit]");
    await page.getByRole("alert").filter({ hasText: "refused" }).waitFor();
    await page.fill("#api-key", api.devKey);
    await page.click("#login button[type=submit]");

    // The graph: one node per step of the document, with its figures, and weighted edges.
    const steps = page.locator("svg.flow g.step");
    await page.locator('svg.flow g.step[data-step="check_stock"]').waitFor();
    expect(await steps.evaluateAll((nodes) => nodes.map((n) => n.getAttribute("data-step")))).toEqual([
      "ask_model",
      "check_stock",
      "finish",
    ]);
    const stock = page.locator('svg.flow g.step[data-step="check_stock"]');
    // 5 of 20 and 10 of 20 calls failed: 15 of 40 over both versions.
    expect(await stock.locator("text.success").textContent()).toBe("success 62.5% · n 40");
    expect(await stock.getAttribute("class")).toContain("failure-point");
    expect(await stock.locator("text.latency").textContent()).toMatch(/^p50 \d+ ms · p95 \d+ ms$/);
    // Every run took ask_model → check_stock; the 15 that failed there never reached finish.
    const taken = (from: string, to: string) =>
      page.locator(`svg.flow g.edge[data-from="${from}"][data-to="${to}"]`).getAttribute("data-taken");
    expect(await taken("ask_model", "check_stock")).toBe("40");
    expect(await taken("check_stock", "finish")).toBe("25");
    await expect.poll(() => page.locator("#headline").textContent(), POLL).toContain("40 runs");

    // The comparison of version 2 against version 1, with its verdict.
    await page.locator("#verdict").waitFor();
    expect(["better", "worse", "inconclusive"]).toContain(await page.locator("#verdict").textContent());
    expect(await page.locator("#compare-base").inputValue()).toBe("1");
    expect(await page.locator("#compare-candidate").inputValue()).toBe("2");

    // The cost per day, priced.
    await page.locator("svg.bars g.bar").first().waitFor();
    expect(await page.locator("#cost-total").textContent()).toMatch(/^Total \$/);
    // One bar a day of the 30-day period; the runs were made today.
    expect(await page.locator("svg.bars g.bar").count()).toBe(30);
    const today = new Date().toISOString().slice(0, 10);
    const height = await page.locator(`svg.bars g.bar[data-day="${today}"] rect`).getAttribute("height");
    expect(Number(height)).toBeGreaterThan(0);

    // Figures of one version only.
    await page.selectOption("#figures-version", "1");
    await expect
      .poll(() => page.locator('svg.flow g.step[data-step="check_stock"] text.success').textContent(), POLL)
      .toBe("success 75% · n 20");

    // The failing step's (low_success_rate names the same step and carries the same patch).
    const recommendation = page
      .locator(".recommendation", { has: page.locator("pre.patch"), hasText: 'Step "check_stock" fails' })
      .first();
    await recommendation.waitFor();
    expect(await recommendation.textContent()).toContain('Step "check_stock" fails');
    if (process.env.DASHBOARD_SCREENSHOT) {
      await page.selectOption("#figures-version", "");
      await recommendation.waitFor();
      await page.locator('svg.flow g.step[data-step="check_stock"]').waitFor();
      await page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT, fullPage: true });
    }
    await recommendation.locator("button.apply").click();
    await page.getByText(/^Applied: version 3 of orders/).waitFor();

    const versions = await api.call("GET", "/documents/orders/versions");
    expect(versions.body.items.map((v: { version: number }) => v.version)).toEqual([1, 2, 3]);
    const latest = await api.call("GET", "/documents/orders/versions/3");
    expect(latest.body.document.protocols[0].steps[1].retry).toEqual({ attempts: 3, backoff_ms: 200 });
    // The page reloads its data: the document is now at version 3.
    await page.locator(".doc", { hasText: "v3" }).waitFor();
    expect(outside).toEqual([]);
  }, 120_000);

  it("takes the key from the address's #key= fragment (as npm run dev prints it) and removes it from the address", async () => {
    const page = await browser.newPage();
    await page.goto(`${gateway.url}/dashboard#key=${api.devKey}`);
    await page.locator('svg.flow g.step[data-step="finish"]').waitFor();
    expect(new URL(page.url()).hash).toBe("");
    expect(await page.locator("#login").count()).toBe(0);
    await page.close();
  }, 60_000);
});
