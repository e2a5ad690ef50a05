/**
 * The price of durability: a run checkpointed after every step. A loop protocol (a `tool_api`
 * step on an instant port that counts, and a `condition` that loops back: two steps a round,
 * then `end`) is advanced by advanceRun (a) with no checkpoint and (b) with the Redis
 * checkpoint store on the local stack (the real @upstash/redis client, the Upstash bridge and
 * a real Redis), one CAS write per step. The run carries a payload variable of a fixed size
 * (0, 16 and 64 KiB), so the state's size is the protocol's data, not its history: the bytes
 * written at step 10, 100 and 1000 must be the same. For contrast, the last row is what a
 * state would weigh if it kept every step record, as a session's suspended run does. The last
 * figure is the time from a run's hand-off to the runner resuming it (support/handoff-latency.ts).
 */
import type { RunCheckpointStore } from "../lib/ports.ts";
import type { RunState, StepRecord } from "../lib/core/run.ts";
import { advanceRun } from "../lib/engine/engine.ts";
import { newRunState } from "../lib/engine/run-state.ts";
import type { MovaDocument } from "../lib/mova/schema.ts";
import { instantPorts, loopDocument } from "./support/counter-loop.ts";
import { serialExecutionIds, startRedisBenchStack } from "./support/redis-stack.ts";
import { median, percentile, round } from "./lib/report.ts";
import { measureHandOffs, RUNNER_POLL_WAIT_SECONDS } from "./support/handoff-latency.ts";
import type { Benchmark, BenchContext } from "./lib/types.ts";

/** The steps at which the bytes written are reported. */
const PROBES = [10, 100, 1000] as const;
/** 500 rounds of two steps and `end`: 1001 steps, so step 1000 is written. */
const ROUNDS = 500;
const PAYLOADS = [0, 16_384, 65_536] as const;

interface Scenario {
  payloadBytes: number;
  /** JSON bytes of the state written at each probe step. */
  stateBytesAt: Record<number, number>;
  checkpointP50Ms: number;
  checkpointP95Ms: number;
  checkpointP99Ms: number;
  checkpointMeanMs: number;
  /** Wall time per step of the whole run: without checkpoints, and with one per step. */
  msPerStepWithout: number;
  msPerStepWith: number;
  /** Redis round trips per step (checkpoint writes / steps). */
  roundTripsPerStep: number;
}

export interface DurabilityResult {
  steps: number;
  runsPerScenario: number;
  scenarios: Scenario[];
  /** What the state would weigh at each probe step if it kept the step records (no payload). */
  recordsKeptBytesAt: Record<number, number>;
  /** One bare Redis round trip (a GET of the run's key) through the same client, for scale. */
  roundTrip: { p50Ms: number; p95Ms: number; p99Ms: number; meanMs: number };
  /** From a run's hand-off (the 202 of a Prefer: respond-async start) to the runner's first step. */
  handOff: HandOffFigure;
}

export interface HandOffFigure {
  handOffs: number;
  /** The local runner worker's long-poll wait on the runs queue. */
  pollWaitSeconds: number;
  p50Ms: number;
  p95Ms: number;
  meanMs: number;
  maxMs: number;
  /** The same, from sending the request (the API's own work included). */
  fromRequestP50Ms: number;
  fromRequestP95Ms: number;
}

/** p50/p95/mean/max of hand-off samples, rounded as the table shows them. */
export function summarizeHandOffs(
  samples: readonly { fromRequestMs: number; fromAcceptedMs: number }[],
  pollWaitSeconds: number,
): HandOffFigure {
  const accepted = samples.map((sample) => sample.fromAcceptedMs);
  const requested = samples.map((sample) => sample.fromRequestMs);
  return {
    handOffs: samples.length,
    pollWaitSeconds,
    p50Ms: round(percentile(accepted, 50), 2),
    p95Ms: round(percentile(accepted, 95), 2),
    meanMs: round(mean(accepted), 2),
    maxMs: round(Math.max(...accepted), 2),
    fromRequestP50Ms: round(percentile(requested, 50), 2),
    fromRequestP95Ms: round(percentile(requested, 95), 2),
  };
}

/** The durability table's row for the hand-off figure (the columns of durabilityHeaders). */
export function handOffRow(figure: HandOffFigure): (string | number | null)[] {
  return [
    `hand-off → runner's first step (${figure.handOffs} runs, poll wait ${figure.pollWaitSeconds} s)`,
    null,
    null,
    null,
    figure.p50Ms,
    figure.p95Ms,
    null,
    figure.meanMs,
    null,
    null,
    null,
  ];
}

