/** How a caller asks the engine to run or resume a protocol. */
import type { Profile, MovaDocument } from "../mova/schema.ts";
import type { EnginePorts } from "../core/ports.ts";
import type { StepRecord, SuspendedRun } from "../core/run.ts";

export interface RunContext {
  /** Session data, readable as `session.*`. */
  session?: Record<string, unknown>;
  /** The session user's profile, readable as `profile.*`. */
  profile?: Profile;
  /** The recognised intent name, readable as `intent`. */
  intent?: string;
}

export interface RunOptions extends RunContext {
  document: MovaDocument;
  protocol: string;
  variables?: Record<string, unknown>;
  ports: EnginePorts;
  /** Overrides the protocol's `max_steps`. */
  maxSteps?: number;
  /** Run deadline from the start, overriding the protocol's `deadline_ms`. */
  deadlineMs?: number;
  /** Called as each step finishes (the history records them). */
  onStep?: (record: StepRecord) => void;
  /** Cancels the run; it ends `failed` with code `cancelled`. */
  signal?: AbortSignal;
}

export interface ResumeOptions extends Omit<RunOptions, "protocol" | "variables"> {
  suspended: SuspendedRun;
  /** The user's reply to the `input` step waited on. */
  reply: string;
}
