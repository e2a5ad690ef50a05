/**
 * Steps that run one after another without reading each other's outputs become one
 * `parallel` step: it is put where the first of them stood in the list and every reference
 * to the first names it instead (so a step that fell through to the first now falls through
 * to it, and an implicit start stays the start), and its `next_step` is where the last of
 * them went on, so the steps are not run again in sequence after it; when the last ended the
 * run, a new `end` step right after it ends it. The steps keep their ids and output variables,
 * so placeholders, conditions and the analysis read them as before. A failure path they
 * shared (`on_error`) becomes the parallel step's; steps with different ones get no patch, as
 * a branch's own `on_error` is not taken (a branch's failure fails the parallel step).
 *
 * What changes besides the time: the run's output, when no step after the group sets one,
 * is the parallel step's map of branch outputs by step id instead of the last step's output,
 * and the replies of prompt branches come in the order they finish.
 */
import type { Operation } from "fast-json-patch";
import { redirect } from "./references.ts";
import { callableAt } from "./retry.ts";
import { freeStepId, type SourceProtocol, stepIndex, stepPath, successorOf, testStep } from "./source.ts";

export function parallelizePatch(protocol: SourceProtocol, ids: readonly string[]): Operation[] | null {
  const indices = ids.map((id) => stepIndex(protocol, id));
  if (ids.length < 2 || indices.some((i) => i < 0 || !callableAt(protocol, i))) return null;
  const steps = indices.map((i) => protocol.model.steps[i]!);
  // The group is a chain: each step goes on to the next.
  if (indices.slice(0, -1).some((i, k) => successorOf(protocol.model, i) !== ids[k + 1])) return null;
  const onError = new Set(steps.map((s) => s.on_error));
  if (onError.size > 1) return null;
  const after = successorOf(protocol.model, indices.at(-1)!);
  if (after !== undefined && ids.includes(after)) return null;

  const first = indices[0]!;
  const id = freeStepId(protocol, `${ids[0]}_parallel`);
  const end = after === undefined ? freeStepId(protocol, `${id}_end`, new Set([id])) : undefined;
  const [sharedOnError] = onError;
  const parallel = {
    id,
    action: "parallel",
    steps: [...ids],
    next_step: after ?? end,
    ...(sharedOnError !== undefined && { on_error: sharedOnError }),
  };
  const group = new Set(indices);
  const { tests, changes, steps: changed } = redirect(protocol, ids[0]!, id, group);
  const stepTests = [...new Set([...indices, ...changed])]
    .sort((a, b) => a - b)
    .map((i) => testStep(protocol, i));
  const inserts: Operation[] = [{ op: "add", path: stepPath(protocol, first), value: parallel }];
  if (end !== undefined)
    inserts.push({ op: "add", path: stepPath(protocol, first + 1), value: { id: end, action: "end" } });
  return [...stepTests, ...tests, ...changes, ...inserts];
}
