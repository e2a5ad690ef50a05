/**
 * Writes examples/history-sample.jsonl: a deterministic execution history (the same bytes on
 * every run) of the examples' protocols, for `mova analyze` / `mova report` and their docs
 * and tests. Each record has the shape the engine and the history store produce
 * (ExecutionRecordSchema); the behaviour is simulated with a seeded generator:
 * - weather / weather_protocol: the weather API fails now and then with 503 or a timeout
 *   (retried once), the hot-weather branch is taken above 25 °C;
 * - accounts / account_overview: users and orders fetched in parallel; the orders API fails
 *   often (HTTP 500), so the protocol's success rate is low;
 * - support / support_form: a form over several messages; a mistyped email is re-asked, and
 *   the summary prompt fails more often for refund requests (a prompt term with a lift).
 *
 *   npx tsx scripts/sample-history.ts [out.jsonl] [--count 300]
 */
import { writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { type ExecutionRecord, ExecutionRecordSchema } from "../lib/core/execution-record.ts";
import { seededRandom } from "../test/support/seeded-random.ts";

type StepRecord = ExecutionRecord["steps"][number];

const END = Date.parse("2026-11-20T18:00:00.000Z");
const DAYS = 14;

export function generateSampleHistory(count = 300, seed = 20261120): ExecutionRecord[] {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  /** A latency around `median` ms with a long right tail (log-normal-ish). */
  const latency = (median: number, spread = 0.5) =>
    Math.max(1, Math.round(median * Math.exp(spread * (random() + random() + random() - 1.5) * 1.6)));

  const records: ExecutionRecord[] = [];
  for (let index = 0; index < count; index++) {
    const started = END - Math.floor(random() * DAYS * 86_400_000);
    let clock = started;
    const steps: StepRecord[] = [];
    const stepPath: string[] = [];
    const step = (record: Omit<StepRecord, "startedAt" | "attempts"> & { attempts?: number }) => {
      const full: StepRecord = { attempts: 1, ...record, startedAt: new Date(clock).toISOString() };
      steps.push(full);
      stepPath.push(full.id);
      clock += full.durationMs;
      return full;
    };
    const kind = index % 10 < 5 ? "weather" : index % 10 < 8 ? "support" : "accounts";
    let error: ExecutionRecord["error"];
    let protocol = "";
    let document = "";
    let intent: string | undefined;

    if (kind === "weather") {
      document = "weather";
      protocol = "weather_protocol";
      intent = random() < 0.7 ? "weather_inquiry" : undefined;
      const city = pick(["Kyiv", "Lviv", "Odesa", "Kharkiv", "Berlin", "Lisbon", "Madrid"]);
      const firstFails = random() < 0.14;
      const secondFails = firstFails && random() < 0.45;
      const failure = pick([
        { code: "tool_http_status", message: "HTTP 503 from weather_service", httpStatus: 503 },
        { code: "tool_timeout", message: "weather_service did not answer within 5000 ms" },
      ]);
      const temp = Math.round(5 + random() * 30);
      const apiMs = latency(320) + (firstFails ? 100 + latency(320) : 0);
      if (secondFails) {
        step({
          id: "call_weather_api",
          action: "tool_api",
          status: "failed",
          attempts: 2,
          durationMs: apiMs,
          toolId: "weather_service",
          error: { code: failure.code, message: failure.message },
          ...(failure.httpStatus ? { httpStatus: failure.httpStatus } : {}),
        });
        error = { code: failure.code, message: `step "call_weather_api" failed: ${failure.message}` };
      } else {
        step({
          id: "call_weather_api",
          action: "tool_api",
          status: "succeeded",
          attempts: firstFails ? 2 : 1,
          durationMs: apiMs,
          toolId: "weather_service",
          httpStatus: 200,
          output: { location: { name: city }, current: { temp_c: temp } },
          outputVariable: "weather_data",
        });
        const prompt = `Коротко опиши погоду для користувача / Briefly describe the weather for the user: ${city}, ${temp}°C, ${pick(["Sunny", "Cloudy", "Light rain", "Clear"])}.`;
        const llmFails = random() < 0.03;
        step({
          id: "display_weather",
          action: "prompt",
          status: llmFails ? "failed" : "succeeded",
          durationMs: llmFails ? 30_000 : latency(900),
          prompt,
          model: "gpt-4o-mini",
          ...(llmFails
            ? { error: { code: "llm_timeout", message: "the model did not answer within 30000 ms" } }
            : {
                output: `${city}: ${temp}°C.`,
                outputVariable: "prompt_response_display_weather",
                usage: { promptTokens: 60, completionTokens: 24, totalTokens: 84 },
              }),
        });
        if (llmFails) {
          error = { code: "llm_timeout", message: 'step "display_weather" failed: the model did not answer' };
        } else {
          const hot = temp > 25;
          step({
            id: "check_heat",
            action: "condition",
            status: "succeeded",
            durationMs: 0,
            branch: hot ? "then" : "else",
          });
          if (hot) {
            step({
              id: "heat_advice",
              action: "prompt",
              status: "succeeded",
              durationMs: latency(1400),
              prompt: `У місті ${city} спекотно (${temp}°C). Порадь, як берегтися від спеки. / It is hot in ${city}: give advice for hot weather.`,
              model: "gpt-4o-mini",
              output: "Drink water and stay in the shade.",
              outputVariable: "prompt_response_heat_advice",
            });
          }
          step({ id: "end", action: "end", status: "succeeded", durationMs: 0 });
        }
      }
    } else if (kind === "accounts") {
      document = "accounts";
      protocol = "account_overview";
      intent = "account_lookup";
      const userMs = latency(120);
      const ordersFails = random() < 0.32;
      const ordersMs = ordersFails ? latency(260) + 100 + latency(260) : latency(260);
      const parallelStart = clock;
      step({
        id: "fetch_all",
        action: "parallel",
        status: ordersFails ? "failed" : "succeeded",
        durationMs: Math.max(userMs, ordersMs),
        branches: ["get_user", "get_orders"],
        ...(ordersFails ? { error: { code: "tool_http_status", message: "HTTP 500 from orders_api" } } : {}),
      });
      clock = parallelStart;
      steps.push({
        id: "get_user",
        action: "tool_api",
        status: "succeeded",
        attempts: 1,
        startedAt: new Date(clock).toISOString(),
        durationMs: userMs,
        toolId: "users_api",
        httpStatus: 200,
        outputVariable: "user",
      });
      steps.push({
        id: "get_orders",
        action: "tool_api",
        status: ordersFails ? "failed" : "succeeded",
        attempts: ordersFails ? 2 : 1,
        startedAt: new Date(clock).toISOString(),
        durationMs: ordersMs,
        toolId: "orders_api",
        httpStatus: ordersFails ? 500 : 200,
        ...(ordersFails
          ? { error: { code: "tool_http_status", message: "HTTP 500 from orders_api" } }
          : { outputVariable: "orders" }),
      });
      clock = parallelStart + Math.max(userMs, ordersMs);
      if (ordersFails) {
        error = { code: "tool_http_status", message: 'step "fetch_all" failed: HTTP 500 from orders_api' };
      } else {
        step({ id: "overview", action: "end", status: "succeeded", durationMs: 0 });
      }
    } else {
      document = "support";
      protocol = "support_form";
      intent = "support";
      const name = pick(["Ada", "Олена", "Grace", "Тарас", "Linus"]);
      const input = (id: string, prompt: string) =>
        step({ id, action: "input", status: "succeeded", durationMs: latency(9000, 0.8), prompt });
      const check = (id: string, ok: boolean) =>
        step({ id, action: "condition", status: "succeeded", durationMs: 0, branch: ok ? "then" : "else" });
      input("ask_name", "What is your name?");
      check("check_name", true);
      input("ask_email", `Thanks, ${name}. What is your email address?`);
      if (random() < 0.25) {
        check("check_email", false);
        input("reask_email", '"ada-at-example" does not look like an email address. Please enter it again:');
      }
      check("check_email", true);
      input("ask_message", "How can we help?");
      check("check_message", true);
      const topic = pick([
        "my invoice is wrong",
        "please refund my order",
        "the app crashes on login",
        "change my delivery address",
        "refund the double charge",
        "where is my parcel",
      ]);
      const refund = topic.includes("refund");
      const fails = random() < (refund ? 0.35 : 0.04);
      step({
        id: "summarise",
        action: "prompt",
        status: fails ? "failed" : "succeeded",
        durationMs: fails ? latency(2500) : latency(1500),
        prompt: `Summarise this support request from ${name} <${name.toLowerCase()}@example.com>: ${topic}`,
        model: "gpt-4o-mini",
        ...(fails
          ? { error: { code: "llm_bad_request", message: "the model refused the request (content policy)" } }
          : { output: `Customer: ${topic}.`, outputVariable: "summary" }),
      });
      if (fails) {
        error = {
          code: "llm_bad_request",
          message: 'step "summarise" failed: the model refused the request',
        };
      } else {
        step({ id: "done", action: "end", status: "succeeded", durationMs: 0 });
      }
    }

    const status: ExecutionRecord["status"] = error ? "failed" : "completed";
    const record: ExecutionRecord = {
      tenant: "dev",
      executionId: `ex_sample_${String(index).padStart(4, "0")}`,
      document,
      documentVersion: 1,
      protocol,
      ...(kind === "support" ? { sessionId: `s_sample_${index}` } : {}),
      trigger: kind === "support" ? "session" : index % 7 === 0 ? "event" : "api",
      ...(intent ? { intent } : {}),
      status,
      startedAt: new Date(started).toISOString(),
      finishedAt: new Date(clock).toISOString(),
      durationMs: clock - started,
      path: stepPath,
      steps,
      unresolved: [],
      offline: false,
      ...(error ? { error } : {}),
      analysis: "published",
    };
    records.push(ExecutionRecordSchema.parse(record));
  }
  return records.sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : 0));
}

const invokedDirectly = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  const args = process.argv.slice(2);
  const countAt = args.indexOf("--count");
  const count = countAt >= 0 ? Number(args[countAt + 1]) : 300;
  const out =
    args.find((arg, i) => !arg.startsWith("--") && args[i - 1] !== "--count") ??
    path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "examples", "history-sample.jsonl");
  const records = generateSampleHistory(count);
  writeFileSync(out, `${records.map((r) => JSON.stringify(r)).join("\n")}\n`);
  process.stdout.write(`wrote ${records.length} execution records to ${out}\n`);
}
