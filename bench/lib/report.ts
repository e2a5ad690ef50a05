/**
 * Pure helpers of the benchmark harness: order statistics, ratios and the text tables
 * printed after each benchmark. Kept free of I/O so they can be unit-tested.
 */

/** The median of the values (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("median of no values");
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** The p-th percentile (0–100) by linear interpolation between closest ranks. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new RangeError("percentile of no values");
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  const lowValue = sorted[low] as number;
  return lowValue + ((sorted[high] as number) - lowValue) * (rank - low);
}

/** Rounds to a number of decimal places (figures in results.json stay readable). */
export function round(value: number, digits = 2): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

export type Cell = string | number | boolean | null | undefined;

function cellText(cell: Cell): string {
  if (cell === null || cell === undefined) return "–";
  if (typeof cell === "number") {
    if (!Number.isFinite(cell)) return String(cell);
    return Number.isInteger(cell) ? String(cell) : String(round(cell, Math.abs(cell) >= 100 ? 1 : 2));
  }
  return String(cell);
}

/** A plain-text table: a header, a rule, one line per row; numbers right-aligned. */
export function formatTable(headers: readonly string[], rows: ReadonlyArray<readonly Cell[]>): string {
  const texts = rows.map((row) => headers.map((_, column) => cellText(row[column])));
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...texts.map((row) => (row[column] as string).length)),
  );
  const numeric = headers.map(
    (_, column) => rows.length > 0 && rows.every((row) => typeof row[column] === "number"),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) =>
        numeric[column] ? cell.padStart(widths[column] as number) : cell.padEnd(widths[column] as number),
      )
      .join("  ")
      .trimEnd();
  return [line(headers), widths.map((width) => "-".repeat(width)).join("  "), ...texts.map(line)].join("\n");
}

/** Parses the command line of `npm run bench`: `--quick`, `--only <name>` (repeatable or comma-separated), `--out <file>`. */
export interface BenchArgs {
  quick: boolean;
  only: string[];
  out: string | undefined;
  sequential1000: boolean;
}

export function parseBenchArgs(argv: readonly string[], known: readonly string[]): BenchArgs {
  const args: BenchArgs = { quick: false, only: [], out: undefined, sequential1000: false };
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index] as string;
    const [flag, inline] =
      arg.startsWith("--") && arg.includes("=") ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    const value = (): string => {
      const next = inline ?? argv[++index];
      if (next === undefined || next === "") throw new Error(`${flag} needs a value`);
      return next;
    };
    switch (flag) {
      case "--quick":
        args.quick = true;
        break;
      case "--only":
        for (const name of value().split(",")) {
          const trimmed = name.trim();
          if (!known.includes(trimmed))
            throw new Error(`unknown benchmark "${trimmed}"; known: ${known.join(", ")}`);
          if (!args.only.includes(trimmed)) args.only.push(trimmed);
        }
        break;
      case "--out":
        args.out = value();
        break;
      case "--sequential-1000":
        args.sequential1000 = true;
        break;
      default:
        throw new Error(
          `unknown argument "${arg}" (use --quick, --only <name>, --out <file>, --sequential-1000)`,
        );
    }
  }
  return args;
}