export const durabilityHeaders = [
  "payload",
  "B @10",
  "B @100",
  "B @1000",
  "p50 ms",
  "p95 ms",
  "p99 ms",
  "mean ms",
  "ms/step none",
  "ms/step ckpt",
  "RTT/step",
];

function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}

interface Leg {
  ms: number;
  steps: number;
  writes: number[];
  /** A bare round trip timed right after each write (kept out of `ms`), for a paired baseline. */
  gets: number[];
  bytesAt: Record<number, number>;
  recordBytesAt: Record<number, number>;
}

async function runOnce(
  document: MovaDocument,
  payloadBytes: number,
  store: RunCheckpointStore | undefined,
  tenant: string,
  executionId: string,
  roundTrip?: () => Promise<unknown>,
): Promise<Leg> {
  const state = newRunState({
    document,
    protocol: "loop",
    variables: { counter: { n: 0 }, payload: "x".repeat(payloadBytes) },
  });
  const writes: number[] = [];
  const gets: number[] = [];
  let asideMs = 0;
  const bytesAt: Record<number, number> = {};
  const recordBytesAt: Record<number, number> = {};
  let recordBytes = 0;
  let version = store ? (await store.create(tenant, executionId, state)).version : 0;
  const checkpoint = store
    ? async (next: RunState, records: StepRecord[]) => {
        if ((PROBES as readonly number[]).includes(next.stepCount)) {
          bytesAt[next.stepCount] = Buffer.byteLength(JSON.stringify(next));
        }
        for (const record of records) recordBytes += Buffer.byteLength(JSON.stringify(record)) + 1;
        if ((PROBES as readonly number[]).includes(next.stepCount))
          recordBytesAt[next.stepCount] = recordBytes;
        const started = performance.now();
        version = await store.write(tenant, executionId, version, next);
        const written = performance.now();
        writes.push(written - started);
        if (roundTrip) {
          await roundTrip();
          const got = performance.now() - written;
          gets.push(got);
          asideMs += got;
        }
      }
    : undefined;
  const started = performance.now();
  const result = await advanceRun({
    document,
    state,
    ports: instantPorts,
    executionId,
    keepSteps: false,
    ...(checkpoint && { checkpoint }),
  });
  const ms = performance.now() - started - asideMs;
  if (result.status !== "completed" || result.output !== `counted to ${ROUNDS}`)
    throw new Error(`the run went wrong: ${result.status} ${JSON.stringify(result.error)}`);
  return { ms, steps: result.state?.stepCount ?? 0, writes, gets, bytesAt, recordBytesAt };
}

