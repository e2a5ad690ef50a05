/**
 * Every place a protocol names a step, as written: its `start` and `error_handling`
 * fallback, and in its steps `next_step` (or `next_step_id`), `else_step`, `on_error`,
 * `on_timeout`, an input's `validate.on_exhausted`, a parallel step's `steps`, and the
 * `next_step_id` and `default_next_step_id` of conditions (nested ones included). Patches
 * that remove or stand in for a step send all of them elsewhere.
 */
import type { Operation } from "fast-json-patch";
import { isObject, pointer, type Raw, type SourceProtocol } from "./source.ts";

/** One place naming a step: its JSON Pointer, the step index it is in (undefined: the protocol itself). */
interface Reference {
  path: string;
  step: number | undefined;
}

function conditionReferences(value: unknown, path: string, id: string, out: string[]): void {
  const rules = Array.isArray(value) ? value : isObject(value) ? value.rules : undefined;
  const rulesPath = Array.isArray(value) ? path : pointer(path, "rules");
  if (isObject(value) && value.default_next_step_id === id) out.push(pointer(path, "default_next_step_id"));
  if (!Array.isArray(rules)) return;
  rules.forEach((rule, i) => {
    if (!isObject(rule)) return;
    if (rule.next_step_id === id) out.push(pointer(rulesPath, i, "next_step_id"));
    if (rule.sub_conditions !== undefined)
      conditionReferences(rule.sub_conditions, pointer(rulesPath, i, "sub_conditions"), id, out);
  });
}

function stepReferences(raw: Raw, path: string, id: string): string[] {
  const out: string[] = [];
  for (const key of ["next_step", "next_step_id", "else_step", "on_error", "on_timeout"])
    if (raw[key] === id) out.push(pointer(path, key));
  if (isObject(raw.validate) && raw.validate.on_exhausted === id)
    out.push(pointer(path, "validate", "on_exhausted"));
  if (raw.action === "parallel" && Array.isArray(raw.steps))
    raw.steps.forEach((branch, i) => {
      if (branch === id) out.push(pointer(path, "steps", i));
    });
  if (raw.conditions !== undefined) conditionReferences(raw.conditions, pointer(path, "conditions"), id, out);
  return out;
}

/** The places that name step `id` explicitly (not the implicit start or falling through). */
function referencesTo(protocol: SourceProtocol, id: string): Reference[] {
  const out: Reference[] = [];
  if (protocol.raw.start === id) out.push({ path: pointer(protocol.path, "start"), step: undefined });
  const handling = protocol.raw.error_handling;
  if (isObject(handling) && handling.fallback_step_id === id)
    out.push({ path: pointer(protocol.path, "error_handling", "fallback_step_id"), step: undefined });
  protocol.rawSteps.forEach((raw, index) => {
    for (const path of stepReferences(raw, pointer(protocol.path, "steps", index), id))
      out.push({ path, step: index });
  });
  return out;
}

/**
 * The operations that make every explicit reference to `from` name `to` instead, with the
 * `test`s of what they change: the steps as written, the protocol's `start` and fallback.
 * `except` leaves the references inside those steps alone.
 */
export function redirect(
  protocol: SourceProtocol,
  from: string,
  to: string,
  except: ReadonlySet<number> = new Set(),
): { tests: Operation[]; changes: Operation[]; steps: Set<number> } {
  const tests: Operation[] = [];
  const changes: Operation[] = [];
  const steps = new Set<number>();
  for (const reference of referencesTo(protocol, from)) {
    if (reference.step !== undefined && except.has(reference.step)) continue;
    if (reference.step === undefined) tests.push({ op: "test", path: reference.path, value: from });
    else steps.add(reference.step);
    changes.push({ op: "replace", path: reference.path, value: to });
  }
  return { tests, changes, steps };
}
