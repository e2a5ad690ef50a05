/**
 * The patches that change a protocol's flow (a condition never going one way, steps that can
 * run in parallel), computed from histories the engine made by running the document with the
 * offline model, applied to the document as sent, validated, and run again: every run keeps
 * its way and its outputs, but for the step the patch removes or adds.
 */
import { describe, expect, it } from "vitest";
import { createHttpTools } from "../../lib/adapters/http/tools.ts";
import { createOfflineLlm } from "../../lib/adapters/llm/offline.ts";
import type { ActionableRecommendation } from "../../lib/analysis/patches.ts";
import type { RecommendationOptions } from "../../lib/analysis/recommendations.ts";
import { runProtocol } from "../../lib/engine/engine.ts";
import {
  addedWarnings,
  applied,
  expectConflict,
  modelOf,
  recommendationsOf,
  recordOfRun,
  stepsOf,
} from "./patch-support.ts";

const ports = { llm: createOfflineLlm(), tools: createHttpTools({ allowHosts: ["127.0.0.1"] }) };

function run(source: unknown, protocol: string, variables: Record<string, unknown>) {
  return runProtocol({ document: modelOf(source), protocol, variables, ports });
}

/** The recommendations from `runs` runs of the source. */
async function recommendationsAfterRuns(
  source: unknown,
  protocol: string,
  variables: Record<string, unknown>,
  runs: number,
  options: RecommendationOptions = {},
): Promise<ActionableRecommendation[]> {
  const records = [];
  for (let i = 0; i < runs; i++) records.push(recordOfRun(i, await run(source, protocol, variables)));
  return recommendationsOf(source, protocol, records, options);
}

function triage(value: string) {
  return {
    version: "2.2",
    protocols: [
      {
        name: "triage",
        inputs: ["text"],
        steps: [
          { id: "classify", action: "prompt", prompt: "Classify {text}", output: "kind" },
          {
            id: "check",
            action: "condition",
            conditions: [{ variable: "kind", operator: "contains", value }],
            else_step: "refuse",
          },
          { id: "answer", action: "prompt", prompt: "Answer {text}", output: "reply" },
          { id: "done", action: "end", response_template: "{reply}" },
          { id: "refuse", action: "end", response_template: "Sorry: {kind}" },
        ],
      },
    ],
  };
}

