/** What each benchmark module exports: a name (its key in results.json) and a run function. */
import type { Cell } from "./report.ts";

export interface BenchContext {
  quick: boolean;
  sequential1000: boolean;
  /** Progress lines (to stderr, so the tables on stdout stay clean). */
  log(message: string): void;
}

export interface BenchOutcome<T> {
  /** The value stored under the benchmark's key in results.json. */
  result: T;
  table: { headers: string[]; rows: Cell[][] };
  /** What was run and anything a reader must know to read the figures. */
  notes: string[];
}

export interface Benchmark<T = unknown> {
  name: string;
  title: string;
  run(context: BenchContext): Promise<BenchOutcome<T>>;
}

/** Raised when a benchmark's dependency is not in the tree: it is reported as not built, never faked. */
export class NotBuiltError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotBuiltError";
  }
}
