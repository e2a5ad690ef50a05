/**
 * Secret redaction. Every secret value a run reads is registered here, in the forms it can
 * take on its way out (as written, URL-encoded, JSON-escaped, inside a basic credential),
 * and every value leaving the engine goes through `redact`.
 */
export const REDACTED = "[REDACTED]";

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * The forms a secret value takes once encoded for a URL or embedded in JSON text, and the
 * cheap transformations a tool's echo could apply (reversed, base64, base64url, hex). This is
 * the last line only: a secret reaches nothing but tool requests (the validator's
 * `secret_not_allowed_here`), and no list of encodings is complete.
 */
function secretVariants(value: string): string[] {
  const variants = new Set<string>([value]);
  variants.add(encodeURIComponent(value));
  variants.add(new URLSearchParams({ s: value }).toString().slice(2));
  variants.add(JSON.stringify(value).slice(1, -1));
  // Short values would redact ordinary words; transformed forms only for real credentials.
  if (value.length >= 8) {
    const bytes = Buffer.from(value, "utf8");
    variants.add([...value].reverse().join(""));
    variants.add(bytes.toString("base64"));
    variants.add(bytes.toString("base64").replace(/=+$/, ""));
    variants.add(bytes.toString("base64url"));
    variants.add(bytes.toString("hex"));
  }
  return [...variants].filter((variant) => variant.length > 0);
}

export class SecretRedactor {
  readonly #names = new Set<string>();
  readonly #values = new Set<string>();
  #pattern: RegExp | undefined;

  /** Registers a secret read as `secrets.NAME` (its name is kept so that it can be re-read). */
  addSecret(name: string, value: string): void {
    this.#names.add(name);
    this.addValue(value);
  }

  /** Registers a value derived from secrets (a basic credential) that must not leak either. */
  addValue(value: string): void {
    let changed = false;
    for (const variant of secretVariants(value)) {
      if (!this.#values.has(variant)) {
        this.#values.add(variant);
        changed = true;
      }
    }
    if (changed) this.#pattern = undefined;
  }

  /** The names of the secrets read so far. */
  get names(): string[] {
    return [...this.#names];
  }

  get empty(): boolean {
    return this.#values.size === 0;
  }

  redactString(text: string): string {
    if (this.#values.size === 0) return text;
    if (!this.#pattern) {
      // Longest first, so that a secret containing another is replaced whole.
      const alternatives = [...this.#values].sort((a, b) => b.length - a.length).map(escapeRegExp);
      this.#pattern = new RegExp(alternatives.join("|"), "g");
    }
    return text.replace(this.#pattern, REDACTED);
  }

  /** A deep copy of a JSON-like value with every secret replaced by `[REDACTED]`, keys included. */
  redact<T>(value: T): T {
    return this.#copy(value) as T;
  }

  #copy(value: unknown): unknown {
    if (typeof value === "string") return this.#values.size === 0 ? value : this.redactString(value);
    if (value === null || typeof value !== "object") return value;
    if (Array.isArray(value)) {
      const items = new Array<unknown>(value.length);
      for (let index = 0; index < value.length; index += 1) items[index] = this.#copy(value[index]);
      return items;
    }
    // A plain loop rather than fromEntries(entries().map()): the copy runs on every result and
    // step record, and the intermediate arrays were a tenth of the engine's cost per step.
    const copy: Record<string, unknown> = {};
    const redactKeys = this.#values.size > 0;
    for (const key of Object.keys(value)) {
      const name = redactKeys ? this.redactString(key) : key;
      const item = this.#copy((value as Record<string, unknown>)[key]);
      // Defined, not assigned, so that a key such as `__proto__` stays a plain key.
      if (name === "__proto__")
        Object.defineProperty(copy, name, {
          value: item,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      else copy[name] = item;
    }
    return copy;
  }
}
