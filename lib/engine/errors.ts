/**
 * Errors the engine throws to its caller (as opposed to step failures, which end a run
 * `failed` and are reported in the result). Each carries a stable machine-readable code.
 */
export type EngineErrorCode = "unknown_protocol" | "invalid_suspended_run";

export class EngineError extends Error {
  readonly code: EngineErrorCode;
  constructor(code: EngineErrorCode, message: string) {
    super(message);
    this.name = "EngineError";
    this.code = code;
  }
}
