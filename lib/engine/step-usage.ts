/** The tokens and cost of every model call one prompt step makes (repairs and tool rounds included). */
import type { TokenUsage } from "../core/run.ts";
import { addUsage } from "../core/cost.ts";
import type { LlmResponse } from "../ports.ts";

export class StepUsage {
  usage: TokenUsage | undefined;
  /** US dollars; undefined as soon as one call's cost is unknown (a sum with an unknown is unknown). */
  costUsd: number | undefined = 0;
  #calls = 0;

  add(response: LlmResponse): void {
    this.#calls += 1;
    this.usage = addUsage(this.usage, response.usage);
    this.costUsd =
      this.costUsd === undefined || response.costUsd === undefined
        ? undefined
        : Math.round((this.costUsd + response.costUsd) * 1e8) / 1e8;
  }

  get calls(): number {
    return this.#calls;
  }
}
