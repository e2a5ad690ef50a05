/**
 * The document as sent, read for patches. A patch is written against the source (its JSON
 * Pointers are paths into what the author wrote, in either form), while the decisions are
 * taken on the validated model, which knows the flow (a step's `next_step_id` read as
 * `next_step`, the classes form's explicit flow, the protocol's `error_handling` written onto
 * its steps). The two are matched step by step; when they do not line up (a source that does
 * not validate, a protocol or step not found) there is no patch.
 */
import type { Operation } from "fast-json-patch";
import { hasConditions } from "../../mova/conditions.ts";
import { validateDocument } from "../../mova/validate.ts";
import type { MovaDocument, Protocol, Step } from "../../mova/schema.ts";
import { followingStepId } from "../../mova/steps.ts";

export type Raw = Record<string, unknown>;

export function isObject(value: unknown): value is Raw {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A JSON Pointer segment (RFC 6901). */
function segment(key: string | number): string {
  return String(key).replaceAll("~", "~0").replaceAll("/", "~1");
}

export function pointer(base: string, ...keys: Array<string | number>): string {
  return [base, ...keys.map(segment)].join("/");
}

/** The source with its validated model; undefined when the source is not a valid document. */
export interface PatchSource {
  source: unknown;
  model: MovaDocument;
}

export function readSource(source: unknown): PatchSource | undefined {
  if (source === undefined) return undefined;
  const validation = validateDocument(source);
  return validation.valid && validation.document ? { source, model: validation.document } : undefined;
}

/** One protocol, as written (`raw`, at `path`) and as validated (`model`). */
export interface SourceProtocol {
  path: string;
  raw: Raw;
  rawSteps: Raw[];
  model: Protocol;
  document: MovaDocument;
}

/** Where the protocols are written: `protocols` (sections form) or `classes.protocol` (one object or a list). */
function rawProtocols(source: unknown): Array<{ path: string; raw: unknown }> {
  if (!isObject(source)) return [];
  if (Array.isArray(source.protocols))
    return source.protocols.map((raw, i) => ({ path: pointer("", "protocols", i), raw }));
  const classes = source.classes;
  if (!isObject(classes)) return [];
  const protocol = classes.protocol;
  if (Array.isArray(protocol))
    return protocol.map((raw, i) => ({ path: pointer("", "classes", "protocol", i), raw }));
  return isObject(protocol) ? [{ path: pointer("", "classes", "protocol"), raw: protocol }] : [];
}

export function locateProtocol(patchSource: PatchSource, name: string): SourceProtocol | undefined {
  const index = patchSource.model.protocols.findIndex((p) => p.name === name);
  const model = patchSource.model.protocols[index];
  const written = rawProtocols(patchSource.source)[index];
  if (!model || !written || !isObject(written.raw) || written.raw.name !== name) return undefined;
  const rawSteps = written.raw.steps;
  if (!Array.isArray(rawSteps) || rawSteps.length !== model.steps.length) return undefined;
  if (!rawSteps.every((step, i) => isObject(step) && step.id === model.steps[i]!.id)) return undefined;
  return {
    path: written.path,
    raw: written.raw,
    rawSteps: rawSteps as Raw[],
    model,
    document: patchSource.model,
  };
}

export function stepIndex(protocol: SourceProtocol, id: string): number {
  return protocol.model.steps.findIndex((s) => s.id === id);
}

export function stepPath(protocol: SourceProtocol, index: number, ...keys: Array<string | number>): string {
  return pointer(protocol.path, "steps", index, ...keys);
}

/** A `test` of a step as written: the patch does not apply once the step changed. */
export function testStep(protocol: SourceProtocol, index: number): Operation {
  return { op: "test", path: stepPath(protocol, index), value: protocol.rawSteps[index] };
}

/** An id not yet taken in the protocol: `base`, else `base_2`, `base_3`, … */
export function freeStepId(
  protocol: SourceProtocol,
  base: string,
  taken: ReadonlySet<string> = new Set(),
): string {
  const used = new Set([...protocol.model.steps.map((s) => s.id), ...taken]);
  if (!used.has(base)) return base;
  for (let n = 2; ; n++) if (!used.has(`${base}_${n}`)) return `${base}_${n}`;
}

/**
 * Whether the run can go from this step to the one after it in the list without naming it:
 * a step without `next_step` in the sequential flow, unless it is an unguarded `end` step.
 */
export function fallsThrough(protocol: Protocol, step: Step): boolean {
  if (protocol.flow === "explicit" || step.next_step !== undefined) return false;
  return step.action !== "end" || hasConditions(step.conditions);
}

/**
 * Where a new step can be put so that no run comes to it by falling through: right after
 * the last step that does not fall through (the end of the list when that is the last), or
 * first when none does not (then `start` must keep naming the old first step). The index
 * is where it goes; `after` is the step before it, undefined when first.
 */
export function quietPlace(protocol: SourceProtocol): { index: number; after: number | undefined } {
  const steps = protocol.model.steps;
  for (let i = steps.length - 1; i >= 0; i--)
    if (!fallsThrough(protocol.model, steps[i]!)) return { index: i + 1, after: i };
  return { index: 0, after: undefined };
}

/** Where a step without `next_step` goes on: the list's next step, or undefined (the run ends). */
export function successorOf(protocol: Protocol, index: number): string | undefined {
  return followingStepId(protocol, index);
}
