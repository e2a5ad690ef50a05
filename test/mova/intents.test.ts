import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createOfflineLlm } from "../../lib/adapters/llm/offline.ts";
import { createOpenAiLlm } from "../../lib/adapters/llm/openai.ts";
import { intentFromAnswer, matchIntent, patternMatches } from "../../lib/mova/intents.ts";
import { recognizeIntent } from "../../lib/engine/intent-recognition.ts";
import { MovaDocument } from "../../lib/mova/schema.ts";
import { completion, type FakeOpenAi, startFakeOpenAi } from "../support/fake-openai.ts";

const document = MovaDocument.parse({
  version: "2.2",
  intents: [
    { name: "greeting", patterns: ["привіт", "hello", "hi"], priority: 1 },
    {
      name: "weather",
      description: "Questions about the weather",
      patterns: ["погода", "weather", "температура"],
      priority: 2,
    },
    { name: "weather_forecast", patterns: ["weather forecast", "прогноз погоди"], priority: 2 },
    { name: "help", patterns: ["help", "допомога"], priority: 2 },
    { name: "help_too", patterns: ["help"], priority: 2 },
    { name: "cpp", patterns: ["c++"], priority: 0 },
  ],
});

describe("patternMatches", () => {
  it("matches whole words in Cyrillic and Latin, in any case", () => {
    expect(patternMatches("погода", "Яка погода?")).toBe(true);
    expect(patternMatches("погода", "ЯКА ПОГОДА СЬОГОДНІ")).toBe(true);
    expect(patternMatches("Weather", "the WEATHER, please")).toBe(true);
  });
  it("does not match inside a longer word", () => {
    expect(patternMatches("погода", "непогода")).toBe(false);
    expect(patternMatches("погода", "погодатест")).toBe(false);
    expect(patternMatches("hi", "this")).toBe(false);
    expect(patternMatches("hi", "hi5")).toBe(false);
    expect(patternMatches("привіт", "привітання")).toBe(false);
  });
  it("treats runs of white space alike and punctuation as a boundary", () => {
    expect(patternMatches("прогноз погоди", "дай прогноз   погоди!")).toBe(true);
    expect(patternMatches("прогноз погоди", "прогноз\nпогоди")).toBe(true);
    expect(patternMatches("hello", "«hello»")).toBe(true);
  });
  it("takes regular-expression characters literally", () => {
    expect(patternMatches("c++", "I write c++ daily")).toBe(true);
    expect(patternMatches("c++", "I write cpp")).toBe(false);
    expect(patternMatches("a.b", "axb")).toBe(false);
  });
  it("compares composed and decomposed letters alike", () => {
    // "й" written as "и" plus a combining breve.
    expect(patternMatches("йогурт", "хочу \u0438\u0306огурт")).toBe(true);
    // "e" plus a combining acute is "é", another letter.
    expect(patternMatches("cafe", "cafe\u0301 au lait")).toBe(false);
  });
});

describe("matchIntent", () => {
  it("finds the intent of a Ukrainian and an English message", () => {
    expect(matchIntent(document, "Привіт! Яка погода у Львові?")).toMatchObject({
      intent: { name: "weather" },
      pattern: "погода",
    });
    expect(matchIntent(document, "hello there")).toMatchObject({
      intent: { name: "greeting" },
      pattern: "hello",
    });
  });
  it("lets the highest priority win", () => {
    expect(matchIntent(document, "hi, weather?")?.intent.name).toBe("weather");
  });
  it("breaks priority ties by the longest matching pattern", () => {
    expect(matchIntent(document, "weather forecast for Kyiv")).toMatchObject({
      intent: { name: "weather_forecast" },
      pattern: "weather forecast",
    });
  });
  it("breaks the remaining ties by document order", () => {
    expect(matchIntent(document, "help!")?.intent.name).toBe("help");
    const reversed = { ...document, intents: [...document.intents].reverse() };
    expect(matchIntent(reversed, "help!")?.intent.name).toBe("help_too");
  });
  it("returns nothing when no pattern matches", () => {
    expect(matchIntent(document, "непогода")).toBeUndefined();
    expect(matchIntent(document, "")).toBeUndefined();
  });
});

describe("intentFromAnswer", () => {
  it("accepts a declared name with quotes, punctuation or another case", () => {
    expect(intentFromAnswer(document, "weather")?.name).toBe("weather");
    expect(intentFromAnswer(document, '  "Weather".\n')?.name).toBe("weather");
    expect(intentFromAnswer(document, "`help_too`")?.name).toBe("help_too");
  });
  it("refuses anything else", () => {
    expect(intentFromAnswer(document, "none")).toBeUndefined();
    expect(intentFromAnswer(document, "weather report")).toBeUndefined();
    expect(intentFromAnswer(document, "The intent is weather")).toBeUndefined();
    expect(intentFromAnswer(document, "")).toBeUndefined();
  });
});

describe("recognizeIntent", () => {
  let server: FakeOpenAi;
  beforeAll(async () => {
    server = await startFakeOpenAi();
  });
  afterAll(async () => {
    await server.close();
  });
  const llm = () =>
    createOpenAiLlm({
      apiKey: "test-key",
      baseURL: server.baseURL,
      model: "classifier",
      maxRetries: 0,
      timeoutMs: 5_000,
    });

  it("uses patterns first, without asking the LLM", async () => {
    const before = server.completions().length;
    const result = await recognizeIntent(document, "яка погода?", llm());
    expect(result).toMatchObject({ via: "pattern", pattern: "погода", intent: { name: "weather" } });
    expect(server.completions().length).toBe(before);
  });

  it("asks the LLM to choose among the declared intents when no pattern matches", async () => {
    server.queue(completion("Weather"));
    const result = await recognizeIntent(document, "Чи буде завтра дощ?", llm());
    expect(result.via).toBe("llm");
    expect(result.intent?.name).toBe("weather");
    const request = server.completions().at(-1)!;
    expect(request.model).toBe("classifier");
    const system = request.messages.find((m) => m.role === "system")!.content;
    for (const intent of document.intents) expect(system).toContain(`- ${intent.name}:`);
    expect(system).toContain("Questions about the weather");
    expect(system).toContain("none");
    expect(request.messages.at(-1)).toEqual({ role: "user", content: "Чи буде завтра дощ?" });
  });

  it("accepts only declared intent names from the LLM", async () => {
    server.queue(completion("book_flight"));
    expect(await recognizeIntent(document, "book me a flight", llm())).toEqual({ via: "none" });
    server.queue(completion("none"));
    expect(await recognizeIntent(document, "blah", llm())).toEqual({ via: "none" });
  });

  it("gives no intent when the LLM fails", async () => {
    server.queue({ status: 500, body: { error: { message: "down" } } });
    expect(await recognizeIntent(document, "something else", llm())).toEqual({ via: "none" });
  });

  it("does not ask an offline model, or when there is no LLM", async () => {
    const before = server.completions().length;
    expect(await recognizeIntent(document, "something else", createOfflineLlm())).toEqual({ via: "none" });
    expect(await recognizeIntent(document, "something else")).toEqual({ via: "none" });
    expect(server.completions().length).toBe(before);
  });
});
