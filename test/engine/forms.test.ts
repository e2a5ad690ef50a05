/** Forms: an input step's `validate` refuses replies, asks again, and gives up after max_attempts. */
import { describe, expect, it } from "vitest";
import type { SuspendedRun } from "../../lib/core/run.ts";
import { advanceRun, resumeRun, runProtocol } from "../../lib/engine/engine.ts";
import { newRunState } from "../../lib/engine/run-state.ts";
import type { MovaDocument } from "../../lib/mova/schema.ts";
import { documentOf, useServers } from "./support.ts";

const servers = useServers();

const form = (validate: Record<string, unknown>): MovaDocument =>
  documentOf({
    protocols: [
      {
        name: "form",
        steps: [
          { id: "ask", action: "input", prompt: "Your email?", variable: "email", validate } as never,
          { id: "done", action: "end", response_template: "thanks {email}" },
          { id: "human", action: "end", response_template: "a person will contact you" },
        ],
      },
    ],
  });

const roundTrip = (suspended: SuspendedRun | undefined): SuspendedRun =>
  JSON.parse(JSON.stringify(suspended));

async function answer(document: MovaDocument, replies: string[]) {
  let result = await runProtocol({ document, protocol: "form", ports: servers.ports() });
  for (const reply of replies) {
    result = await resumeRun({
      document,
      ports: servers.ports(),
      suspended: roundTrip(result.suspended),
      reply,
    });
  }
  return result;
}

describe("input validate", () => {
  it("refuses a reply that fails, shows the message and waits again; a good reply goes on", async () => {
    const document = form({ type: "email", message: "That is not an email, try again." });
    const refused = await answer(document, ["not an email"]);
    expect(refused.status).toBe("waiting_input");
    expect(refused.replies).toEqual(["That is not an email, try again."]);
    expect(refused.waitingFor).toMatchObject({ stepId: "ask", prompt: "That is not an email, try again." });
    expect(refused.variables).not.toHaveProperty("email");
    expect(refused.suspended?.waiting?.failedReplies).toBe(1);

    const accepted = await answer(document, ["nope", "olena@example.com"]);
    expect(accepted.status).toBe("completed");
    expect(accepted.output).toBe("thanks olena@example.com");
    expect(accepted.steps.at(-2)).toMatchObject({ id: "ask", status: "succeeded", attempts: 2 });
  });

  it("fails the run with input_attempts_exhausted after max_attempts refused replies", async () => {
    const result = await answer(form({ type: "email", max_attempts: 2 }), ["a", "b"]);
    expect(result.status).toBe("failed");
    expect(result.error?.code).toContain("input_attempts_exhausted");
    expect(result.steps.at(-1)).toMatchObject({ id: "ask", status: "failed", attempts: 2 });
  });

  it("goes to on_exhausted instead when the form says so", async () => {
    const result = await answer(form({ type: "email", max_attempts: 1, on_exhausted: "human" }), ["a"]);
    expect(result.status).toBe("completed");
    expect(result.output).toBe("a person will contact you");
  });

  it("checks types, lengths, patterns and conditions, storing typed values", async () => {
    const cases: Array<[Record<string, unknown>, string, unknown]> = [
      [{ type: "number" }, " 4.5 ", 4.5],
      [{ type: "integer" }, "42", 42],
      [{ type: "boolean" }, "Yes", true],
      [{ type: "date" }, "2025-02-28", "2025-02-28"],
      [{ min_length: 2, max_length: 4 }, "abc", "abc"],
      [{ pattern: "^[A-Z]{2}\\d+$" }, "UA123", "UA123"],
      [
        { type: "integer", conditions: [{ variable: "email", operator: "greater_than", value: 17 }] },
        "18",
        18,
      ],
    ];
    for (const [rules, good, stored] of cases) {
      const result = await answer(form(rules), [good]);
      expect(result.variables.email, JSON.stringify(rules)).toEqual(stored);
    }
    const refusals: Array<[Record<string, unknown>, string]> = [
      [{ type: "number" }, "four"],
      [{ type: "integer" }, "4.5"],
      [{ type: "boolean" }, "maybe"],
      [{ type: "date" }, "2025-02-30"],
      [{ min_length: 2 }, "a"],
      [{ max_length: 2 }, "abc"],
      [{ pattern: "^\\d+$" }, "12a"],
      [{ type: "integer", conditions: [{ variable: "email", operator: "greater_than", value: 17 }] }, "16"],
    ];
    for (const [rules, bad] of refusals) {
      const result = await answer(form(rules), [bad]);
      expect(result.status, `${JSON.stringify(rules)} ${bad}`).toBe("waiting_input");
    }
  });

  it("counts refused replies across a durable run's checkpoints", async () => {
    const document = form({ type: "email", max_attempts: 2 });
    let state = newRunState({ document, protocol: "form" });
    let result = await advanceRun({ document, ports: servers.ports(), state });
    result = await advanceRun({
      document,
      ports: servers.ports(),
      state: JSON.parse(JSON.stringify(result.state)),
      reply: "x",
    });
    expect(result.state?.waiting?.failedReplies).toBe(1);
    state = JSON.parse(JSON.stringify(result.state));
    result = await advanceRun({ document, ports: servers.ports(), state, reply: "y" });
    expect(result.status).toBe("failed");
  });
});
