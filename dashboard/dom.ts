/**
 * Building elements without innerHTML: every text the API returns (step ids, messages, error
 * text) goes in as a text node, so nothing a document holds can become markup.
 */
type Child = Node | string | number | null | undefined | false;
type Attributes = Record<string, string | number | boolean | undefined | ((event: Event) => void)>;

function build<E extends Element>(element: E, attributes: Attributes, children: Child[]): E {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") element.addEventListener(name.replace(/^on/, ""), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  return build(document.createElement(tag), attributes, children);
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function s<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): SVGElementTagNameMap[K] {
  return build(document.createElementNS(SVG_NS, tag) as SVGElementTagNameMap[K], attributes, children);
}

export const percent = (value: number | null | undefined) =>
  value === null || value === undefined ? "–" : `${Math.round(value * 1000) / 10}%`;

export const millis = (value: number | null | undefined) =>
  value === null || value === undefined
    ? "–"
    : value >= 1000
      ? `${(value / 1000).toFixed(1)} s`
      : `${Math.round(value)} ms`;

export const dollars = (value: number | null | undefined) =>
  value === null || value === undefined ? "–" : `$${value < 0.01 ? value.toPrecision(2) : value.toFixed(2)}`;
