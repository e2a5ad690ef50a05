/** Bad input to the analysis (a corrupt stored aggregate, a negative duration, …): a code says which. */
export class AnalysisError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AnalysisError";
    this.code = code;
  }
}
