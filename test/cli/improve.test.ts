/**
 * `mova improve` and `mova validate --history`, spawned the way a user runs them, on a
 * document and a history made here: a tool step failing with 503 in every run, a condition
 * whose else way is never taken, a placeholder unresolved in every run.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { ActionableRecommendation } from "../../lib/analysis/patches.ts";
import { ExecutionRecordSchema } from "../../lib/core/execution-record.ts";
import { json, mova } from "./spawn-mova.ts";

const dir = mkdtempSync(path.join(tmpdir(), "mova-improve-"));
const document = {
  version: "2.2",
  protocols: [
    {
      name: "fetch",
      steps: [
        {
          id: "check",
          action: "condition",
          conditions: [{ variable: "ok", operator: "exists" }],
          else_step: "end",
        },
        { id: "call", action: "tool_api", tool_api_id: "api", output: "result" },
        { id: "end", action: "end", response_template: "{result} {nickname}" },
      ],
    },
  ],
  tools: [{ id: "api", endpoint: "https://api.example.com/x", method: "GET" }],
};
const docFile = path.join(dir, "fetch.json");
writeFileSync(docFile, JSON.stringify(document, null, 2));

const records = Array.from({ length: 12 }, (_, i) =>
  ExecutionRecordSchema.parse({
    tenant: "dev",
    executionId: `e${i}`,
    document: "fetch",
    documentVersion: 1,
    protocol: "fetch",
    trigger: "cli",
    status: "failed",
    startedAt: "2026-03-01T10:00:00.000Z",
    finishedAt: "2026-03-01T10:00:01.000Z",
    durationMs: 100,
    path: ["check", "call"],
    steps: [
      {
        id: "check",
        action: "condition",
        status: "succeeded",
        attempts: 1,
        startedAt: "2026-03-01T10:00:00.000Z",
        durationMs: 1,
        branch: "then",
      },
      {
        id: "call",
        action: "tool_api",
        status: "failed",
        attempts: 1,
        startedAt: "2026-03-01T10:00:00.000Z",
        durationMs: 50,
        toolId: "api",
        httpStatus: 503,
        error: { code: "tool_http_status", message: "503" },
      },
    ],
    unresolved: ["nickname"],
    error: { code: "tool_http_status", message: "503" },
  }),
);
const historyFile = path.join(dir, "history.jsonl");
writeFileSync(historyFile, `${records.map((r) => JSON.stringify(r)).join("\n")}\n`);

describe("mova improve", () => {
  it("lists each recommendation with its id, evidence and diff, and applies one to a new file", async () => {
    const listed = await mova(["improve", docFile, "--history", historyFile, "--json"]);
    expect(listed.code, listed.stderr).toBe(0);
    const recommendations = json<ActionableRecommendation[]>(listed);
    const retry = recommendations.find((r) => r.kind === "failing_step")!;
    expect(retry.statement).toMatch(/^Step "call" fails in 100% of its runs \(12 of 12\)/);
    expect(retry.patch?.at(-1)).toEqual({
      op: "add",
      path: "/protocols/0/steps/1/retry",
      value: { attempts: 3, backoff_ms: 200 },
    });

    const text = await mova(["improve", docFile, "--history", historyFile]);
    expect(text.stdout).toContain(retry.id);
    expect(text.stdout).toContain('+ add /protocols/0/steps/1/retry {"attempts":3,"backoff_ms":200}');

    const output = path.join(dir, "fetch.v2.json");
    const applied = await mova([
      "improve",
      docFile,
      "--history",
      historyFile,
      "--apply",
      retry.id,
      "--output",
      output,
    ]);
    expect(applied.code, applied.stderr).toBe(0);
    const written = JSON.parse(readFileSync(output, "utf8"));
    expect(written.protocols[0].steps[1].retry).toEqual({ attempts: 3, backoff_ms: 200 });
    // The source file is left as it was.
    expect(JSON.parse(readFileSync(docFile, "utf8"))).toEqual(document);

    const unknown = await mova([
      "improve",
      docFile,
      "--history",
      historyFile,
      "--apply",
      "rec_0000000000000000",
    ]);
    expect(unknown.code).toBe(1);
  }, 180_000);
});

describe("mova validate --history", () => {
  it("adds the warnings the runs back, each at its document path", async () => {
    const run = await mova(["validate", docFile, "--history", historyFile, "--json"]);
    expect(run.code, run.stderr).toBe(0);
    const [report] = json<Array<{ warnings: Array<{ code: string; path: string; message: string }> }>>(run);
    const evidence = report!.warnings.filter((w) => w.code.startsWith("evidence_"));
    expect(evidence.map((w) => [w.code, w.path])).toEqual([
      ["evidence_failing_step", "$.protocols[0].steps[1]"],
      ["evidence_unresolved_placeholder", "$.protocols[0]"],
    ]);
    expect(evidence[1]!.message).toContain("{nickname} was unresolved in 12 of 12 runs");
    const plain = await mova(["validate", docFile, "--json"]);
    expect(
      json<Array<{ warnings: Array<{ code: string }> }>>(plain)[0]!.warnings.some((w) =>
        w.code.startsWith("evidence_"),
      ),
    ).toBe(false);
  }, 120_000);
});
