/**
 * Child runs in the history, on the local stack through the gateway: a run of
 * examples/sub-protocols.json (a `foreach` then a `call`) records each child as an execution
 * of its own, linked to its parent (GET /executions/{id}/children, GET /executions/{child id}),
 * tenant-scoped; each child is published to the analysis, and recording the children again
 * (a retried leg, a duplicate delivery) neither adds a child nor counts one twice. A run the
 * runner advances records its children the same way.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SQSEvent } from "aws-lambda";
import { buildAnalysisDeps } from "../../lib/wiring/analysis.ts";
import { buildRunnerHandler } from "../../lib/wiring/runner.ts";
import { createAnalyzeHandler } from "../../lib/services/analysis-handlers.ts";
import { recordChildren } from "../../lib/services/child-runs.ts";
import type { ExecutionRecord } from "../../lib/core/execution-record.ts";
import { dayOf } from "../../lib/analysis/time.ts";
import { toSqsEvent } from "../../infra/local/sqs-poller.ts";
import { type ApiFixture, quietLogger, startApiFixture } from "../support/api-fixture.ts";

let api: ApiFixture;
const document = JSON.parse(
  readFileSync(new URL("../../examples/sub-protocols.json", import.meta.url), "utf8"),
);
const members = ["Ana", "Bo", "Cy"];

beforeAll(async () => {
  api = await startApiFixture();
  expect((await api.call("PUT", "/documents/team", { body: document })).status).toBe(201);
}, 60_000);
afterAll(async () => {
  await api?.close();
});

describe("child runs in the history", () => {
  let parentId: string;
  let childIds: string[];

  it("records each child as an execution linked to its parent, listed and readable by its id", async () => {
    await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!, 0);
    const run = await api.call("POST", "/executions", {
      body: { document: "team", protocol: "welcome_team", variables: { team: "core", members } },
    });
    expect(run.status).toBe(200);
    expect(run.body.status).toBe("completed");
    parentId = run.body.executionId;
    const eachIds = members.map((_, index) => `${parentId}~greet_each.1~${index}`);
    childIds = [...eachIds, `${parentId}~summary.1`];

    // The parent's record keeps the summary of its children, with their ids.
    const parent = await api.call("GET", `/executions/${parentId}`);
    expect(parent.status).toBe(200);
    expect(parent.body.parentExecutionId).toBeUndefined();
    const greetEach = parent.body.steps.find((step: { id: string }) => step.id === "greet_each");
    expect(greetEach.children.map((child: { executionId: string }) => child.executionId)).toEqual(eachIds);
    const summary = parent.body.steps.find((step: { id: string }) => step.id === "summary");
    expect(summary.children).toEqual([
      expect.objectContaining({
        protocol: "summarise",
        status: "completed",
        executionId: `${parentId}~summary.1`,
      }),
    ]);

    // The children, listed from the parent: by step, then item.
    const listed = await api.call("GET", `/executions/${parentId}/children`);
    expect(listed.status).toBe(200);
    expect(listed.body.cursor).toBeUndefined();
    expect(listed.body.items.map((child: { executionId: string }) => child.executionId)).toEqual([
      ...eachIds,
      `${parentId}~summary.1`,
    ]);
    expect(listed.body.items[1]).toMatchObject({
      protocol: "greet",
      status: "completed",
      parentStep: "greet_each",
      parentVisit: 1,
      itemIndex: 1,
    });
    // Paged like the other lists.
    const first = await api.call("GET", `/executions/${parentId}/children?limit=3`);
    expect(first.body.items).toHaveLength(3);
    const rest = await api.call(
      "GET",
      `/executions/${parentId}/children?limit=3&cursor=${first.body.cursor}`,
    );
    expect(rest.body.items.map((child: { executionId: string }) => child.executionId)).toEqual([
      `${parentId}~summary.1`,
    ]);
    expect(rest.body.cursor).toBeUndefined();

    // One child: its own record, with its step records and its link to its parent.
    const child = await api.call("GET", `/executions/${eachIds[1]}`);
    expect(child.status).toBe(200);
    expect(child.body).toMatchObject({
      executionId: eachIds[1],
      tenant: "dev",
      document: "team",
      documentVersion: parent.body.documentVersion,
      protocol: "greet",
      status: "completed",
      parentExecutionId: parentId,
      parentStep: "greet_each",
      itemIndex: 1,
      path: ["write", "done"],
      analysis: "published",
    });
    expect(child.body.steps.map((step: { id: string }) => step.id)).toEqual(["write", "done"]);
    expect(child.body.steps[0].prompt).toBe("Write one line welcoming Bo to the core team.");
    expect(child.body.output).toBe("reply: Write one line welcoming Bo to the core team.");
    const steps = await api.call("GET", `/executions/${eachIds[1]}/steps`);
    expect(steps.body.total).toBe(2);
    // A child has no children of its own here.
    expect((await api.call("GET", `/executions/${eachIds[1]}/children`)).body).toEqual({ items: [] });

    // The child protocol's history lists it.
    const history = await api.call("GET", "/documents/team/protocols/greet/executions");
    expect(history.body.items.map((item: { executionId: string }) => item.executionId).sort()).toEqual(
      [...eachIds].sort(),
    );
  });

  it("answers 404 to another tenant, and 400 to a cursor of another execution", async () => {
    const other = { key: api.acmeKey };
    expect((await api.call("GET", `/executions/${childIds[0]}`, other)).status).toBe(404);
    expect((await api.call("GET", `/executions/${parentId}/children`, other)).status).toBe(404);
    expect((await api.call("GET", `/executions/${childIds[0]}/steps`, other)).status).toBe(404);
    expect((await api.call("GET", "/executions/ex_missing~step.1/children")).status).toBe(404);
    const page = await api.call("GET", `/executions/${parentId}/children?limit=1`);
    const foreign = await api.call("GET", `/executions/${childIds[0]}/children?cursor=${page.body.cursor}`);
    expect(foreign.status).toBe(400);
    expect(foreign.body.error.code).toBe("invalid_cursor");
    expect((await api.call("GET", "/executions/bad%2Fid")).status).toBe(400);
  });

  it("publishes each child once; recording them again and delivering twice counts each run once", async () => {
    const messages = await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!);
    const published = messages
      .map((message) => JSON.parse(message.Body!).execution as ExecutionRecord)
      .filter((record) => record.executionId.startsWith(parentId));
    expect(published.map((record) => record.executionId).sort()).toEqual([parentId, ...childIds].sort());
    const children = published.filter((record) => record.parentExecutionId === parentId);
    expect(children).toHaveLength(childIds.length);

    // The leg's recording of its children again (a retried leg): the same records, nothing new.
    const stored = await Promise.all(childIds.map((id) => api.deps.history.getExecution("dev", id)));
    const again = await recordChildren(stored as ExecutionRecord[], {
      ...api.deps,
      logger: quietLogger(),
    });
    expect(again.failed).toBe(0);
    const listed = await api.call("GET", `/executions/${parentId}/children?limit=100`);
    expect(listed.body.items).toHaveLength(childIds.length);
    // A child run again with another result (its parent's step run again after a crash): the
    // first record stands.
    const rerun: ExecutionRecord = { ...(stored[0] as ExecutionRecord), status: "failed", output: "other" };
    expect(await recordChildren([rerun], { ...api.deps, logger: quietLogger() })).toMatchObject({
      before: 1,
    });
    expect((await api.call("GET", `/executions/${childIds[0]}`)).body.status).toBe("completed");

    // Every message (the first publish and the repeat), delivered twice: each run counted once.
    const repeats = (await api.drainQueue(api.env.ANALYSIS_QUEUE_URL!)).filter((message) =>
      (JSON.parse(message.Body!).execution as ExecutionRecord).executionId.startsWith(parentId),
    );
    expect(repeats.length).toBeGreaterThanOrEqual(childIds.length);
    const analysis = buildAnalysisDeps(api.config, { env: api.env, logger: quietLogger() });
    const handler = createAnalyzeHandler(analysis);
    const all = [...messages, ...repeats, ...messages].filter((message) =>
      (JSON.parse(message.Body!).execution as ExecutionRecord).executionId.startsWith(parentId),
    );
    const event: SQSEvent = toSqsEvent(
      all.map((message, index) => ({ ...message, MessageId: `m-${index}` })),
      api.env.ANALYSIS_QUEUE_URL!,
      api.config.AWS_REGION,
    );
    expect(await handler(event)).toEqual({ batchItemFailures: [] });
    const counted = async (protocol: string) => {
      const day = dayOf(published[0]!.finishedAt);
      const window = await analysis.patterns.readWindow(
        { tenant: "dev", document: "team", protocol },
        day,
        day,
      );
      return window?.aggregate.executions ?? 0;
    };
    expect(await counted("welcome_team")).toBe(1);
    expect(await counted("greet")).toBe(members.length);
    expect(await counted("summarise")).toBe(1);
  });

  it("records the children of a run the runner advances, once however often its message arrives", async () => {
    const started = await api.call("POST", "/executions", {
      body: { document: "team", protocol: "welcome_team", variables: { team: "ops", members: ["Di", "Ed"] } },
      headers: { prefer: "respond-async" },
    });
    expect(started.status).toBe(202);
    const { executionId } = started.body;
    const runner = buildRunnerHandler(api.config, { env: api.env, logger: quietLogger() });
    const message = {
      Records: [{ messageId: "m", body: JSON.stringify({ tenant: "dev", executionId }) }],
    } as unknown as SQSEvent;
    // The first delivery advances and finishes the run; the second finds it finished.
    for (let i = 0; i < 2; i++) {
      const result = await runner(message, { awsRequestId: `r${i}`, getRemainingTimeInMillis: () => 60_000 });
      expect(result.batchItemFailures).toEqual([]);
    }
    const parent = await api.call("GET", `/executions/${executionId}`);
    expect(parent.body.status).toBe("completed");
    const listed = await api.call("GET", `/executions/${executionId}/children`);
    expect(listed.body.items.map((child: { executionId: string }) => child.executionId)).toEqual([
      `${executionId}~greet_each.1~0`,
      `${executionId}~greet_each.1~1`,
      `${executionId}~summary.1`,
    ]);
    const child = await api.call("GET", `/executions/${executionId}~summary.1`);
    expect(child.body).toMatchObject({
      protocol: "summarise",
      parentExecutionId: executionId,
      status: "completed",
    });
    expect(child.body.steps[0].prompt).toContain("Summarise in one sentence how the ops team was welcomed");
  });
  it("records a step's children before the step's checkpoint: they are in the history while the run goes on", async () => {
    const slow = structuredClone(document);
    const welcome = slow.protocols[0];
    // The foreach, then a tool that answers only when the test lets it.
    welcome.steps = [
      welcome.steps[0],
      { id: "announce", action: "tool_api", tool_api_id: "announce", output: "announced" },
      { id: "done", action: "end", response_template: "{greetings}" },
    ];
    slow.tools = [{ id: "announce", endpoint: `${api.tools.url}/announce`, method: "POST" }];
    expect((await api.call("PUT", "/documents/team_slow", { body: slow })).status).toBe(201);
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    api.tools.route("POST", "/announce", async () => {
      await held;
      return { body: { ok: true } };
    });
    const listed = async () =>
      (await api.call("GET", "/documents/team_slow/protocols/greet/executions")).body.items as Array<{
        executionId: string;
        parentExecutionId: string;
      }>;

    const run = api.call("POST", "/executions", {
      body: { document: "team_slow", protocol: "welcome_team", variables: { team: "ops", members } },
    });
    try {
      for (let wait = 0; !api.tools.requests.some((r) => r.path === "/announce"); wait++) {
        if (wait > 200) throw new Error("the announce step never started");
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      // The leg is still in the step after the foreach: its children are recorded already.
      const during = await listed();
      expect(during).toHaveLength(members.length);
    } finally {
      release();
    }
    const done = await run;
    expect(done.body.status).toBe("completed");
    const after = await listed();
    expect(after.map((child) => child.executionId).sort()).toEqual(
      members.map((_, index) => `${done.body.executionId}~greet_each.1~${index}`).sort(),
    );
    expect(after.every((child) => child.parentExecutionId === done.body.executionId)).toBe(true);
  });
});
