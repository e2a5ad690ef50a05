/**
 * Publishing a run's live events (GET /executions/{id}/events reads them). A sink is made per
 * leg of a run: its events go to the run's stream in the order they were published, without
 * the run waiting for them (a step does not pay for a Redis round trip). One append is in
 * flight at a time; the events published meanwhile go together in the next one, so a run
 * whose steps are faster than Redis sends fewer, larger appends instead of a growing queue of
 * round trips. `flush` waits for the ones still going out. Publishing never changes a run's
 * outcome: an event that could not be appended is counted and logged (the first failure of a
 * leg at once, the count at its end), never thrown, and a run without a stream (`stream`
 * undefined) publishes nothing.
 *
 * Streamed text is gathered: the deltas of one step within TOKEN_WINDOW_MS of the first go out
 * as one `token` event (up to TOKEN_EVENT_MAX_CHARS), so a long answer makes tens of events
 * instead of one per model token, and does not push the run's step events out of its stream
 * (which keeps its last RUN_EVENTS_MAX_LEN events).
 */
import type { Logger } from "@aws-lambda-powertools/logger";
import { fitStep } from "../core/record-size.ts";
import type { RunStatus, StepError, StepRecord } from "../core/run.ts";
import type { RunEvent, RunEventStream } from "../ports.ts";

/**
 * A step record in a `step_finished` event is fitted to this much JSON (its output dropped
 * first, then its prompt cut, both marked): the stream's size is bounded by its length times
 * this. The whole record is in the history (GET /executions/{id}/steps).
 */
export const EVENT_STEP_MAX_BYTES = 16_384;

export interface RunEventSink {
  /** The run started, resumed, finished or suspended. */
  status(status: RunStatus, error?: StepError): void;
  stepStarted(step: { id: string; action: string; visit: number }): void;
  /** Records of steps whose checkpoint is written (the redacted records the engine hands over). */
  stepsFinished(records: readonly StepRecord[]): void;
  /**
   * Text a prompt step streamed (one or several tokens): gathered with the step's next deltas
   * for TOKEN_WINDOW_MS into one `token` event.
   */
  token(stepId: string, delta: string): void;
  /** Any event, as is. */
  publish(event: RunEvent): void;
  /**
   * Waits (2 s at most) for the events published so far to be written or to have failed. Never
   * throws.
   */
  flush(): Promise<void>;
  /** Events that could not be appended so far. */
  readonly failures: number;
}

export interface RunEventSinkOptions {
  /** Absent: nothing is published (a stack without the stream). */
  stream: RunEventStream | undefined;
  tenant: string;
  executionId: string;
  logger?: Pick<Logger, "warn"> | undefined;
  now?: () => number;
}

/** Events in one append at most (one request to Redis). */
const MAX_BATCH = 100;
/**
 * Events waiting for an append at most: beyond it the oldest are dropped (and counted), as
 * the stream's MAXLEN would trim them anyway, so a run faster than Redis never slows down for
 * its events nor holds an unbounded queue.
 */
const MAX_QUEUE = 1000;
/** How long a leg's end waits for its events still going out (they go on in the background). */
const FLUSH_WAIT_MS = 2000;
/** Deltas of a step streamed within this long of a `token` event's first join that event. */
export const TOKEN_WINDOW_MS = 50;
/** A `token` event gathers deltas up to this many characters (one longer delta goes alone). */
export const TOKEN_EVENT_MAX_CHARS = 4096;

type TokenEvent = Extract<RunEvent, { type: "token" }>;

export function createRunEventSink(options: RunEventSinkOptions): RunEventSink {
  const { stream, tenant, executionId, logger } = options;
  const now = options.now ?? Date.now;
  let queue: RunEvent[] = [];
  let inFlight: Promise<void> | undefined;
  let failures = 0;
  let reported = 0;
  const at = () => new Date(now()).toISOString();

  const pump = async (target: RunEventStream): Promise<void> => {
    while (queue.length > 0) {
      const batch = queue.slice(0, MAX_BATCH);
      queue = queue.slice(batch.length);
      try {
        await target.append(tenant, executionId, batch);
      } catch (error) {
        if (failures === 0)
          logger?.warn("run events could not be published; the run goes on", {
            executionId,
            events: batch.length,
            error: error instanceof Error ? error.message : String(error),
          });
        failures += batch.length;
      }
    }
    inFlight = undefined;
  };

  const enqueue = (event: RunEvent): void => {
    if (!stream) return;
    queue.push(event);
    if (queue.length > MAX_QUEUE) {
      queue.shift();
      failures += 1;
    }
    inFlight ??= pump(stream);
  };

  /** The `token` event gathering deltas, and the timer that sends it at the window's end. */
  let gathering: { event: TokenEvent; timer: ReturnType<typeof setTimeout> } | undefined;
  const sendGathered = (): void => {
    if (!gathering) return;
    clearTimeout(gathering.timer);
    const { event } = gathering;
    gathering = undefined;
    enqueue(event);
  };
  // Any other event sends the gathered text first: events keep the order they were published in.
  const publish = (event: RunEvent): void => {
    sendGathered();
    enqueue(event);
  };

  return {
    status(status, error) {
      publish({ type: "status", status, at: at(), ...(error ? { error } : {}) });
    },
    stepStarted(step) {
      publish({ type: "step_started", stepId: step.id, action: step.action, visit: step.visit, at: at() });
    },
    stepsFinished(records) {
      for (const record of records)
        publish({ type: "step_finished", step: fitStep(record, EVENT_STEP_MAX_BYTES), at: at() });
    },
    token(stepId, delta) {
      if (!stream) return;
      const open = gathering?.event;
      if (open && open.stepId === stepId && open.delta.length + delta.length <= TOKEN_EVENT_MAX_CHARS) {
        open.delta += delta;
        return;
      }
      sendGathered();
      gathering = {
        event: { type: "token", stepId, delta, at: at() },
        timer: setTimeout(sendGathered, TOKEN_WINDOW_MS),
      };
    },
    publish,
    async flush() {
      sendGathered();
      // Real time, whatever the run's clock.
      const until = Date.now() + FLUSH_WAIT_MS;
      while (inFlight && Date.now() < until) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          inFlight,
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, Math.max(1, until - Date.now()));
          }),
        ]);
        clearTimeout(timer);
      }
      if (inFlight)
        logger?.warn("run events still going out at the leg's end", { executionId, queued: queue.length });
      if (failures > reported) {
        logger?.warn("run events not published", { executionId, runEventPublishFailures: failures });
        reported = failures;
      }
    },
    get failures() {
      return failures;
    },
  };
}
