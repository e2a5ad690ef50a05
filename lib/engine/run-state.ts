/**
 * Run states as plain data: a new run's first state, and the checks that a stored state (a
 * checkpoint, or a session's suspended run) has the shape the engine can go on from.
 */
import { MovaError } from "../errors.ts";
import type { MovaDocument, Protocol } from "../mova/schema.ts";
import type { RunState, SuspendedRun } from "../core/run.ts";
import { DEFAULT_RUN_DEADLINE_MS, type NewRunStateOptions } from "./run-options.ts";

export function findProtocol(document: MovaDocument, name: string): Protocol {
  const protocol = document.protocols.find((item) => item.name === name);
  if (!protocol)
    throw new MovaError("unknown_protocol", `the protocol "${name}" does not exist in the document`);
  return protocol;
}

/**
 * A new run's state, before its first step: what a caller stores (the first checkpoint) and
 * then advances. Its deadline is the protocol's `deadline_ms` (default 24 h) from `now`.
 */
export function newRunState(options: NewRunStateOptions): RunState {
  const protocol = findProtocol(options.document, options.protocol);
  const now = options.now ?? Date.now();
  const state: RunState = {
    v: 2,
    protocol: protocol.name,
    status: "running",
    variables: structuredClone(options.variables ?? {}),
    path: [],
    stepCount: 0,
    visits: {},
    unresolved: [],
    startedAt: new Date(now).toISOString(),
    deadlineAt: now + (options.deadlineMs ?? protocol.deadline_ms ?? DEFAULT_RUN_DEADLINE_MS),
    offline: false,
    secretNames: [],
  };
  const start = protocol.start ?? protocol.steps[0]?.id;
  if (start !== undefined) state.next = start;
  return state;
}

export function isSuspendedRun(value: unknown): value is SuspendedRun {
  if (value === null || typeof value !== "object") return false;
  const run = value as Record<string, unknown>;
  return (
    run.v === 1 &&
    typeof run.protocol === "string" &&
    typeof run.stepId === "string" &&
    run.variables !== null &&
    typeof run.variables === "object" &&
    Array.isArray(run.path) &&
    Array.isArray(run.steps) &&
    typeof run.stepCount === "number" &&
    Array.isArray(run.unresolved) &&
    typeof run.startedAt === "string" &&
    (run.deadlineAt === undefined || typeof run.deadlineAt === "number") &&
    (run.visits === undefined || isPlainObject(run.visits))
  );
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

export function isRunState(value: unknown): value is RunState {
  if (!isPlainObject(value)) return false;
  return (
    value.v === 2 &&
    typeof value.protocol === "string" &&
    typeof value.status === "string" &&
    (value.next === undefined || typeof value.next === "string") &&
    isPlainObject(value.variables) &&
    Array.isArray(value.path) &&
    typeof value.stepCount === "number" &&
    isPlainObject(value.visits) &&
    Array.isArray(value.unresolved) &&
    typeof value.startedAt === "string" &&
    typeof value.deadlineAt === "number" &&
    Array.isArray(value.secretNames)
  );
}

export function countVisits(path: readonly string[]): Record<string, number> {
  const visits: Record<string, number> = {};
  for (const id of path) visits[id] = (visits[id] ?? 0) + 1;
  return visits;
}
