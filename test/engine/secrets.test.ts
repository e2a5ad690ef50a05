import { describe, expect, it } from "vitest";
import { resumeRun, runProtocol } from "../../lib/engine/engine.ts";
import { REDACTED, SecretRedactor } from "../../lib/engine/redact.ts";
import type { StepRecord } from "../../lib/core/run.ts";
import type { RecordedRequest } from "../support/http-double.ts";
import { documentOf, secretsOf, useServers } from "./support.ts";

const servers = useServers((started) => {
  // The tool answers with what it was sent: whatever leaks into a request leaks into the body.
  const echo = (request: RecordedRequest) => ({
    body: {
      authorization: request.headers.authorization,
      apiKey: request.headers["x-api-key"],
      query: request.query,
      body: request.json,
    },
  });
  started.api.route("GET", "/echo", echo);
  started.api.route("POST", "/echo", echo);
  started.api.route("GET", "/fail", { status: 500, body: "no" });
});

const TOKEN = "tok-3f9a8c1e-very-secret";
const KEY = "key with spaces/and+plus";
const PASSWORD = "p@ss:word";
const secrets = secretsOf({ TOKEN, KEY, PASSWORD });

function leaks(value: unknown): string[] {
  const text = JSON.stringify(value);
  const encoded = [
    TOKEN,
    KEY,
    PASSWORD,
    encodeURIComponent(KEY),
    Buffer.from(`admin:${PASSWORD}`).toString("base64"),
  ];
  return encoded.filter((secret) => text.includes(secret));
}

