/**
 * The local stack (dynalite in memory, fauxqs, the session backend) in a process of its own,
 * as the managed services are remote from a deployed function: it sends the stack's
 * environment (endpoints, table and queue names) to the parent and stops when told to.
 */
import { startLocalStack } from "../../infra/local/stack.ts";

const stack = await startLocalStack({ memory: true });
let closing = false;
const close = async () => {
  if (closing) return;
  closing = true;
  await stack.stop().catch(() => undefined);
  process.exit(0);
};
process.on("message", (message) => {
  if (message === "close") void close();
});
process.on("disconnect", () => void close());
process.send?.({ env: stack.env, sessionBackend: stack.sessionBackend, warnings: stack.warnings });
