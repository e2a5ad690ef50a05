/**
 * Evaluators (MOVA.md): after a completed run reaches the analysis, each evaluator of its
 * document version that covers its protocol judges it when the execution falls in the
 * evaluator's sample (decided by a hash of the execution id and the evaluator id, so the choice
 * is stable). The judge is an LLM asked for structured output `{ score, reason }`; the score is
 * stored as the execution's score from `evaluator:<id>` (a put: a judgement stored twice is
 * counted once). A judge that fails, or answers out of shape, leaves the run unjudged: it is
 * logged, never an error of the analysis.
 */
import { createHash } from "node:crypto";
import type { Logger } from "@aws-lambda-powertools/logger";
import * as z from "zod";
import { EVALUATOR_SOURCE_PREFIX } from "../analysis/scores.ts";
import { dayOf } from "../analysis/time.ts";
import type { ExecutionRecord } from "../core/execution-record.ts";
import type { Evaluator } from "../mova/schema.ts";
import type { LlmPort, ScoreStore } from "../ports.ts";
import type { DocumentLoader } from "./document-loader.ts";

export interface EvaluatorDeps {
  llm: LlmPort;
  loader: DocumentLoader;
  scores: ScoreStore;
  now: () => number;
  logger?: Logger | undefined;
  /** Per judgement; default 20 s. */
  timeoutMs?: number;
}

export interface JudgeFigures {
  judged: number;
  failed: number;
}

const MAX_CONTEXT_CHARS = 8_000;
const MAX_REASON_CHARS = 300;

const Judgement = z.object({ score: z.number().min(0).max(1), reason: z.string() });
const JUDGEMENT_SCHEMA = {
  type: "object",
  properties: {
    score: { type: "number", description: "0 (fails the rubric) to 1 (meets it fully)" },
    reason: { type: "string", description: "one line: why" },
  },
  required: ["score", "reason"],
  additionalProperties: false,
};

/** Whether the execution is in the evaluator's sample: stable for the same execution and evaluator. */
export function inSample(executionId: string, evaluator: Pick<Evaluator, "id" | "sample">): boolean {
  if (evaluator.sample >= 1) return true;
  if (evaluator.sample <= 0) return false;
  const hash = createHash("sha256").update(`${evaluator.id}\u0000${executionId}`).digest().readUInt32BE(0);
  return hash / 2 ** 32 < evaluator.sample;
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

/** What the judge sees: the prompts the run sent, the replies it got, and its output. */
function runContext(record: ExecutionRecord): string {
  const lines: string[] = [];
  for (const step of record.steps) {
    if (step.status !== "succeeded") continue;
    if (step.prompt !== undefined) lines.push(`prompt (${step.id}): ${step.prompt}`);
    if (step.action === "prompt" && step.output !== undefined)
      lines.push(
        `reply (${step.id}): ${typeof step.output === "string" ? step.output : JSON.stringify(step.output)}`,
      );
  }
  if (record.output !== undefined)
    lines.push(
      `output: ${typeof record.output === "string" ? record.output : JSON.stringify(record.output)}`,
    );
  return clip(lines.join("\n"), MAX_CONTEXT_CHARS);
}

/** Judges the completed runs among `records` (each once per evaluator, in its sample). */
export async function judgeExecutions(
  records: readonly ExecutionRecord[],
  deps: EvaluatorDeps,
): Promise<JudgeFigures> {
  const figures: JudgeFigures = { judged: 0, failed: 0 };
  // The offline model cannot judge: no document is read for nothing.
  if (deps.llm.offline) return figures;
  /** Each document version's evaluators, read once per call (a batch holds few versions). */
  const byVersion = new Map<string, Promise<Evaluator[]>>();
  for (const record of records) {
    if (record.status !== "completed") continue;
    let evaluators: Evaluator[];
    try {
      const key = `${record.tenant}\u0000${record.document}\u0000${record.documentVersion}`;
      let all = byVersion.get(key);
      if (!all) {
        all = deps.loader
          .loadVersion(record.tenant, record.document, record.documentVersion)
          .then((loaded) => loaded.parsed.evaluators ?? []);
        byVersion.set(key, all);
      }
      evaluators = (await all).filter(
        (e) =>
          (e.protocols === undefined || e.protocols.includes(record.protocol)) &&
          inSample(record.executionId, e),
      );
    } catch (error) {
      deps.logger?.warn("evaluators not read", { executionId: record.executionId, error: String(error) });
      continue;
    }
    for (const evaluator of evaluators) {
      try {
        const response = await deps.llm.complete({
          messages: [
            {
              role: "system",
              content:
                "You judge one run of an LLM flow against a rubric. Answer with a score between 0 and 1 and a one-line reason.",
            },
            { role: "user", content: `Rubric: ${evaluator.rubric}\n\nThe run:\n${runContext(record)}` },
          ],
          ...(evaluator.model !== undefined ? { model: evaluator.model } : {}),
          temperature: 0,
          timeoutMs: deps.timeoutMs ?? 20_000,
          responseFormat: { name: "judgement", schema: JUDGEMENT_SCHEMA, strict: true },
        });
        if (response.offline) throw new Error("no LLM is configured: the offline model cannot judge");
        const judgement = Judgement.parse(JSON.parse(response.text));
        await deps.scores.put(
          {
            tenant: record.tenant,
            document: record.document,
            protocol: record.protocol,
            version: record.documentVersion,
            day: dayOf(record.finishedAt),
          },
          {
            executionId: record.executionId,
            source: `${EVALUATOR_SOURCE_PREFIX}${evaluator.id}`,
            score: judgement.score,
            reason: clip(judgement.reason.replace(/\s+/g, " ").trim(), MAX_REASON_CHARS),
            at: new Date(deps.now()).toISOString(),
          },
        );
        figures.judged++;
      } catch (error) {
        // The run stays unjudged: a judge's failure is not the run's, nor the analysis's.
        figures.failed++;
        deps.logger?.warn("run not judged", {
          executionId: record.executionId,
          evaluator: evaluator.id,
          error: error instanceof Error ? error.message : String(error),
        });
      }
    }
  }
  return figures;
}