export const durabilityBenchmark: Benchmark<DurabilityResult> = {
  name: "durability",
  title: "Durability: a Redis checkpoint after every step, against the engine with none",
  async run(context: BenchContext) {
    const { stack, redis, checkpoints: store } = await startRedisBenchStack();
    try {
      const document = loopDocument(ROUNDS);
      const runs = context.quick ? 1 : 3;
      const tenant = `bench-durability-${Date.now().toString(36)}`;
      const id = serialExecutionIds();
      // Warm-up: the JIT, and the client's keep-alive connection to the bridge.
      await runOnce(document, 0, undefined, tenant, id());
      await runOnce(document, 0, store, tenant, id());
      const missingKey = `mova:run:${tenant}:missing`;
      const bareGet = () => redis.get(missingKey);
      const gets: number[] = [];

      const scenarios: Scenario[] = [];
      let recordsKeptBytesAt: Record<number, number> = {};
      for (const payloadBytes of PAYLOADS) {
        const without: number[] = [];
        const withCheckpoint: number[] = [];
        const writes: number[] = [];
        let last: Leg | undefined;
        for (let run = 0; run < runs; run += 1) {
          const bare = await runOnce(document, payloadBytes, undefined, tenant, id());
          without.push(bare.ms / bare.steps);
          last = await runOnce(document, payloadBytes, store, tenant, id(), bareGet);
          gets.push(...last.gets);
          withCheckpoint.push(last.ms / last.steps);
          writes.push(...last.writes);
        }
        if (!last) throw new Error("no run");
        if (payloadBytes === 0) recordsKeptBytesAt = last.recordBytesAt;
        const scenario: Scenario = {
          payloadBytes,
          stateBytesAt: last.bytesAt,
          checkpointP50Ms: round(percentile(writes, 50), 3),
          checkpointP95Ms: round(percentile(writes, 95), 3),
          checkpointP99Ms: round(percentile(writes, 99), 3),
          checkpointMeanMs: round(mean(writes), 3),
          msPerStepWithout: round(median(without), 4),
          msPerStepWith: round(median(withCheckpoint), 3),
          roundTripsPerStep: round(last.writes.length / last.steps, 2),
        };
        context.log(`durability ${payloadBytes} B payload: ${JSON.stringify(scenario)}`);
        scenarios.push(scenario);
      }
      const steps = ROUNDS * 2 + 1;
      const roundTrip = {
        p50Ms: round(percentile(gets, 50), 3),
        p95Ms: round(percentile(gets, 95), 3),
        p99Ms: round(percentile(gets, 99), 3),
        meanMs: round(mean(gets), 3),
      };
      const handOffs = context.quick ? 5 : 40;
      context.log(`durability: ${handOffs} hand-offs to the local runner worker`);
      const handOff = summarizeHandOffs(
        await measureHandOffs({ stackEnv: stack.env, sessionBackend: stack.sessionBackend, count: handOffs }),
        RUNNER_POLL_WAIT_SECONDS,
      );
      context.log(`durability hand-off: ${JSON.stringify(handOff)}`);
      const result: DurabilityResult = {
        steps,
        runsPerScenario: runs,
        scenarios,
        recordsKeptBytesAt,
        roundTrip,
        handOff,
      };
      const kib = (bytes: number) => (bytes === 0 ? "none" : `${bytes / 1024} KiB`);
      return {
        result,
        table: {
          headers: durabilityHeaders,
          rows: [
            ...scenarios.map((s) => [
              kib(s.payloadBytes),
              s.stateBytesAt[10],
              s.stateBytesAt[100],
              s.stateBytesAt[1000],
              s.checkpointP50Ms,
              s.checkpointP95Ms,
              s.checkpointP99Ms,
              s.checkpointMeanMs,
              s.msPerStepWithout,
              s.msPerStepWith,
              s.roundTripsPerStep,
            ]),
            [
              "bare GET round trip",
              null,
              null,
              null,
              roundTrip.p50Ms,
              roundTrip.p95Ms,
              roundTrip.p99Ms,
              roundTrip.meanMs,
              null,
              null,
              1,
            ],
            [
              "records kept (contrast)",
              (scenarios[0]?.stateBytesAt[10] ?? 0) + (recordsKeptBytesAt[10] ?? 0),
              (scenarios[0]?.stateBytesAt[100] ?? 0) + (recordsKeptBytesAt[100] ?? 0),
              (scenarios[0]?.stateBytesAt[1000] ?? 0) + (recordsKeptBytesAt[1000] ?? 0),
              null,
              null,
              null,
              null,
              null,
              null,
              null,
            ],
            handOffRow(handOff),
          ],
        },
        notes: [
          `a loop of ${steps} steps (tool_api on an instant port, condition, … end) advanced by advanceRun; ${runs} run(s) per row, alternating without and with checkpoints; p50/p95/p99 over every write of the row's runs`,
          "B @n: JSON bytes of the state written after step n (the Lua script and the key add about 400 bytes to each EVAL request); the payload is a variable of that size carried by the run",
          "p50/p95/p99/mean ms of a payload row: one RunCheckpointStore.write (one EVAL through @upstash/redis → the local Upstash bridge → Redis) per step, timed around the call; ms/step: the run's wall time per step",
          "bare GET round trip: a GET of a missing key through the same client and bridge, timed right after each checkpoint write of every row (and kept out of ms/step): what one Redis round trip costs here, under the same load",
          "B @n grows until the path tail (the last 50 step ids) is full, then stays flat: nothing in the state grows with the steps done",
          "records kept: the state with no payload plus every step record so far, what a state would weigh if it kept the history (a session's suspended run does)",
          `hand-off: a one-step run (a tool_api call to a loopback server, then end) started with Prefer: respond-async through the API behind the local gateway; from its 202 (handOff done: the sweep's schedule written, the message on the fauxqs runs queue) to the runner's tool call reaching the server, i.e. the runner's leg starting its first step. The runner is the local stack's runner worker (SQS poller, long poll WaitTimeSeconds=${RUNNER_POLL_WAIT_SECONDS}, into the real runner handler: lease, checkpoint read, document load). ${handOff.handOffs} hand-offs one after another, each once the previous run finished; max ${handOff.maxMs} ms; from sending the request instead of the 202 (the API's own work included): p50 ${handOff.fromRequestP50Ms} ms, p95 ${handOff.fromRequestP95Ms} ms. fauxqs answers a long poll as soon as a message arrives, as SQS does, so an idle poller's wait setting bounds the idle loop, not the hand-off`,
        ],
      };
    } finally {
      await stack.stop();
    }
  },
};
