/**
 * The loopback servers of the concurrency benchmark, in a process of their own so that
 * their work runs on the other core instead of competing with the engine's event loop:
 * the fake OpenAI server answering after a fixed delay and a tool server (the test HTTP
 * double) answering after another. It sends their URLs to the parent over IPC and closes
 * them when told to.
 */
import { startFakeOpenAi } from "../../test/support/fake-openai.ts";
import { startHttpDouble } from "../../test/support/http-double.ts";

const llmDelayMs = Number(process.env.BENCH_LLM_DELAY_MS ?? "100");
const toolDelayMs = Number(process.env.BENCH_TOOL_DELAY_MS ?? "50");

const openai = await startFakeOpenAi();
openai.setDelay(llmDelayMs);
// A short fixed answer: the benchmark measures waiting, not payload size.
openai.answerWith(() => "ok");
const tool = await startHttpDouble();
tool.route("GET", "/lookup", (request) => ({
  status: 200,
  body: { answer: `found ${request.query.q ?? ""}` },
  delayMs: toolDelayMs,
}));

// The doubles keep every request for inspection; a benchmark sends thousands, so drop them.
const trim = setInterval(() => {
  openai.double.requests.length = 0;
  tool.requests.length = 0;
}, 1000);

process.on("message", async (message) => {
  if (message === "stats") {
    const cpu = process.cpuUsage();
    process.send?.({
      llmConnections: openai.double.connections,
      toolConnections: tool.connections,
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    });
    return;
  }
  if (message === "close") {
    clearInterval(trim);
    await Promise.all([openai.close(), tool.close()]);
    process.disconnect?.();
    process.exit(0);
  }
});
process.on("disconnect", () => process.exit(0));
process.send?.({ openaiBaseURL: openai.baseURL, toolURL: tool.url });
