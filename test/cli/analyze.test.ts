/**
 * `mova analyze` and `mova report --html`, spawned the way a user runs them, checked against
 * the pure analysis library on the same history.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  aggregateExecutions,
  reportFromAggregates,
  type AnalysisReport,
} from "../../lib/analysis/analyze.ts";
import { type ExecutionRecord, ExecutionRecordSchema } from "../../lib/core/execution-record.ts";
import { escapeHtml } from "../../lib/cli/report-html.ts";
import { type LocalStack, startLocalStack } from "../../infra/local/stack.ts";
import { loadConfig } from "../../lib/config.ts";
import { buildRuntimeDeps } from "../../lib/wiring/runtime.ts";
import { Logger } from "@aws-lambda-powertools/logger";
import { json, mova, REPO } from "./spawn-mova.ts";

const dir = mkdtempSync(path.join(tmpdir(), "mova-analyze-"));
const fixture: ExecutionRecord[] = (
  JSON.parse(readFileSync(path.join(REPO, "test/fixtures/analysis/history.json"), "utf8")) as unknown[]
).map((r) => ExecutionRecordSchema.parse(r));
const historyFile = path.join(dir, "history.jsonl");
writeFileSync(historyFile, `${fixture.map((r) => JSON.stringify(r)).join("\n")}\n`);
const SAMPLE = path.join(REPO, "examples/history-sample.jsonl");

async function libraryReport(records: ExecutionRecord[], options: { document?: string } = {}) {
  const result = await aggregateExecutions(records, { timeRangeDays: 365_000, ...options });
  return reportFromAggregates(result.aggregates);
}

describe("mova analyze --history", () => {
  it("--json prints the library's figures for the same file", async () => {
    const run = await mova(["analyze", "--history", historyFile, "--json"]);
    expect(run.code, run.stderr).toBe(0);
    const printed = json<AnalysisReport>(run);
    const expected = await libraryReport(fixture);
    expect(printed.protocols.map((p) => p.protocol)).toEqual(expected.protocols.map((p) => p.protocol));
    for (const [i, protocol] of printed.protocols.entries()) {
      expect(protocol.statistics).toEqual(expected.protocols[i]!.statistics);
      expect(protocol.patterns).toEqual(expected.protocols[i]!.patterns);
      expect(protocol.recommendations).toEqual(expected.protocols[i]!.recommendations);
    }
    expect(printed.records).toMatchObject({ read: fixture.length, analysed: fixture.length });
    // The window without --window is the records' own span.
    const starts = fixture.map((r) => r.startedAt).sort();
    expect(printed.window.from).toBe(new Date(starts[0]!).toISOString());
  });

  it("counts the sample history's protocols as generated (literal figures)", async () => {
    const run = await mova(["analyze", "--history", SAMPLE, "--json", "--document", "accounts"]);
    expect(run.code, run.stderr).toBe(0);
    const report = json<AnalysisReport>(run);
    expect(report.protocols).toHaveLength(1);
    expect(report.protocols[0]).toMatchObject({
      document: "accounts",
      protocol: "account_overview",
      statistics: { total: 60, successful: 42, failed: 18, successRate: 0.7 },
    });
    const kinds = report.protocols[0]!.recommendations.map((r) => r.kind);
    expect(kinds).toContain("low_success_rate");
    expect(report.records).toMatchObject({ read: 300, analysed: 60, filteredOut: 240 });
  });

  it("--window/--until keep only the records started in the window", async () => {
    const run = await mova([
      "analyze",
      "--history",
      SAMPLE,
      "--json",
      "--window",
      "2",
      "--until",
      "2026-11-20T18:00:00Z",
    ]);
    expect(run.code, run.stderr).toBe(0);
    const report = json<AnalysisReport>(run);
    const lines = readFileSync(SAMPLE, "utf8").trim().split("\n");
    const inWindow = lines.filter((line) => {
      const started = Date.parse(JSON.parse(line).startedAt);
      return started >= Date.parse("2026-11-18T18:00:00Z") && started <= Date.parse("2026-11-20T18:00:00Z");
    }).length;
    expect(inWindow).toBeGreaterThan(0);
    expect(report.records?.analysed).toBe(inWindow);
    expect(report.window).toMatchObject({ from: "2026-11-18T18:00:00.000Z", days: 2 });
  });

  it("prints statistics, paths, failure points and recommendations for people", async () => {
    const run = await mova(["analyze", "--history", SAMPLE]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain("■ accounts / account_overview");
    expect(run.stdout).toContain("success rate 70%");
    expect(run.stdout).toContain("Top paths of completed runs");
    expect(run.stdout).toContain("fetch_all → overview");
    expect(run.stdout).toContain("Failure points");
    expect(run.stdout).toMatch(/Recommendations\n\s+\[low_success_rate\]/);
    expect(run.stdout).toContain("[failing_step] get_orders:");
    expect(run.stdout).toContain("evidence: ");
  });

  it("a line that is not an execution record is a usage error naming the line; so is a missing file", async () => {
    const lines = fixture.slice(0, 4).map((r) => JSON.stringify(r));
    lines.splice(2, 0, "{ not json");
    const bad = path.join(dir, "bad.jsonl");
    writeFileSync(bad, `${lines.join("\n")}\n`);
    const run = await mova(["analyze", "--history", bad]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`${bad}:3: not JSON`);
    expect(run.stdout).toBe("");

    const wrongShape = path.join(dir, "wrong.jsonl");
    writeFileSync(
      wrongShape,
      `${JSON.stringify(fixture[0])}\n${JSON.stringify({ ...fixture[0], status: "odd" })}\n`,
    );
    const shape = await mova(["analyze", "--history", wrongShape, "--json"]);
    expect(shape.code).toBe(2);
    expect(shape.stderr).toMatch(/wrong\.jsonl:2: not an execution record: status/);

    const missing = await mova(["analyze", "--history", path.join(dir, "nope.jsonl")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("file not found");

    const window = await mova(["analyze", "--history", historyFile, "--window", "-3"]);
    expect(window.code).toBe(2);
    expect(window.stderr).toContain("--window");
  });

  it("without --history or a running local stack it says how to get one (exit 2)", async () => {
    const run = await mova(["analyze", "--document", "shop"], { cwd: dir });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("npm run dev");
  });
});

describe("mova analyze --document against the local stack", () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await startLocalStack({ memory: true, noRedisServer: true });
    const env = { ...stack.env, LOG_LEVEL: "SILENT" };
    const deps = buildRuntimeDeps(loadConfig(env), {
      env,
      logger: new Logger({ serviceName: "test", logLevel: "SILENT" }),
    });
    const now = Date.now();
    // The fixture's records (they span about 80 days), moved to end an hour ago.
    const latest = Math.max(...fixture.map((r) => Date.parse(r.finishedAt)));
    for (const record of fixture) {
      const shift = now - 3_600_000 - latest;
      await deps.history.putExecution({
        ...record,
        tenant: "dev",
        startedAt: new Date(Date.parse(record.startedAt) + shift).toISOString(),
        finishedAt: new Date(Date.parse(record.finishedAt) + shift).toISOString(),
      });
    }
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it("streams the history from DynamoDB and reports the same figures as the file", async () => {
    const document = fixture[0]!.document;
    const run = await mova(["analyze", "--document", document, "--window", "120", "--json"], {
      env: {
        AWS_ENDPOINT_URL_DYNAMODB: stack.env.AWS_ENDPOINT_URL_DYNAMODB!,
        EXECUTIONS_TABLE: stack.env.EXECUTIONS_TABLE!,
        DOCUMENTS_TABLE: stack.env.DOCUMENTS_TABLE!,
      },
    });
    expect(run.code, run.stderr).toBe(0);
    const printed = json<AnalysisReport>(run);
    const expected = await libraryReport(
      fixture.map((r) => ({ ...r, tenant: "dev" })),
      { document },
    );
    expect(printed.protocols.map((p) => p.statistics.total)).toEqual(
      expected.protocols.map((p) => p.statistics.total),
    );
    expect(printed.protocols.map((p) => p.statistics.successRate)).toEqual(
      expected.protocols.map((p) => p.statistics.successRate),
    );
    expect(printed.protocols.map((p) => p.patterns)).toEqual(expected.protocols.map((p) => p.patterns));

    // The default window is 30 days: the oldest records fall out of it.
    const recent = json<AnalysisReport>(
      await mova(["analyze", "--document", document, "--json"], {
        env: { AWS_ENDPOINT_URL_DYNAMODB: stack.env.AWS_ENDPOINT_URL_DYNAMODB! },
      }),
    );
    expect(recent.window.days).toBe(30);
    const total = (r: AnalysisReport) => r.protocols.reduce((sum, p) => sum + p.statistics.total, 0);
    expect(total(recent)).toBeLessThan(total(printed));
  });
});

describe("mova report --html", () => {
  it("writes one self-contained page with the charts, every section and no external reference", async () => {
    const out = path.join(dir, "report.html");
    const run = await mova(["report", "--html", out, "--history", SAMPLE]);
    expect(run.code, run.stderr).toBe(0);
    const html = readFileSync(out, "utf8");
    expect(html.startsWith("<!doctype html>")).toBe(true);
    expect(html.match(/<svg class="chart"/g)?.length).toBe(1 + 3); // success rates + one latency chart per protocol
    expect(html).toContain("Success rate per protocol");
    for (const section of [
      "Latency per step",
      "Top paths of completed runs",
      "Failure points",
      "Recommendations",
    ]) {
      expect(html).toContain(section);
    }
    expect(html).toContain("low success rate");
    expect(html).not.toMatch(/src\s*=\s*["']?https?:/i);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<link[^>]+href/i);
    expect(html).not.toMatch(/@import|url\(/i);
  });

  it("escapes hostile text from the history (step ids, prompts, error codes)", async () => {
    const hostile = '<script>alert("x")</script>';
    const records = fixture.map((record) => ({
      ...record,
      protocol: `${record.protocol}<img src=x onerror=alert(1)>`,
      path: record.path.map((id) => `${id}${hostile}`),
      steps: record.steps.map((step) => ({
        ...step,
        id: `${step.id}${hostile}`,
        ...(step.prompt ? { prompt: `${step.prompt} ${hostile}` } : {}),
        ...(step.error ? { error: { code: `${step.error.code}<b>`, message: step.error.message } } : {}),
      })),
    }));
    const file = path.join(dir, "hostile.jsonl");
    writeFileSync(file, records.map((r) => JSON.stringify(r)).join("\n"));
    const out = path.join(dir, "hostile.html");
    const run = await mova(["report", "--html", out, "--history", file]);
    expect(run.code, run.stderr).toBe(0);
    const html = readFileSync(out, "utf8");
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toContain("<img");
    expect(html).not.toContain("<b>");
    expect(html).toContain(escapeHtml(hostile));
    expect(html).toContain("&lt;img src=x onerror=alert(1)&gt;");
  });
});