describe("secrets", () => {
  it("are sent to the tool but redacted from every result field and step record", async () => {
    const document = documentOf({
      tools: [
        {
          id: "bearer",
          endpoint: `${servers.api.url}/echo`,
          parameters: { key: "{secrets.KEY}", q: "x" },
          authentication: { type: "bearer", token: "{secrets.TOKEN}" },
        },
        {
          id: "basic",
          endpoint: `${servers.api.url}/echo`,
          method: "POST",
          parameters: { nested: { pw: "{secrets.PASSWORD}" } },
          authentication: { type: "basic", username: "admin", password: "{secrets.PASSWORD}" },
        },
      ],
      protocols: [
        {
          name: "p",
          steps: [
            { id: "call", action: "tool_api", tool_api_id: "bearer", output: "echoed" },
            { id: "call_basic", action: "tool_api", tool_api_id: "basic", output: "echoed_basic" },
            {
              id: "tell",
              action: "prompt",
              prompt: "The token is {secrets.TOKEN}; echo {echoed.authorization}",
            },
            { id: "end", action: "end", response_template: "done {secrets.TOKEN}" },
          ],
        },
      ],
    });
    const reported: StepRecord[] = [];
    const result = await runProtocol({
      document,
      protocol: "p",
      ports: servers.ports({ secrets }),
      onStep: (r) => reported.push(r),
    });

    expect(result.status).toBe("completed");
    // The secrets really went out.
    const [bearer, basic] = servers.api.requests;
    expect(bearer?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(bearer?.query.key).toBe(KEY);
    expect(basic?.headers.authorization).toBe(`Basic ${Buffer.from(`admin:${PASSWORD}`).toString("base64")}`);
    // The model never gets a secret: not by placeholder (even in a document that skipped
    // validation: it stays a placeholder), nor echoed by a tool into a variable.
    expect(servers.openai.completions().at(-1)?.messages.at(-1)?.content).toBe(
      `The token is {secrets.TOKEN}; echo Bearer ${REDACTED}`,
    );
    // And nothing of them came back.
    expect(leaks(result)).toEqual([]);
    expect(leaks(reported)).toEqual([]);
    expect(result.variables.echoed).toMatchObject({
      authorization: `Bearer ${REDACTED}`,
      query: { key: REDACTED, q: "x" },
    });
    expect(result.variables.echoed_basic).toMatchObject({
      authorization: `Basic ${REDACTED}`,
      body: { nested: { pw: REDACTED } },
    });
    expect(result.steps.find((s) => s.id === "tell")?.prompt).toBe(
      `The token is {secrets.TOKEN}; echo Bearer ${REDACTED}`,
    );
    expect(result.output).toBe("done {secrets.TOKEN}");
    expect(result.unresolved).toContain("secrets.TOKEN");
    expect(result.replies.join(" ")).toContain(REDACTED);
  });

  it("are kept out of the suspended run and re-read on resume", async () => {
    const document = documentOf({
      tools: [
        {
          id: "echo",
          endpoint: `${servers.api.url}/echo`,
          authentication: { type: "api_key", header: "X-API-Key", key: "{secrets.TOKEN}" },
        },
      ],
      protocols: [
        {
          name: "p",
          steps: [
            { id: "before", action: "tool_api", tool_api_id: "echo", output: "first" },
            { id: "ask", action: "input", prompt: "Continue with {first.apiKey}?", variable: "answer" },
            { id: "after", action: "tool_api", tool_api_id: "echo", output: "second" },
            { id: "end", action: "end", response_template: "{answer} {second.apiKey}" },
          ],
        },
      ],
    });
    const first = await runProtocol({ document, protocol: "p", ports: servers.ports({ secrets }) });
    expect(first.status).toBe("waiting_input");
    expect(servers.api.requests[0]?.headers["x-api-key"]).toBe(TOKEN);
    expect(leaks(first)).toEqual([]);
    expect(first.suspended?.secretNames).toEqual(["TOKEN"]);
    expect(first.waitingFor?.prompt).toBe(`Continue with ${REDACTED}?`);

    const resumed = await resumeRun({
      document,
      suspended: JSON.parse(JSON.stringify(first.suspended)),
      reply: "yes",
      ports: servers.ports({ secrets }),
    });
    expect(resumed.status).toBe("completed");
    expect(servers.api.requests[1]?.headers["x-api-key"]).toBe(TOKEN);
    expect(resumed.output).toBe(`yes ${REDACTED}`);
    expect(leaks(resumed)).toEqual([]);
  });

  it("reach neither a template nor a condition, stay redacted in step errors, and cannot be shadowed by a variable called secrets", async () => {
    const document = documentOf({
      tools: [{ id: "fail", endpoint: `${servers.api.url}/fail`, parameters: { k: "{secrets.TOKEN}" } }],
      protocols: [
        {
          name: "p",
          steps: [
            {
              id: "show",
              action: "end",
              response_template: "{secrets.TOKEN} {secrets.MISSING}",
              conditions: [{ variable: "go", operator: "exists" }],
            },
            { id: "call", action: "tool_api", tool_api_id: "fail" },
          ],
        },
      ],
    });
    const shadowed = await runProtocol({
      document,
      protocol: "p",
      variables: { go: true, secrets: { TOKEN: "fake", MISSING: "from variables" } },
      ports: servers.ports({ secrets }),
    });
    expect(shadowed.output).toBe("{secrets.TOKEN} {secrets.MISSING}");
    expect(shadowed.unresolved).toEqual(["secrets.TOKEN", "secrets.MISSING"]);

    const failed = await runProtocol({ document, protocol: "p", ports: servers.ports({ secrets }) });
    expect(failed.status).toBe("failed");
    expect(leaks(failed)).toEqual([]);
  });

  it("redactor replaces every encoding of a secret, longest first, in keys and values", () => {
    const redactor = new SecretRedactor();
    redactor.addSecret("A", "abc");
    redactor.addSecret("B", "abc def");
    const input = { "key-abc": ["abc def", "x abc%20def abc+def", { deep: 'say "abc"' }], n: 1, nil: null };
    expect(redactor.redact(input)).toEqual({
      [`key-${REDACTED}`]: [REDACTED, `x ${REDACTED} ${REDACTED}`, { deep: `say "${REDACTED}"` }],
      n: 1,
      nil: null,
    });
    expect(redactor.names).toEqual(["A", "B"]);
    expect(input["key-abc"][0]).toBe("abc def");
  });
});

describe("secrets outside tool requests", () => {
  it("give a condition nothing to compare (no oracle), and an endpoint no host", async () => {
    const document = documentOf({
      tools: [{ id: "dns", endpoint: "http://{secrets.TOKEN}.invalid/x" }],
      protocols: [
        {
          name: "p",
          steps: [
            {
              id: "probe",
              action: "condition",
              conditions: [{ variable: "secrets.TOKEN", operator: "exists" }],
              next_step: "leak",
              else_step: "call",
            },
            { id: "leak", action: "end", response_template: "the secret exists" },
            { id: "call", action: "tool_api", tool_api_id: "dns" },
          ],
        },
      ],
    });
    const before = servers.api.requests.length;
    const result = await runProtocol({ document, protocol: "p", ports: servers.ports({ secrets }) });
    expect(result.path).toEqual(["probe", "call"]);
    expect(result.status).toBe("failed");
    expect(JSON.stringify(result)).not.toContain(TOKEN);
    expect(servers.api.requests.length).toBe(before);
  });
});
