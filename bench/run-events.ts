/**
 * The price of live run events: the loop of the durability benchmark (1001 steps: a `tool_api`
 * step on an instant port, a `condition` that loops back, `end`), advanced by advanceRun with a
 * Redis checkpoint per step (a) alone and (b) with the run's events published as a run's legs
 * publish them (lib/services/run-events.ts: `step_started` and `step_finished` per step, the
 * `status` events, each an XADD with MAXLEN and PEXPIRE in one script, sent without the run
 * waiting and flushed at the end), all on the local stack (the real @upstash/redis client,
 * the Upstash bridge, a real Redis). Also: one append's latency, the bytes an event takes, and
 * how long after an event's append a follower (lib/services/follow-run.ts, polling as
 * GET /executions/{id}/events does) has it.
 */
import { systemClock } from "../lib/adapters/clock.ts";
import { createRedisRunEventStream } from "../lib/adapters/redis/run-event-stream.ts";
import type { ExecutionRecord } from "../lib/core/execution-record.ts";
import type { HistoryStore, RunCheckpointStore, RunEventStream } from "../lib/ports.ts";
import { advanceRun } from "../lib/engine/engine.ts";
import { newRunState } from "../lib/engine/run-state.ts";
import type { MovaDocument } from "../lib/mova/schema.ts";
import { instantPorts, loopDocument } from "./support/counter-loop.ts";
import { serialExecutionIds, startRedisBenchStack } from "./support/redis-stack.ts";
import { createRunEventSink } from "../lib/services/run-events.ts";
import { followRun } from "../lib/services/follow-run.ts";
import { median, percentile, round } from "./lib/report.ts";
import type { Benchmark, BenchContext } from "./lib/types.ts";

const ROUNDS = 500;
const POLL_MS = 500;

export interface RunEventsResult {
  steps: number;
  runs: number;
  msPerStepCheckpoint: number;
  msPerStepCheckpointAndEvents: number;
  /** What the events add per step (median of the paired runs). */
  addedMsPerStep: number;
  eventsPerStep: number;
  /** Appends (Redis round trips) per step: fewer than events when they went together. */
  appendsPerStep: number;
  appendP50Ms: number;
  appendP99Ms: number;
  /** Bytes of an event's JSON, mean. */
  eventBytesMean: number;
  /** From an event's append to a follower having it (pollMs 500). */
  followLagP50Ms: number;
  followLagP99Ms: number;
}

/** Times each append and notes when it was made (epoch ms), by the id it got. */
function timedStream(stream: RunEventStream) {
  const appends: number[] = [];
  const batchSizes: number[] = [];
  const appendedAt = new Map<string, number>();
  const bytes: number[] = [];
  const timed: RunEventStream = {
    async append(tenant, executionId, events) {
      const started = performance.now();
      const ids = await stream.append(tenant, executionId, events);
      appends.push(performance.now() - started);
      batchSizes.push(events.length);
      const now = Date.now();
      for (const id of ids) appendedAt.set(id, now);
      for (const event of events) bytes.push(Buffer.byteLength(JSON.stringify(event)));
      return ids;
    },
    read: stream.read,
  };
  return { timed, appends, batchSizes, appendedAt, bytes };
}

async function runOnce(
  document: MovaDocument,
  store: RunCheckpointStore,
  events: RunEventStream | undefined,
  tenant: string,
  executionId: string,
): Promise<{ ms: number; steps: number }> {
  const state = newRunState({ document, protocol: "loop", variables: { counter: { n: 0 } } });
  let version = (await store.create(tenant, executionId, state)).version;
  const sink = createRunEventSink({ stream: events, tenant, executionId });
  const started = performance.now();
  sink.status("running");
  const result = await advanceRun({
    document,
    state,
    ports: instantPorts,
    executionId,
    keepSteps: false,
    checkpoint: async (next, records) => {
      version = await store.write(tenant, executionId, version, next);
      sink.stepsFinished(records);
    },
    onStepStart: (step) => sink.stepStarted(step),
  });
  sink.status(result.status);
  await sink.flush();
  const ms = performance.now() - started;
  if (result.status !== "completed" || sink.failures > 0)
    throw new Error(`the run went wrong: ${result.status}, ${sink.failures} failed appends`);
  return { ms, steps: result.state?.stepCount ?? 0 };
}

