import { MovaError } from "../../lib/errors.ts";
import { describe, expect, it } from "vitest";
import { resumeRun, runProtocol } from "../../lib/engine/engine.ts";
import type { StepRecord, SuspendedRun } from "../../lib/core/run.ts";
import { documentOf, useServers } from "./support.ts";

const servers = useServers();

const form = documentOf({
  protocols: [
    {
      name: "form",
      steps: [
        { id: "greet", action: "prompt", prompt: "Greet {who}" },
        { id: "ask_age", action: "input", prompt: "{who}, how old are you?", variable: "age" },
        {
          id: "valid",
          action: "condition",
          conditions: [{ variable: "age", operator: "matches", value: "^\\d{1,3}$" }],
          else_step: "ask_age",
        },
        { id: "confirm", action: "end", response_template: "{who} is {age} ({user_input})" },
      ],
    },
  ],
});

const roundTrip = (suspended: SuspendedRun | undefined): SuspendedRun =>
  JSON.parse(JSON.stringify(suspended));

describe("input steps", () => {
  it("suspend the run, resume from the serialised run with the reply, and re-ask until valid", async () => {
    const reported: StepRecord[] = [];
    const onStep = (record: StepRecord) => reported.push(record);
    const first = await runProtocol({
      document: form,
      protocol: "form",
      variables: { who: "Taras" },
      ports: servers.ports(),
      onStep,
    });

    expect(first.status).toBe("waiting_input");
    expect(first.waitingFor).toEqual({
      stepId: "ask_age",
      prompt: "Taras, how old are you?",
      variable: "age",
    });
    expect(first.replies).toEqual(["reply: Greet Taras", "Taras, how old are you?"]);
    expect(first.path).toEqual(["greet", "ask_age"]);
    expect(first.steps.map((s) => s.id)).toEqual(["greet"]);
    expect(first.suspended).toMatchObject({ v: 1, protocol: "form", stepId: "ask_age", stepCount: 2 });
    expect(roundTrip(first.suspended)).toEqual(first.suspended);

    const second = await resumeRun({
      document: form,
      suspended: roundTrip(first.suspended),
      reply: "old enough",
      ports: servers.ports(),
      onStep,
    });
    expect(second.status).toBe("waiting_input");
    expect(second.replies).toEqual(["Taras, how old are you?"]);
    expect(second.variables.age).toBe("old enough");
    expect(second.path).toEqual(["greet", "ask_age", "valid", "ask_age"]);

    const third = await resumeRun({
      document: form,
      suspended: roundTrip(second.suspended),
      reply: "42",
      ports: servers.ports(),
      onStep,
    });
    expect(third.status).toBe("completed");
    expect(third.output).toBe("Taras is 42 (42)");
    expect(third.replies).toEqual(["Taras is 42 (42)"]);
    expect(third.variables).toMatchObject({
      who: "Taras",
      age: "42",
      user_input: "42",
      prompt_response_greet: "reply: Greet Taras",
    });
    expect(third.path).toEqual(["greet", "ask_age", "valid", "ask_age", "valid", "confirm"]);
    expect(third.steps.map((s) => [s.id, s.status, s.branch])).toEqual([
      ["greet", "succeeded", undefined],
      ["ask_age", "succeeded", undefined],
      ["valid", "succeeded", "else"],
      ["ask_age", "succeeded", undefined],
      ["valid", "succeeded", "then"],
      ["confirm", "succeeded", undefined],
    ]);
    expect(third.steps[1]).toMatchObject({
      prompt: "Taras, how old are you?",
      output: "old enough",
      outputVariable: "age",
      attempts: 1,
    });
    expect(reported.map((r) => r.id)).toEqual(third.steps.map((s) => s.id));
    expect(third.startedAt).toBe(first.startedAt);
  });

  it("resumes the same suspended run twice independently", async () => {
    const first = await runProtocol({
      document: form,
      protocol: "form",
      variables: { who: "A" },
      ports: servers.ports(),
    });
    const saved = roundTrip(first.suspended);
    const [one, two] = await Promise.all([
      resumeRun({ document: form, suspended: saved, reply: "10", ports: servers.ports() }),
      resumeRun({ document: form, suspended: saved, reply: "20", ports: servers.ports() }),
    ]);
    expect(one.output).toBe("A is 10 (10)");
    expect(two.output).toBe("A is 20 (20)");
    expect(saved.variables.age).toBeUndefined();
    expect(saved.steps).toHaveLength(1);
  });

  it("gives the result and its suspended run copies of the variables that share nothing", async () => {
    const inputs = { who: "B", profile: { tags: ["x"] } };
    const first = await runProtocol({
      document: form,
      protocol: "form",
      variables: inputs,
      ports: servers.ports(),
    });
    const suspended = first.suspended as SuspendedRun;
    expect(first.variables).toEqual(suspended.variables);
    expect(first.variables).not.toBe(suspended.variables);
    expect(Object.getPrototypeOf(first.variables)).toBe(Object.prototype);
    expect(Object.getPrototypeOf(suspended.variables)).toBe(Object.prototype);
    (first.variables.profile as { tags: string[] }).tags.push("changed");
    first.variables.who = "changed";
    expect(suspended.variables).toMatchObject({ who: "B", profile: { tags: ["x"] } });
    expect(inputs).toEqual({ who: "B", profile: { tags: ["x"] } });
  });

  it("skips an input step whose guard does not hold", async () => {
    const document = documentOf({
      protocols: [
        {
          name: "p",
          steps: [
            {
              id: "ask",
              action: "input",
              prompt: "Name?",
              variable: "name",
              conditions: [{ variable: "name", operator: "not_exists" }],
            },
            { id: "end", action: "end", response_template: "Hello {name}" },
          ],
        },
      ],
    });
    const known = await runProtocol({
      document,
      protocol: "p",
      variables: { name: "Lesya" },
      ports: servers.ports(),
    });
    expect(known.status).toBe("completed");
    expect(known.output).toBe("Hello Lesya");
    const unknown = await runProtocol({ document, protocol: "p", ports: servers.ports() });
    expect(unknown.status).toBe("waiting_input");
  });

  it("refuses a suspended run that is malformed or points at a step that is not an input", async () => {
    const first = await runProtocol({
      document: form,
      protocol: "form",
      variables: { who: "A" },
      ports: servers.ports(),
    });
    const bad = { ...roundTrip(first.suspended), stepId: "greet" };
    await expect(
      resumeRun({ document: form, suspended: bad, reply: "1", ports: servers.ports() }),
    ).rejects.toMatchObject({
      code: "invalid_suspended_run",
    });
    const garbage = { v: 2 } as unknown as SuspendedRun;
    await expect(
      resumeRun({ document: form, suspended: garbage, reply: "1", ports: servers.ports() }),
    ).rejects.toBeInstanceOf(MovaError);
    const otherProtocol = { ...roundTrip(first.suspended), protocol: "gone" };
    await expect(
      resumeRun({ document: form, suspended: otherProtocol, reply: "1", ports: servers.ports() }),
    ).rejects.toMatchObject({
      code: "unknown_protocol",
    });
  });
});