describe("branch_never_taken", () => {
  it.each([
    // The offline model's replies contain "offline": the else way is never taken.
    { value: "offline", never: "else", path: ["classify", "answer", "done"], next: undefined },
    { value: "nothing", never: "then", path: ["classify", "refuse"], next: "refuse" },
  ])("removes the condition, the runs going straight where they all went ($never never taken)", async (c) => {
    const source = triage(c.value);
    const options = { minRuns: 3 };
    const recs = await recommendationsAfterRuns(source, "triage", { text: "hi" }, 3, options);
    const rec = recs.find((r) => r.kind === "branch_never_taken");
    expect(rec?.evidence.neverTaken).toBe(c.never);
    const patched = applied(source, rec);
    expect(stepsOf(patched).map((s) => s.id)).not.toContain("check");
    // The steps only the dead way reached are left for a person, named by the validator.
    const added = addedWarnings(source, patched);
    expect(added.length).toBeGreaterThan(0);
    for (const warning of added) expect(warning).toMatch(/^unreachable_step: /);
    expect(stepsOf(patched)[0]?.next_step).toBe(c.next);

    const before = await run(source, "triage", { text: "hi" });
    const after = await run(patched, "triage", { text: "hi" });
    expect(before.path.filter((id) => id !== "check")).toEqual(c.path);
    expect(after.path).toEqual(c.path);
    expect(after.status).toBe("completed");
    expect(after.output).toEqual(before.output);
    expect(after.variables).toEqual(before.variables);

    expectConflict(source, rec!, (copy) => {
      (stepsOf(copy)[1]!.conditions as Array<{ value: string }>)[0]!.value = "changed";
    });
  });

  it("a guard of input (its dead way asks again or goes back) keeps its condition: no patch, and the evidence says why", async () => {
    const source = {
      version: "2.2",
      protocols: [
        {
          name: "draft",
          inputs: ["topic"],
          steps: [
            { id: "write", action: "prompt", prompt: "Write about {topic}", output: "text" },
            // The offline model's replies contain "offline": the way back is never taken.
            {
              id: "check",
              action: "condition",
              conditions: [{ variable: "text", operator: "contains", value: "offline" }],
              else_step: "write",
            },
            { id: "done", action: "end", response_template: "{text}" },
          ],
        },
      ],
    };
    const recs = await recommendationsAfterRuns(source, "draft", { topic: "tea" }, 3, { minRuns: 3 });
    const rec = recs.find((r) => r.kind === "branch_never_taken");
    expect(rec?.evidence).toMatchObject({ neverTaken: "else", target: "write", guard: "goes_back" });
    // 0 of 3: below 1 − 0.05^(1/3) with 95 % confidence.
    expect(rec?.evidence.upperBoundRate).toBe(0.6316);
    expect(rec?.message).toContain(
      'its else way (back to step "write") was never taken: it looks like a guard',
    );
    expect(rec?.patch).toBeNull();
  });

  it("a way that ends the run: the condition becomes an end step of the same id", async () => {
    const source = {
      version: "2.2",
      protocols: [
        {
          name: "greet",
          inputs: ["name"],
          steps: [
            { id: "hello", action: "prompt", prompt: "Hello {name}" },
            {
              id: "admin_only",
              action: "condition",
              conditions: [{ variable: "name", operator: "equals", value: "root" }],
            },
            { id: "admin", action: "prompt", prompt: "Admin tools for {name}" },
          ],
        },
      ],
    };
    const recs = await recommendationsAfterRuns(source, "greet", { name: "Ann" }, 3, { minRuns: 3 });
    const rec = recs.find((r) => r.kind === "branch_never_taken");
    const patched = applied(source, rec);
    expect(stepsOf(patched)[1]).toEqual({ id: "admin_only", action: "end" });
    const before = await run(source, "greet", { name: "Ann" });
    const after = await run(patched, "greet", { name: "Ann" });
    expect(after.path).toEqual(before.path);
    expect(after.output).toEqual(before.output);
    expect(after.output).toBe("[offline] Hello Ann");
  });

  it("a rule list that routes: removed when its rules lead to one step (the start then names it), else no patch", async () => {
    const pick = (second: string) => ({
      version: "2.2",
      protocols: [
        {
          name: "pick",
          inputs: ["x"],
          steps: [
            {
              id: "pick",
              action: "condition",
              conditions: [
                { variable: "x", operator: "equals", value: 1, next_step_id: "b" },
                { variable: "x", operator: "equals", value: 2, next_step_id: second },
              ],
              else_step: "c",
            },
            { id: "a", action: "end", response_template: "A" },
            { id: "b", action: "end", response_template: "B" },
            { id: "c", action: "end", response_template: "C" },
          ],
        },
      ],
    });
    const one = pick("b");
    const recs = await recommendationsAfterRuns(one, "pick", { x: 1 }, 3, { minRuns: 3 });
    const patched = applied(
      one,
      recs.find((r) => r.kind === "branch_never_taken"),
    );
    expect(patched.protocols[0]?.start).toBe("b");
    const after = await run(patched, "pick", { x: 1 });
    expect(after.path).toEqual(["b"]);
    expect(after.output).toBe("B");

    const two = pick("a");
    const ambiguous = await recommendationsAfterRuns(two, "pick", { x: 1 }, 3, { minRuns: 3 });
    expect(ambiguous.find((r) => r.kind === "branch_never_taken")?.patch).toBeNull();
  });

  it("the classes form: references to the condition (start, next_step_id) name the live target", async () => {
    const source = {
      version: "2.2",
      classes: {
        protocol: {
          name: "route",
          start: "check",
          inputs: ["tier"],
          steps: [
            {
              id: "check",
              action: "condition",
              conditions: {
                logic: "AND",
                rules: [{ variable: "tier", operator: "equals", value: "gold", next_step_id: "vip" }],
                default_next_step_id: "basic",
              },
            },
            { id: "basic", action: "prompt", prompt: "Basic {tier}", next_step_id: "done" },
            { id: "vip", action: "prompt", prompt: "VIP {tier}", next_step_id: "back" },
            {
              id: "back",
              action: "condition",
              conditions: [{ variable: "tier", operator: "exists" }],
              next_step_id: "check",
            },
            { id: "done", action: "end" },
          ],
        },
      },
    };
    const recs = await recommendationsAfterRuns(source, "route", { tier: "silver" }, 3, { minRuns: 3 });
    const rec = recs.find((r) => r.kind === "branch_never_taken" && r.step === "check");
    expect(rec?.evidence.neverTaken).toBe("then");
    const patched = applied(source, rec) as unknown as {
      classes: { protocol: { start: string; steps: Array<Record<string, unknown>> } };
    };
    const protocol = patched.classes.protocol;
    expect(protocol.start).toBe("basic");
    expect(protocol.steps.map((s) => s.id)).toEqual(["basic", "vip", "back", "done"]);
    expect(protocol.steps[2]?.next_step_id).toBe("basic");
    const after = await run(patched, "route", { tier: "silver" });
    expect(after.path).toEqual(["basic", "done"]);
    expect(after.output).toBe((await run(source, "route", { tier: "silver" })).output);
  });
});

