import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  getPath,
  parseTemplate,
  placeholdersOf,
  renderTemplate,
  renderValue,
  stringifyValue,
} from "../../lib/mova/placeholders.ts";

const vars: Record<string, unknown> = {
  city: "Київ",
  weather: { current: { temp_c: 21.5, tags: ["sunny", { uv: 3 }] } },
  count: 3,
  flag: false,
  nothing: null,
};
const resolve = (path: string) => getPath(vars, path);

describe("parseTemplate", () => {
  it("splits text, placeholders and dotted paths", () => {
    expect(parseTemplate("Hi {city}, {weather.current.temp_c}°")).toEqual([
      { kind: "text", text: "Hi " },
      { kind: "placeholder", path: "city", raw: "{city}" },
      { kind: "text", text: ", " },
      { kind: "placeholder", path: "weather.current.temp_c", raw: "{weather.current.temp_c}" },
      { kind: "text", text: "°" },
    ]);
  });
  it("accepts Cyrillic names and numeric segments", () => {
    expect(placeholdersOf("{місто} {a.0.b} {secrets.API-KEY}")).toEqual([
      "місто",
      "a.0.b",
      "secrets.API-KEY",
    ]);
  });
  it("reads doubled braces as literal braces", () => {
    expect(parseTemplate("{{city}}")).toEqual([{ kind: "text", text: "{city}" }]);
    expect(renderTemplate("{{ {city} }}", resolve).text).toBe("{ Київ }");
  });
  it("marks malformed placeholders with their offset", () => {
    expect(parseTemplate("a {} b {a..b} {.x} {x.} {1abc}").filter((p) => p.kind === "invalid")).toEqual([
      { kind: "invalid", raw: "{}", offset: 2 },
      { kind: "invalid", raw: "{a..b}", offset: 7 },
      { kind: "invalid", raw: "{.x}", offset: 14 },
      { kind: "invalid", raw: "{x.}", offset: 19 },
      { kind: "invalid", raw: "{1abc}", offset: 24 },
    ]);
  });
  it("leaves braces around text that cannot be a path as text", () => {
    expect(parseTemplate('{"a": 1} { x } {a b} {')).toEqual([
      { kind: "text", text: '{"a": 1} { x } {a b} {' },
    ]);
  });
  it("lists each placeholder once, in order", () => {
    expect(placeholdersOf("{b} {a} {b} {{c}}")).toEqual(["b", "a"]);
  });
  it("gives back the template when its parts are joined", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), (template) => {
        const joined = parseTemplate(template)
          .map((part) =>
            part.kind === "text" ? part.text.replaceAll("{", "{{").replaceAll("}", "}}") : part.raw,
          )
          .join("");
        expect(parseTemplate(joined)).toEqual(parseTemplate(template));
      }),
    );
  });
});

describe("getPath", () => {
  it("walks objects and lists", () => {
    expect(getPath(vars, "weather.current.tags.1.uv")).toBe(3);
    expect(getPath(vars, "weather.current.tags.x")).toBeUndefined();
    expect(getPath(vars, "city.length")).toBeUndefined();
    expect(getPath(vars, "nothing.deeper")).toBeUndefined();
  });
  it("never reads inherited properties", () => {
    expect(getPath({}, "constructor")).toBeUndefined();
    expect(getPath({ a: {} }, "a.__proto__")).toBeUndefined();
    expect(getPath({ a: [] }, "a.length")).toBeUndefined();
  });
});

describe("renderTemplate and renderValue", () => {
  it("renders values and leaves unresolved placeholders as written", () => {
    expect(renderTemplate("{city}: {weather.current.temp_c} {missing} {missing}", resolve)).toEqual({
      text: "Київ: 21.5 {missing} {missing}",
      unresolved: ["missing"],
    });
  });
  it("shows non-strings as JSON and keeps false and null", () => {
    expect(renderTemplate("{weather.current.tags} {flag} {nothing} {count}", resolve).text).toBe(
      '["sunny",{"uv":3}] false null 3',
    );
  });
  it("keeps malformed placeholders as text", () => {
    expect(renderTemplate("{a..b} {city}", resolve).text).toBe("{a..b} Київ");
  });
  it("gives a lone placeholder its typed value inside a JSON value", () => {
    const unresolved: string[] = [];
    expect(
      renderValue(
        { n: "{count}", q: "in {city}", list: ["{weather.current}", "{gone}"], keep: 7 },
        resolve,
        unresolved,
      ),
    ).toEqual({
      n: 3,
      q: "in Київ",
      list: [{ temp_c: 21.5, tags: ["sunny", { uv: 3 }] }, "{gone}"],
      keep: 7,
    });
    expect(unresolved).toEqual(["gone"]);
  });
  it("stringifies values for text", () => {
    expect(stringifyValue("x")).toBe("x");
    expect(stringifyValue(1n)).toBe("1");
    expect(stringifyValue(undefined)).toBe("");
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(stringifyValue(cyclic)).toBe("[object Object]");
  });
});
