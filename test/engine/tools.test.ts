import { describe, expect, it } from "vitest";
import { runProtocol } from "../../lib/engine/engine.ts";
import { isMovaError } from "../../lib/errors.ts";
import { buildToolRequest, renderEndpoint } from "../../lib/engine/tool-request.ts";
import { createResolver } from "../../lib/engine/variables.ts";
import { Tool } from "../../lib/mova/schema.ts";
import { documentOf, useServers } from "./support.ts";

const servers = useServers((started) => {
  started.api.route("GET", "/items", (request) => ({ body: { got: request.query } }));
  started.api.route("POST", "/items", (request) => ({ status: 201, body: { created: request.json } }));
  started.api.route("DELETE", "/items/a%20b%2Fc", { body: "deleted" });
  started.api.route("GET", "/text", { body: "plain text answer" });
});

const resolverOf = (variables: Record<string, unknown>) => createResolver({ variables, now: () => 0 });

describe("tool_api steps", () => {
  it("sends GET parameters as a query string of strings and stores the parsed body", async () => {
    const document = documentOf({
      tools: [
        {
          id: "list",
          endpoint: `${servers.api.url}/items`,
          method: "GET",
          headers: { "X-Trace": "trace-{trace.id}" },
          parameters: { limit: "{limit}", filter: { tag: "{tag}" }, fixed: true },
        },
      ],
      protocols: [{ name: "p", steps: [{ id: "list", action: "tool_api", tool_api_id: "list" }] }],
    });
    const result = await runProtocol({
      document,
      protocol: "p",
      variables: { limit: 5, tag: "new", trace: { id: "t1" } },
      ports: servers.ports(),
    });
    expect(result.status).toBe("completed");
    expect(result.variables.list_result).toEqual({
      got: { limit: "5", filter: '{"tag":"new"}', fixed: "true" },
    });
    expect(result.steps[0]).toMatchObject({ toolId: "list", httpStatus: 200, outputVariable: "list_result" });
    expect(servers.api.requests[0]?.headers["x-trace"]).toBe("trace-t1");
  });

  it("sends POST parameters as a JSON body keeping the types of whole placeholders", async () => {
    const document = documentOf({
      tools: [
        {
          id: "create",
          endpoint: `${servers.api.url}/items`,
          method: "POST",
          parameters: { count: "{count}", owner: "{user}", label: "n={count}", missing: "{nope}" },
        },
      ],
      protocols: [
        { name: "p", steps: [{ id: "make", action: "tool_api", tool_api_id: "create", output: "made" }] },
      ],
    });
    const result = await runProtocol({
      document,
      protocol: "p",
      variables: { count: 3, user: { id: 7, roles: ["a"] } },
      ports: servers.ports(),
    });
    expect(result.variables.made).toEqual({
      created: { count: 3, owner: { id: 7, roles: ["a"] }, label: "n=3", missing: "{nope}" },
    });
    expect(result.steps[0]?.httpStatus).toBe(201);
    expect(result.unresolved).toEqual(["nope"]);
  });

  it("URL-encodes values placed in the endpoint's path and stores text bodies as text", async () => {
    const document = documentOf({
      tools: [
        { id: "remove", endpoint: "{base}/items/{name}", method: "DELETE" },
        { id: "text", endpoint: `${servers.api.url}/text` },
      ],
      protocols: [
        {
          name: "p",
          steps: [
            { id: "remove", action: "tool_api", tool_api_id: "remove" },
            { id: "text", action: "tool_api", tool_api_id: "text" },
          ],
        },
      ],
    });
    const result = await runProtocol({
      document,
      protocol: "p",
      variables: { base: servers.api.url, name: "a b/c" },
      ports: servers.ports(),
    });
    expect(result.status).toBe("completed");
    expect(result.variables.remove_result).toBe("deleted");
    expect(result.output).toBe("plain text answer");
  });

  it("refuses a header whose rendered value holds a line break, sending nothing", async () => {
    const document = documentOf({
      tools: [{ id: "list", endpoint: `${servers.api.url}/items`, headers: { "X-Name": "{name}" } }],
      protocols: [
        {
          name: "p",
          steps: [
            { id: "call", action: "tool_api", tool_api_id: "list", retry: { attempts: 3, backoff_ms: 1 } },
          ],
        },
      ],
    });
    const result = await runProtocol({
      document,
      protocol: "p",
      variables: { name: "evil\r\nX-Injected: 1" },
      ports: servers.ports(),
    });
    expect(result.status).toBe("failed");
    expect(result.error?.code).toBe("invalid_header");
    expect(result.steps[0]).toMatchObject({
      status: "failed",
      attempts: 0,
      error: { code: "invalid_header" },
    });
    expect(servers.api.requests).toHaveLength(0);
  });
});

describe("buildToolRequest", () => {
  it("renders each authentication type into its header", () => {
    const resolve = resolverOf({ t: "tok", k: "key", u: "user", p: "pw" });
    const tool = (authentication: unknown) =>
      Tool.parse({
        id: "t",
        endpoint: "https://api.example.com/x",
        headers: { authorization: "old" },
        authentication,
      });
    expect(buildToolRequest(tool({ type: "none" }), resolve).request.headers).toEqual({
      authorization: "old",
    });
    expect(buildToolRequest(tool({ type: "bearer", token: "{t}" }), resolve).request.headers).toEqual({
      Authorization: "Bearer tok",
    });
    expect(
      buildToolRequest(tool({ type: "api_key", header: "X-Key", key: "{k}" }), resolve).request.headers,
    ).toEqual({
      authorization: "old",
      "X-Key": "key",
    });
    const basic = buildToolRequest(tool({ type: "basic", username: "{u}", password: "{p}" }), resolve);
    expect(basic.request.headers).toEqual({
      Authorization: `Basic ${Buffer.from("user:pw").toString("base64")}`,
    });
    expect(basic.derivedSecrets).toEqual([]);
    const secretBasic = buildToolRequest(
      tool({ type: "basic", username: "u", password: "{secrets.P}" }),
      resolve,
    );
    expect(secretBasic.derivedSecrets).toHaveLength(1);
  });

  it("reports the method, endpoint and header problems with their codes", () => {
    const resolve = resolverOf({ bad: "a\nb" });
    const attempt = (tool: unknown) => {
      try {
        buildToolRequest(Tool.parse(tool), resolve);
        return "built";
      } catch (error) {
        return isMovaError(error) ? error.code : "other";
      }
    };
    expect(attempt({ id: "t", endpoint: "https://x.example/", method: "FETCH" })).toBe("invalid_method");
    expect(attempt({ id: "t", endpoint: "not a url" })).toBe("invalid_endpoint");
    expect(attempt({ id: "t", endpoint: "https://x.example/", headers: { "Bad Name": "v" } })).toBe(
      "invalid_header",
    );
    expect(
      attempt({
        id: "t",
        endpoint: "https://x.example/",
        authentication: { type: "bearer", token: "{bad}" },
      }),
    ).toBe("invalid_header");
    expect(attempt({ id: "t", endpoint: "https://x.example/", method: "get" })).toBe("built");
  });

  it("encodes only what lies past the host", () => {
    const resolve = resolverOf({ host: "https://api.example.com", seg: "a/b c", q: "x&y" });
    expect(renderEndpoint("{host}/v1/{seg}?q={q}", resolve)).toBe(
      "https://api.example.com/v1/a%2Fb%20c?q=x%26y",
    );
  });
});
