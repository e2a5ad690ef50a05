/**
 * An error path for a step whose failures a retry will not fix: a new `end` step that tells
 * the user the step could not be done, with `{error.message}`, and the failing step's
 * `on_error` naming it. The run then ends completed, with that reply, instead of failed
 * with none. A branch of a `parallel` step fails its parallel step, so the path goes there.
 *
 * The new step is put where no run comes to it by falling through (after the last step that
 * does not fall through, see source.ts), so that no other run changes its way.
 */
import type { Operation } from "fast-json-patch";
import type { Step } from "../../mova/schema.ts";
import { freeStepId, pointer, quietPlace, type SourceProtocol, stepPath, testStep } from "./source.ts";

/** The step whose `on_error` a failure of `index` goes by: itself, or the parallel step running it. */
function handlerOf(protocol: SourceProtocol, index: number): number {
  const id = protocol.model.steps[index]!.id;
  const parallel = protocol.model.steps.findIndex((s) => s.action === "parallel" && s.steps.includes(id));
  return parallel < 0 ? index : parallel;
}

function failureReply(step: Step): string {
  const what = step.description ? `${step.description} (step "${step.id}")` : `Step "${step.id}"`;
  return `${what} could not be done: {error.message}`;
}

/** Whether the step's failures already go somewhere (its own `on_error`, or its parallel step's). */
export function hasErrorPath(protocol: SourceProtocol, index: number): boolean {
  return protocol.model.steps[handlerOf(protocol, index)]!.on_error !== undefined;
}

export function errorPathPatch(protocol: SourceProtocol, index: number): Operation[] | null {
  const handler = handlerOf(protocol, index);
  const step = protocol.model.steps[handler]!;
  if (step.on_error !== undefined || step.action === "end" || step.action === "condition") return null;
  const id = freeStepId(protocol, `${step.id}_failed`);
  const place = quietPlace(protocol);
  const tests: Operation[] = [testStep(protocol, handler)];
  const changes: Operation[] = [{ op: "add", path: stepPath(protocol, handler, "on_error"), value: id }];
  if (place.after !== undefined && place.after !== handler) tests.push(testStep(protocol, place.after));
  if (place.after === undefined && protocol.raw.start === undefined) {
    // Put first, the new step would become the start: the start stays the old first step.
    if (handler !== 0) tests.push(testStep(protocol, 0));
    changes.push({ op: "add", path: pointer(protocol.path, "start"), value: protocol.model.steps[0]!.id });
  }
  const end = { id, action: "end", response_template: failureReply(protocol.model.steps[index]!) };
  changes.push({ op: "add", path: stepPath(protocol, place.index), value: end });
  return [...tests, ...changes];
}
