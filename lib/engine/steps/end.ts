/** The `end` step: the run completes, with its `response_template` rendered as the output. */
import type { EndStep } from "../../mova/schema.ts";
import type { LiveRun } from "../live-run.ts";
import type { Outcome } from "../flow.ts";
import { baseRecord, finishRecord } from "../step-record.ts";

export function executeEnd(state: LiveRun, step: EndStep): Outcome {
  const startedMs = state.clock.now();
  const record = baseRecord(step, startedMs);
  if (step.response_template !== undefined) {
    const output = state.render(step.response_template);
    record.output = output;
    state.setOutput(output, undefined);
    state.reply(output);
  }
  state.record(finishRecord(state, record, startedMs));
  return { kind: "complete" };
}
