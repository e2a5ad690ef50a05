// Times the import of one bundled handler in this fresh process and prints the figure as JSON.
// Plain JavaScript, run by plain node: no loader of the benchmark's own is timed or loaded.
const [bundle] = process.argv.slice(2);
const started = performance.now();
const module = await import(bundle);
const initMs = performance.now() - started;
if (typeof module.handler !== "function") {
  console.error(`${bundle} exports no handler function`);
  process.exit(1);
}
process.stdout.write(`${JSON.stringify({ initMs, rssMb: process.memoryUsage().rss / 1024 / 1024 })}\n`);
// The handler's clients may hold sockets or timers: the figure is taken, the process may go.
process.exit(0);
