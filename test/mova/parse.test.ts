import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DocumentParseError, formatFromFilename, guessFormat, parseSource } from "../../lib/mova/parse.ts";

function parseError(text: string, format?: "json" | "yaml"): DocumentParseError {
  try {
    parseSource(text, format);
  } catch (error) {
    expect(error).toBeInstanceOf(DocumentParseError);
    return error as DocumentParseError;
  }
  throw new Error("expected a parse error");
}

describe("parseSource", () => {
  it("reads JSON and YAML into the same value", () => {
    const json = parseSource('{"version": "2.2", "intents": [{"name": "hi", "patterns": ["привіт"]}]}');
    const yaml = parseSource('version: "2.2"\nintents:\n  - name: hi\n    patterns: [привіт]\n');
    expect(yaml).toEqual(json);
  });

  it("guesses JSON from a leading brace or bracket, YAML otherwise", () => {
    expect(guessFormat('  \n {"a": 1}')).toBe("json");
    expect(guessFormat("[1]")).toBe("json");
    expect(guessFormat("a: 1")).toBe("yaml");
    expect(guessFormat("# comment\n{a: 1}")).toBe("yaml");
  });

  it("accepts a byte order mark", () => {
    expect(parseSource('\uFEFF{"version": "2.0"}')).toEqual({ version: "2.0" });
    expect(parseSource("\uFEFFversion: '2.0'\n")).toEqual({ version: "2.0" });
  });

  it("keeps an unquoted YAML version as a number", () => {
    expect(parseSource("version: 2.2\n")).toEqual({ version: 2.2 });
  });

  it("honours an explicit format", () => {
    expect(parseSource("[1, 2]", "yaml")).toEqual([1, 2]);
    expect(parseError("a: 1", "json").format).toBe("json");
  });

  it("reports where invalid JSON goes wrong", () => {
    const error = parseError('{\n  "a": 1,\n  "b": }\n');
    expect(error.code).toBe("parse_error");
    expect(error.line).toBe(3);
    expect(error.column).toBe(8);
    expect(error.message).toMatch(/line 3, column 8/);
  });

  it("points at a trailing comma, a bad literal and a missing comma", () => {
    expect(parseError("[1, 2,]")).toMatchObject({ line: 1, column: 7 });
    expect(parseError('{"a": tru}')).toMatchObject({ line: 1, column: 7 });
    expect(parseError('{"a": 1\n "b": 2}')).toMatchObject({ line: 2, column: 2 });
    expect(parseError('{"a": 1} x')).toMatchObject({ line: 1, column: 10 });
  });

  it("says when JSON ends too early", () => {
    const error = parseError('{\n  "a": [1, 2');
    expect(error).toMatchObject({ line: 2, column: 13 });
    expect(error.message).toMatch(/unexpected end/);
  });

  it("reports where invalid YAML goes wrong", () => {
    const error = parseError("version: '2.2'\nintents:\n  - name: a\n   patterns: [x\n");
    expect(error.code).toBe("parse_error");
    expect(error.format).toBe("yaml");
    expect(error.line).toBeGreaterThanOrEqual(3);
    expect(error.message).toMatch(/^invalid YAML at line \d+, column \d+: /);
  });

  it("keeps the YAML reason short when it quotes a long text", () => {
    const prose = "Some prose that is not YAML at all, ".repeat(20);
    const error = parseError(`# Title\n\nFirst paragraph.\n\n## Section\n\n${prose}\n`);
    expect(error.message).toMatch(/^invalid YAML at line 7, column 1: .*…$/);
    expect(error.message.length).toBeLessThan(220);
  });

  it("refuses duplicate YAML keys", () => {
    const error = parseError("version: '2.2'\nversion: '2.1'\n");
    expect(error.line).toBe(2);
    expect(error.message).toMatch(/unique|duplicate/i);
  });

  it("refuses YAML whose aliases expand without bound", () => {
    const lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 0; i < 8; i++) {
      const prev = String.fromCharCode(97 + i);
      const next = String.fromCharCode(98 + i);
      lines.push(
        `${next}: &${next} [*${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}]`,
      );
    }
    expect(parseError(lines.join("\n")).code).toBe("parse_error");
  });

  it("refuses empty text and several YAML documents", () => {
    expect(parseError("  \n").message).toMatch(/empty/);
    expect(parseError("a: 1\n---\nb: 2\n").code).toBe("parse_error");
  });

  it("never throws anything but a DocumentParseError, with a position inside the text", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.json(),
          fc.string(),
          fc.json().map((j) => j.slice(0, Math.max(1, j.length - 1))),
        ),
        (text) => {
          try {
            const value = parseSource(text, "json");
            expect(value).toEqual(JSON.parse(text.replace(/^\uFEFF/, "")));
          } catch (error) {
            expect(error).toBeInstanceOf(DocumentParseError);
            const { line, column } = error as DocumentParseError;
            if (line !== undefined && column !== undefined) {
              const lines = text.split("\n");
              expect(line).toBeLessThanOrEqual(lines.length);
              expect(column).toBeLessThanOrEqual((lines[line - 1]?.length ?? 0) + 1);
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it("never throws anything but a DocumentParseError on arbitrary YAML text", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme-ascii", maxLength: 200 }), (text) => {
        try {
          parseSource(text, "yaml");
        } catch (error) {
          expect(error).toBeInstanceOf(DocumentParseError);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("formatFromFilename", () => {
  it("knows JSON and YAML extensions in any case", () => {
    expect(formatFromFilename("doc.json")).toBe("json");
    expect(formatFromFilename("DOC.YML")).toBe("yaml");
    expect(formatFromFilename("a/b/doc.yaml")).toBe("yaml");
    expect(formatFromFilename("doc.txt")).toBeUndefined();
    expect(formatFromFilename("json")).toBeUndefined();
  });
});
