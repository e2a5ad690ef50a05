/**
 * A protocol `name` of three tool steps (`one`, `two`, `three`, each POSTing to
 * `<toolsUrl>/<name>-a|b|c`) and an end that joins their `n`s: the run the crash and outage
 * tests interrupt in its middle step.
 */
export const threeToolDocument = (name: string, toolsUrl: string) => ({
  version: "2.2",
  protocols: [
    {
      name,
      steps: [
        { id: "one", action: "tool_api", tool_api_id: "a", output: "a" },
        { id: "two", action: "tool_api", tool_api_id: "b", output: "b" },
        { id: "three", action: "tool_api", tool_api_id: "c", output: "c" },
        { id: "end", action: "end", response_template: "{a.n}{b.n}{c.n}" },
      ],
    },
  ],
  tools: [
    { id: "a", endpoint: `${toolsUrl}/${name}-a`, method: "POST" },
    { id: "b", endpoint: `${toolsUrl}/${name}-b`, method: "POST" },
    { id: "c", endpoint: `${toolsUrl}/${name}-c`, method: "POST" },
  ],
});
