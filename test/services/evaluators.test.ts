/**
 * Evaluators in the analysis: the runs a merge counts are judged by the loopback
 * OpenAI-compatible server with structured output; the judgement is stored once however often
 * the event arrives; a failing or malformed judge leaves the run unjudged and the run counted.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalStack, startLocalStack } from "../../infra/local/stack.ts";
import { createDynamoDbClient } from "../../lib/adapters/aws-clients.ts";
import { createDynamoDocumentStore } from "../../lib/adapters/dynamodb/document-store.ts";
import { createDynamoScoreStore } from "../../lib/adapters/dynamodb/score-store.ts";
import { dayOf } from "../../lib/analysis/time.ts";
import { loadConfig } from "../../lib/config.ts";
import { EXECUTION_EVENT_TYPE, EXECUTION_EVENT_VERSION } from "../../lib/core/execution-event.ts";
import type { ExecutionRecord } from "../../lib/core/execution-record.ts";
import { processExecutionEvents } from "../../lib/services/analysis-ingest.ts";
import { inSample } from "../../lib/services/evaluators.ts";
import { buildAnalysisDeps } from "../../lib/wiring/analysis.ts";
import { type FakeOpenAi, startFakeOpenAi } from "../support/fake-openai.ts";
import { sampleExecution, uniqueTenant } from "../support/runtime-fixtures.ts";

let stack: LocalStack;
let llm: FakeOpenAi;
beforeAll(async () => {
  stack = await startLocalStack({ memory: true });
  llm = await startFakeOpenAi();
}, 60_000);
afterAll(async () => {
  await llm?.close();
  await stack?.stop();
});

const event = (record: ExecutionRecord, id: string) => ({
  id,
  body: JSON.stringify({
    type: EXECUTION_EVENT_TYPE,
    version: EXECUTION_EVENT_VERSION,
    publishedAt: new Date().toISOString(),
    execution: record,
  }),
});

describe("evaluators", () => {
  it("judge counted runs once, with structured output, and leave a run unjudged when the judge fails", async () => {
    const tenant = uniqueTenant("judge");
    const env = {
      ...stack.env,
      LLM_API_KEY: "sk-test",
      LLM_BASE_URL: llm.baseURL,
      LLM_MAX_RETRIES: "0",
      LOG_LEVEL: "SILENT",
    };
    const config = loadConfig(env);
    const client = createDynamoDbClient(config, { env });
    const documents = createDynamoDocumentStore({ client, table: config.DOCUMENTS_TABLE });
    const stored = await documents.put(tenant, "support", {
      version: "2.2",
      protocols: [{ name: "refund", steps: [{ id: "answer", action: "prompt", prompt: "say fine" }] }],
      evaluators: [
        { id: "helpful", rubric: "Did the reply solve the problem?", model: "judge-model" },
        { id: "never", rubric: "unused", sample: 0 },
        { id: "elsewhere", rubric: "unused", protocols: ["other"] },
      ],
    });
    const deps = buildAnalysisDeps(config, { env });
    const scores = createDynamoScoreStore({ client, table: config.PATTERNS_TABLE });
    const run = () => sampleExecution({ tenant, documentVersion: stored.version });
    const scoresOf = (record: ExecutionRecord) =>
      scores.list(
        {
          tenant,
          document: "support",
          protocol: "refund",
          version: stored.version,
          day: dayOf(record.finishedAt),
        },
        record.executionId,
      );

    llm.answerWith(() => JSON.stringify({ score: 0.75, reason: "clear\nanswer" }));
    const judged = run();
    const before = llm.completions().length;
    const first = await processExecutionEvents([event(judged, "a")], deps);
    expect(first.get("a")?.status).toBe("counted");
    expect(await scoresOf(judged)).toEqual([
      expect.objectContaining({ source: "evaluator:helpful", score: 0.75, reason: "clear answer" }),
    ]);
    const requests = llm.completions().slice(before);
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({
      model: "judge-model",
      response_format: { type: "json_schema", json_schema: { name: "judgement", strict: true } },
    });

    // Delivered again: a duplicate, not judged again, still one judgement.
    const again = await processExecutionEvents([event(judged, "a2")], deps);
    expect(again.get("a2")?.status).toBe("duplicate");
    expect(llm.completions().length).toBe(before + 1);
    expect(await scoresOf(judged)).toHaveLength(1);

    // A failing judge, then one answering out of shape: counted, unjudged.
    llm.queue({ status: 500, body: { error: { message: "down" } } });
    const failing = run();
    expect((await processExecutionEvents([event(failing, "b")], deps)).get("b")?.status).toBe("counted");
    expect(await scoresOf(failing)).toEqual([]);
    llm.answerWith(() => JSON.stringify({ score: 3, reason: "out of range" }));
    const malformed = run();
    expect((await processExecutionEvents([event(malformed, "c")], deps)).get("c")?.status).toBe("counted");
    expect(await scoresOf(malformed)).toEqual([]);
  }, 60_000);

  it("sample the same executions every time, in proportion to `sample`", () => {
    const evaluator = { id: "helpful", sample: 0.2 };
    expect(inSample("exe-1", evaluator)).toBe(inSample("exe-1", evaluator));
    let taken = 0;
    for (let i = 0; i < 10_000; i++) if (inSample(`exe-${i}`, evaluator)) taken++;
    // 2,000 ± 4 standard deviations (160).
    expect(taken).toBeGreaterThan(1840);
    expect(taken).toBeLessThan(2160);
    expect(inSample("x", { id: "a", sample: 0 })).toBe(false);
    expect(inSample("x", { id: "a", sample: 1 })).toBe(true);
  });
});