export const runEventsBenchmark: Benchmark<RunEventsResult> = {
  name: "runEvents",
  title: "Live run events: publishing each step's events to the run's Redis stream, and following them",
  async run(context: BenchContext) {
    const { stack, redis, checkpoints: store } = await startRedisBenchStack();
    try {
      const prefix = `mova:bench-events:${Date.now().toString(36)}:`;
      const stream = createRedisRunEventStream({ redis, maxLen: 5000, ttlSeconds: 600, keyPrefix: prefix });
      const { timed, appends, batchSizes, appendedAt, bytes } = timedStream(stream);
      const document = loopDocument(ROUNDS);
      const runs = context.quick ? 1 : 3;
      const tenant = `bench-events-${Date.now().toString(36)}`;
      const id = serialExecutionIds();
      // Warm-up: the JIT and the client's connection to the bridge.
      await runOnce(document, store, undefined, tenant, id());
      await runOnce(document, store, stream, tenant, id());

      const bare: number[] = [];
      const withEvents: number[] = [];
      const added: number[] = [];
      let steps = 0;
      for (let run = 0; run < runs; run += 1) {
        const a = await runOnce(document, store, undefined, tenant, id());
        const b = await runOnce(document, store, timed, tenant, id());
        steps = a.steps;
        bare.push(a.ms / a.steps);
        withEvents.push(b.ms / b.steps);
        added.push(b.ms / b.steps - a.ms / a.steps);
        context.log(
          `runEvents run ${run + 1}: ${round(a.ms / a.steps, 3)} → ${round(b.ms / b.steps, 3)} ms/step`,
        );
      }
      const eventsPerStep = batchSizes.reduce((sum, n) => sum + n, 0) / runs / steps;
      const appendsPerStep = appends.length / runs / steps;

      // A follower of a run in progress: how long after its append each event reaches it.
      const followedId = id();
      const running: ExecutionRecord = {
        status: "running",
        finishedAt: new Date().toISOString(),
      } as ExecutionRecord;
      const history: HistoryStore = { getExecution: async () => running } as unknown as HistoryStore;
      const lags: number[] = [];
      const follower = (async () => {
        for await (const item of followRun(
          { tenant, executionId: followedId, record: running },
          { history, events: stream, clock: systemClock },
          { pollMs: POLL_MS, heartbeatMs: 60_000, maxConnectionMs: 120_000 },
        )) {
          if (item.kind === "event" && item.id) {
            const at = appendedAt.get(item.id);
            if (at !== undefined) lags.push(Date.now() - at);
          }
        }
      })();
      await runOnce(document, store, timed, tenant, followedId);
      await follower;

      const result: RunEventsResult = {
        steps,
        runs,
        msPerStepCheckpoint: round(median(bare), 3),
        msPerStepCheckpointAndEvents: round(median(withEvents), 3),
        addedMsPerStep: round(median(added), 3),
        eventsPerStep: round(eventsPerStep, 2),
        appendsPerStep: round(appendsPerStep, 2),
        appendP50Ms: round(percentile(appends, 50), 3),
        appendP99Ms: round(percentile(appends, 99), 3),
        eventBytesMean: Math.round(bytes.reduce((sum, n) => sum + n, 0) / bytes.length),
        followLagP50Ms: round(percentile(lags, 50), 1),
        followLagP99Ms: round(percentile(lags, 99), 1),
      };
      return {
        result,
        table: {
          headers: ["figure", "value"],
          rows: [
            ["ms/step, checkpoint only", result.msPerStepCheckpoint],
            ["ms/step, checkpoint + events", result.msPerStepCheckpointAndEvents],
            ["added ms/step (paired)", result.addedMsPerStep],
            ["events per step", result.eventsPerStep],
            ["appends (round trips) per step", result.appendsPerStep],
            ["append p50 ms", result.appendP50Ms],
            ["append p99 ms", result.appendP99Ms],
            ["event bytes (mean JSON)", result.eventBytesMean],
            ["follower lag p50 ms", result.followLagP50Ms],
            ["follower lag p99 ms", result.followLagP99Ms],
          ],
        },
        notes: [
          `a loop of ${steps} steps (tool_api on an instant port, condition, … end) advanced by advanceRun with a Redis checkpoint per step; ${runs} pair(s) of runs, without and with events, alternating`,
          "with events: the run's sink publishes step_started and step_finished per step and the status events, in order, without the step waiting; one append in flight at a time, the events published meanwhile going together in the next (one EVAL: an XADD MAXLEN each, one PEXPIRE); the run's time includes the final flush",
          "append: one RunEventStream.append (one or more events) through @upstash/redis → the local Upstash bridge → Redis, timed around the call",
          `follower lag: from an append's reply to followRun (polling as GET /executions/{id}/events does, RUN_EVENTS_POLL_MS=${POLL_MS}) yielding that event, for every event of a run followed while it runs`,
        ],
      };
    } finally {
      await stack.stop();
    }
  },
};