function briefs() {
  const prompt = (id: string, text: string, output?: string) => ({
    id,
    action: "prompt",
    prompt: `${text} {text}`,
    ...(output && { output }),
  });
  return {
    version: "2.2",
    protocols: [
      {
        name: "brief",
        inputs: ["text"],
        steps: [
          prompt("summarise", "Summarise", "summary"),
          prompt("translate", "Translate", "translation"),
          { id: "done", action: "end", response_template: "{summary} | {translation}" },
        ],
      },
      {
        name: "refs",
        inputs: ["text"],
        start: "gate",
        steps: [
          {
            id: "gate",
            action: "condition",
            conditions: [{ variable: "text", operator: "exists" }],
            else_step: "one",
          },
          prompt("one", "One", "a"),
          prompt("two", "Two", "b"),
          { id: "end", action: "end", response_template: "{a}/{b}" },
        ],
      },
      { name: "tail", inputs: ["text"], steps: [prompt("first", "First"), prompt("second", "Second")] },
    ],
  };
}

describe("parallelize", () => {
  it.each([
    {
      protocol: "brief",
      ids: ["summarise_parallel", "summarise", "translate", "done"],
      path: ["summarise_parallel", "done"],
    },
    {
      protocol: "refs",
      ids: ["gate", "one_parallel", "one", "two", "end"],
      path: ["gate", "one_parallel", "end"],
    },
  ])("runs the steps as one parallel step, then goes on where the last went ($protocol)", async (c) => {
    const source = briefs();
    const recs = await recommendationsAfterRuns(source, c.protocol, { text: "hi" }, 2);
    const rec = recs.find((r) => r.kind === "parallelize");
    const patched = applied(source, rec);
    const index = source.protocols.findIndex((p) => p.name === c.protocol);
    const steps = stepsOf(patched, index);
    expect(addedWarnings(source, patched)).toEqual([]);
    expect(steps.map((s) => s.id)).toEqual(c.ids);
    const parallel = steps.find((s) => s.action === "parallel");
    expect(parallel?.next_step).toBe(c.ids.at(-1));

    const before = await run(source, c.protocol, { text: "hi" });
    const after = await run(patched, c.protocol, { text: "hi" });
    expect(after.path).toEqual(c.path);
    expect(after.status).toBe("completed");
    expect(after.output).toEqual(before.output);
    expect(after.variables).toEqual(before.variables);
    // Each branch ran once, none again in sequence after the parallel step.
    for (const branch of parallel!.steps as string[])
      expect(after.steps.filter((s) => s.id === branch).map((s) => s.status)).toEqual(["succeeded"]);
    if (c.protocol === "refs") expect(steps[0]?.else_step).toBe("one_parallel");

    expectConflict(source, rec!, (copy) => {
      stepsOf(copy, index).at(-2)!.prompt = "Changed {text}";
    });
  });

  it("a group that ended the run ends it with a new end step after the parallel step", async () => {
    const source = briefs();
    const recs = await recommendationsAfterRuns(source, "tail", { text: "hi" }, 2);
    const patched = applied(
      source,
      recs.find((r) => r.kind === "parallelize"),
    );
    expect(stepsOf(patched, 2)).toEqual([
      {
        id: "first_parallel",
        action: "parallel",
        steps: ["first", "second"],
        next_step: "first_parallel_end",
      },
      { id: "first_parallel_end", action: "end" },
      ...source.protocols[2]!.steps,
    ]);
    const before = await run(source, "tail", { text: "hi" });
    const after = await run(patched, "tail", { text: "hi" });
    expect(after.path).toEqual(["first_parallel", "first_parallel_end"]);
    expect(after.variables).toEqual(before.variables);
    // The output is the parallel step's: each branch's by its id.
    expect(after.output).toEqual({ first: "[offline] First hi", second: "[offline] Second hi" });
  });
});
