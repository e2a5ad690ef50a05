/** The engine-overhead benchmark in a fresh process: no heap or JIT state left by another benchmark. */
import { measureOverhead } from "./engine-overhead.ts";

process.send?.(await measureOverhead(process.env.BENCH_QUICK === "1"));
