/**
 * Where `mova analyze` and `mova report` read execution records: a JSON Lines file (one
 * ExecutionRecord a line, streamed), or the history of a running `npm run dev` (DynamoDB at
 * AWS_ENDPOINT_URL_DYNAMODB, else the endpoint `.mova/endpoints.json` names), streamed a
 * page at a time from the by-day index. Either way the analysis holds aggregates, never the
 * history.
 */
import { createReadStream, existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import {
  type AnalysisReport,
  aggregateExecutions,
  analyzeExecutions,
  type DocumentLookup,
  reportFromAggregates,
} from "../analysis/analyze.ts";
import { loadConfig } from "../config.ts";
import { type ExecutionRecord, ExecutionRecordSchema } from "../core/execution-record.ts";
import type { MovaDocument } from "../mova/schema.ts";
import { validateDocument } from "../mova/validate.ts";
import { createDynamoDbClient } from "../adapters/aws-clients.ts";
import { createDynamoDocumentStore } from "../adapters/dynamodb/document-store.ts";
import { createDynamoHistoryStore } from "../adapters/dynamodb/history-store.ts";
import { CliError, type CliIo } from "./io.ts";
import { loadRunnableDocument } from "./load.ts";

export interface HistorySourceOptions {
  /** A JSON Lines file of execution records. */
  history?: string;
  document?: string;
  protocol?: string;
  /** Local stack only; "dev" by default. */
  tenant?: string;
  /** Days; a number > 0. */
  window?: string;
  /** The end of the window (ISO time); now by default. */
  until?: string;
  /** A MOVA document file for the document-aware recommendations. */
  doc?: string;
}

const DAY_MS = 86_400_000;
/** A file without --window is analysed whole: a window wider than any history. */
const WHOLE_FILE_DAYS = 365_000;

/** Streams a JSON Lines file; a line that is not an execution record is a usage error naming the line. */
export async function* readHistoryFile(file: string): AsyncGenerator<ExecutionRecord> {
  if (!existsSync(file)) throw new CliError("file_not_found", `${file}: file not found`);
  const lines = createInterface({ input: createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity });
  let number = 0;
  try {
    for await (const line of lines) {
      number += 1;
      if (line.trim() === "") continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (error) {
        throw new CliError(
          "invalid_history",
          `${file}:${number}: not JSON (${(error as Error).message}); each line must be one execution record`,
        );
      }
      const parsed = ExecutionRecordSchema.safeParse(value);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new CliError(
          "invalid_history",
          `${file}:${number}: not an execution record: ${issue?.path.join(".") || "(record)"}: ${issue?.message}`,
        );
      }
      yield parsed.data;
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EISDIR") throw new CliError("file_unreadable", `${file}: is a directory`);
    if (code === "EACCES") throw new CliError("file_unreadable", `${file}: permission denied`);
    throw error;
  } finally {
    lines.close();
  }
}

/** The environment that reaches the local stack's DynamoDB, or a usage error saying how to get one. */
function localStackEnv(io: CliIo, cwd = process.cwd()): Record<string, string> {
  const env = { ...(io.env as Record<string, string>) };
  if (!env.AWS_ENDPOINT_URL_DYNAMODB) {
    const file = path.join(cwd, ".mova", "endpoints.json");
    if (!existsSync(file)) {
      throw new CliError(
        "no_local_stack",
        "no history to read: give --history <file.jsonl>, or start `npm run dev` (it writes .mova/endpoints.json), or set AWS_ENDPOINT_URL_DYNAMODB",
      );
    }
    let endpoints: Record<string, unknown>;
    try {
      endpoints = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    } catch {
      throw new CliError("no_local_stack", `${file}: not JSON; restart \`npm run dev\``);
    }
    if (typeof endpoints.pid === "number" && !processAlive(endpoints.pid)) {
      throw new CliError(
        "no_local_stack",
        `${file} is stale (process ${endpoints.pid} is gone): start \`npm run dev\` again`,
      );
    }
    for (const [name, value] of Object.entries(endpoints)) {
      if (name !== "pid" && typeof value === "string" && env[name] === undefined) env[name] = value;
    }
  }
  // dynalite accepts any credentials; the SDK still wants some.
  env.AWS_ACCESS_KEY_ID ??= "local";
  env.AWS_SECRET_ACCESS_KEY ??= "local";
  return env;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Days from `from` to `to` (UTC dates, `YYYY-MM-DD`), newest first. */
function daysBetween(from: Date, to: Date): string[] {
  const days: string[] = [];
  const first = Date.UTC(from.getUTCFullYear(), from.getUTCMonth(), from.getUTCDate());
  for (
    let day = Date.UTC(to.getUTCFullYear(), to.getUTCMonth(), to.getUTCDate());
    day >= first;
    day -= DAY_MS
  ) {
    days.push(new Date(day).toISOString().slice(0, 10));
  }
  return days;
}

function parseWindow(window: string | undefined): number | undefined {
  if (window === undefined) return undefined;
  const days = Number(window);
  if (!(Number.isFinite(days) && days > 0)) {
    throw new CliError("invalid_window", `--window must be a number of days > 0, not "${window}"`);
  }
  return days;
}

function parseUntil(until: string | undefined): Date {
  if (until === undefined) return new Date();
  const ms = Date.parse(until);
  if (Number.isNaN(ms)) throw new CliError("invalid_until", `--until must be an ISO time, not "${until}"`);
  return new Date(ms);
}

/**
 * The analysis report of the chosen history. A file without --window covers every record in
 * it (the report's window is then the span of the records); the local stack covers the last
 * --window days (30 by default).
 */
export async function reportFromSource(io: CliIo, options: HistorySourceOptions): Promise<AnalysisReport> {
  const windowDays = parseWindow(options.window);
  const until = parseUntil(options.until);
  const docFile = options.doc ? (await loadRunnableDocument(options.doc)).document : undefined;
  const fromFile: DocumentLookup | undefined = docFile
    ? (name) => (options.document === undefined || name === options.document ? docFile : undefined)
    : undefined;

  if (options.history !== undefined) {
    const result = await aggregateExecutions(readHistoryFile(options.history), {
      document: options.document,
      protocol: options.protocol,
      timeRangeDays: windowDays ?? WHOLE_FILE_DAYS,
      now: until,
    });
    // Without --window the report's window is the records' own span, not a thousand years.
    const report = reportFromAggregates(result.aggregates, fromFile, {
      now: until,
      ...(windowDays !== undefined ? { window: result.window } : {}),
    });
    return { ...report, records: result.records };
  }

  if (options.document === undefined) {
    throw new CliError("usage", "give --history <file.jsonl>, or --document <name> to read the local stack");
  }
  const env = localStackEnv(io);
  const config = loadConfig(env);
  const client = createDynamoDbClient(config, { env, maxAttempts: 1, requestTimeoutMs: 10_000 });
  const history = createDynamoHistoryStore({
    client,
    table: config.EXECUTIONS_TABLE,
    retentionDays: config.HISTORY_RETENTION_DAYS,
    outputMaxBytes: config.HISTORY_OUTPUT_MAX_BYTES,
  });
  const tenant = options.tenant ?? "dev";
  const days = windowDays ?? config.ANALYSIS_WINDOW_DAYS;
  let stored: MovaDocument | undefined;
  try {
    const documents = createDynamoDocumentStore({ client, table: config.DOCUMENTS_TABLE });
    const found = await documents.get(tenant, options.document);
    const validation = found ? validateDocument(found.source) : undefined;
    stored = validation?.valid ? validation.document : undefined;
  } catch (error) {
    throw unreachable(env, error);
  }
  const document = docFile ?? stored;

  async function* records(): AsyncGenerator<ExecutionRecord> {
    // The by-day index covers every protocol of the document, also those it no longer declares.
    for (const day of daysBetween(new Date(until.getTime() - days * DAY_MS), until)) {
      let cursor: string | undefined;
      do {
        const page = await history.queryByDay(day, { limit: 100, ...(cursor ? { cursor } : {}) });
        yield* page.items;
        cursor = page.cursor;
      } while (cursor);
    }
  }

  try {
    return await analyzeExecutions(records(), {
      tenant,
      document: options.document,
      protocol: options.protocol,
      timeRangeDays: days,
      now: until,
      documents: document ? (name) => (name === options.document ? document : undefined) : undefined,
    });
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw unreachable(env, error);
  }
}

function unreachable(env: Record<string, string>, error: unknown): CliError {
  return new CliError(
    "history_unavailable",
    `cannot read the history at ${env.AWS_ENDPOINT_URL_DYNAMODB}: ${(error as Error)?.message ?? String(error)} (is \`npm run dev\` running?)`,
  );
}
