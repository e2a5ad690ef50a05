/** `main` in-process: the same code the binary runs, with the streams captured. */
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { type CliIo, main } from "../../lib/cli/main.ts";
import { parseVariable, parseVariables } from "../../lib/cli/vars.ts";

function captureIo(overrides: Partial<CliIo> = {}) {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: { write: (chunk: string) => (stdout += chunk) },
    stderr: { write: (chunk: string) => (stderr += chunk) },
    stdin: new PassThrough(),
    env: {},
    isTTY: false,
    ...overrides,
  };
  return { io, out: () => stdout, err: () => stderr };
}

const ESC = "\u001b[";

describe("main", () => {
  it("colours output only on a terminal and never with NO_COLOR", async () => {
    const tty = captureIo({ isTTY: true });
    expect(await main(["validate", "examples/support-form.json"], tty.io)).toBe(0);
    expect(tty.out()).toContain(`${ESC}32mvalid`);

    const noColor = captureIo({ isTTY: true, env: { NO_COLOR: "1" } });
    expect(await main(["validate", "examples/support-form.json"], noColor.io)).toBe(0);
    expect(noColor.out()).toBe("examples/support-form.json: valid (0 warnings; sections form)\n");

    const piped = captureIo();
    expect(await main(["validate", "examples/support-form.json"], piped.io)).toBe(0);
    expect(piped.out()).not.toContain(ESC);
  });

  it("returns usage errors as exit code 2 without exiting the process", async () => {
    const unknownOption = captureIo();
    expect(await main(["validate", "--frobnicate", "examples/support-form.json"], unknownOption.io)).toBe(2);
    expect(unknownOption.err()).toMatch(/unknown option '--frobnicate'/);
    const noCommand = captureIo();
    expect(await main([], noCommand.io)).toBe(2);
    const version = captureIo();
    expect(await main(["--version"], version.io)).toBe(0);
    expect(version.out()).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it("reports a bad LLM setting as a usage error instead of crashing", async () => {
    const bad = captureIo({ env: { LLM_BASE_URL: "not a url" } });
    expect(await main(["run", "examples/support-form.json", "-p", "support_form"], bad.io)).toBe(2);
    expect(bad.err()).toContain("invalid configuration: LLM_BASE_URL");
  });
});

describe("--var values", () => {
  it("reads JSON when the value is JSON and keeps anything else as text", () => {
    expect(
      parseVariables([
        "n=42",
        "yes=true",
        "none=null",
        'obj={"a":[1]}',
        "city=Kyiv",
        "zip=01234",
        "eq=a=b",
        "empty=",
      ]),
    ).toEqual({
      n: 42,
      yes: true,
      none: null,
      obj: { a: [1] },
      city: "Kyiv",
      zip: "01234",
      eq: "a=b",
      empty: "",
    });
  });

  it("refuses a missing = and names that are not plain", () => {
    expect(() => parseVariable("city")).toThrow(/expected key=value/);
    expect(() => parseVariable("a.b=1")).toThrow(/not a plain variable name/);
    expect(() => parseVariable("1a=1")).toThrow(/not a plain variable name/);
    expect(() => parseVariable("=1")).toThrow(/not a plain variable name/);
  });
});
