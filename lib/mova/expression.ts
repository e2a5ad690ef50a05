/**
 * Expressions in a rule's `variable` (the specification's form): numbers, quoted strings,
 * `true`/`false`/`null`, dotted paths, `+ - * /`, unary minus and parentheses. The text is
 * parsed into a syntax tree by jsep and evaluated here node by node over a whitelist of
 * node types: nothing is ever executed as code, nothing is called, and no property of a
 * prototype is read (paths go through the run's resolver, which reads own properties only).
 * A value an expression cannot produce (a missing variable, arithmetic on text, a result
 * that is not a finite number) is "no value", never an exception.
 */
import jsep from "jsep";
import { getPath, isPath, type Resolver, stringifyValue } from "./placeholders.ts";

/** Longer expressions are refused: they are not what a rule needs, and they cost. */
export const MAX_EXPRESSION_LENGTH = 1_000;
/** Deeper trees (or parentheses) are refused before anything recursive runs. */
export const MAX_EXPRESSION_DEPTH = 48;
const CACHE_LIMIT = 2_000;
/** Path segments that could name an object's machinery rather than data. */
const FORBIDDEN_SEGMENTS = new Set(["__proto__", "prototype", "constructor"]);
/** Roots an expression may not read: a secret must never reach a condition. */
const FORBIDDEN_ROOTS = new Set(["secrets"]);

type Tree =
  | { kind: "literal"; value: string | number | boolean | null }
  | { kind: "path"; path: string }
  | { kind: "negate"; operand: Tree }
  | { kind: "binary"; operator: "+" | "-" | "*" | "/"; left: Tree; right: Tree };

/** A rule's `variable`, ready to evaluate: a plain path, or an expression's tree. */
export type Operand = { kind: "path"; path: string } | { kind: "expression"; tree: Tree };

export type CompileResult = { ok: true; operand: Operand } | { ok: false; error: string };

class Refused extends Error {}

const cache = new Map<string, CompileResult>();

/** The deepest parenthesis nesting of a text (quotes are not special here: a bound, not a parse). */
function parenthesisDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  for (const ch of text) {
    if (ch === "(" || ch === "[") deepest = Math.max(deepest, ++depth);
    else if (ch === ")" || ch === "]") depth = Math.max(0, depth - 1);
  }
  return deepest;
}

/** The path a member chain spells (`a.b[0]` is `a.b.0`). */
function memberPath(node: jsep.Expression, depth: number): string {
  if (depth > MAX_EXPRESSION_DEPTH) throw new Refused("the expression is nested too deeply");
  if (node.type === "Identifier") return String(node.name);
  if (node.type !== "MemberExpression") throw new Refused(`${node.type} is not allowed in a path`);
  const member = node as jsep.MemberExpression;
  if (member.optional) throw new Refused("optional chaining is not allowed");
  const base = memberPath(member.object, depth + 1);
  let segment: string;
  if (!member.computed && member.property.type === "Identifier") segment = String(member.property.name);
  else if (member.computed && member.property.type === "Literal") {
    const value = (member.property as jsep.Literal).value;
    if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) segment = String(value);
    else if (typeof value === "string" && value !== "" && !value.includes(".")) segment = value;
    else throw new Refused("an index must be a whole number or a name");
  } else throw new Refused("an index must be a literal");
  return `${base}.${segment}`;
}

function forbiddenSegment(path: string): string | undefined {
  return path.split(".").find((segment) => FORBIDDEN_SEGMENTS.has(segment));
}

function checkPath(path: string): string {
  const root = path.split(".")[0] ?? "";
  if (FORBIDDEN_ROOTS.has(root)) throw new Refused(`an expression cannot read \`${root}\``);
  const forbidden = forbiddenSegment(path);
  if (forbidden) throw new Refused(`the name \`${forbidden}\` is not allowed`);
  return path;
}

/** A plain path, unless it names an object's machinery. */
function plainPath(path: string): CompileResult {
  const forbidden = forbiddenSegment(path);
  if (forbidden) return { ok: false, error: `the name \`${forbidden}\` is not allowed` };
  return { ok: true, operand: { kind: "path", path } };
}

/** jsep's tree to ours, refusing every node type not on the whitelist. */
function toTree(node: jsep.Expression, depth: number): Tree {
  if (depth > MAX_EXPRESSION_DEPTH) throw new Refused("the expression is nested too deeply");
  switch (node.type) {
    case "Literal": {
      const value = (node as jsep.Literal).value;
      if (
        typeof value === "string" ||
        typeof value === "number" ||
        typeof value === "boolean" ||
        value === null
      )
        return { kind: "literal", value };
      throw new Refused("this kind of literal is not allowed");
    }
    case "Identifier":
    case "MemberExpression":
      return { kind: "path", path: checkPath(memberPath(node, depth)) };
    case "UnaryExpression": {
      const unary = node as jsep.UnaryExpression;
      if (unary.operator !== "-") throw new Refused(`the operator \`${unary.operator}\` is not allowed`);
      return { kind: "negate", operand: toTree(unary.argument, depth + 1) };
    }
    case "BinaryExpression": {
      const binary = node as jsep.BinaryExpression;
      const operator = binary.operator;
      if (operator !== "+" && operator !== "-" && operator !== "*" && operator !== "/")
        throw new Refused(`the operator \`${operator}\` is not allowed (only + - * /)`);
      return {
        kind: "binary",
        operator,
        left: toTree(binary.left, depth + 1),
        right: toTree(binary.right, depth + 1),
      };
    }
    case "CallExpression":
      throw new Refused("function calls are not allowed");
    default:
      throw new Refused(`${node.type} is not allowed`);
  }
}

function compileUncached(source: string): CompileResult {
  if (isPath(source)) return plainPath(source);
  // Some documents write the variable as a placeholder, `{order.total}`: it is that path.
  const braced = /^\{([^{}]*)\}$/.exec(source.trim())?.[1];
  if (braced !== undefined && isPath(braced)) return plainPath(braced);
  if (source.trim() === "") return { ok: false, error: "the expression is empty" };
  if (source.length > MAX_EXPRESSION_LENGTH)
    return { ok: false, error: `the expression is longer than ${MAX_EXPRESSION_LENGTH} characters` };
  if (parenthesisDepth(source) > MAX_EXPRESSION_DEPTH)
    return { ok: false, error: "the expression is nested too deeply" };
  try {
    return { ok: true, operand: { kind: "expression", tree: toTree(jsep(source), 0) } };
  } catch (error) {
    if (error instanceof RangeError) return { ok: false, error: "the expression is nested too deeply" };
    const message = error instanceof Error ? error.message : String(error);
    return { ok: false, error: message };
  }
}

/** A rule's `variable` as a path or an expression, or why it is neither. Never throws. */
export function compileOperand(source: string): CompileResult {
  const cached = cache.get(source);
  if (cached) return cached;
  const result = compileUncached(source);
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(source, result);
  return result;
}

/** The paths an operand reads (for the validator's placeholder check). */
export function operandPaths(operand: Operand): string[] {
  if (operand.kind === "path") return [operand.path];
  const paths: string[] = [];
  const walk = (tree: Tree): void => {
    if (tree.kind === "path") paths.push(tree.path);
    else if (tree.kind === "negate") walk(tree.operand);
    else if (tree.kind === "binary") {
      walk(tree.left);
      walk(tree.right);
    }
  };
  walk(operand.tree);
  return paths;
}

/** "No value": the expression cannot be evaluated. */
const NONE = Symbol("none");
type Result = unknown | typeof NONE;

/** A finite number, or a string that reads as one (trimmed, not empty); else undefined. */
export function asNumber(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
  if (typeof value === "string" && value.trim() !== "") {
    const n = Number(value);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

function finite(value: number): Result {
  return Number.isFinite(value) ? value : NONE;
}

function evaluateTree(tree: Tree, resolve: Resolver): Result {
  switch (tree.kind) {
    case "literal":
      return typeof tree.value === "number" ? finite(tree.value) : tree.value;
    case "path": {
      const value = resolve(tree.path);
      return value === undefined ? NONE : value;
    }
    case "negate": {
      const operand = evaluateTree(tree.operand, resolve);
      const n = operand === NONE ? undefined : asNumber(operand);
      return n === undefined ? NONE : finite(-n);
    }
    case "binary": {
      const left = evaluateTree(tree.left, resolve);
      if (left === NONE) return NONE;
      const right = evaluateTree(tree.right, resolve);
      if (right === NONE) return NONE;
      if (tree.operator === "+") {
        if (typeof left === "number" && typeof right === "number") return finite(left + right);
        return stringifyValue(left) + stringifyValue(right);
      }
      const a = asNumber(left);
      const b = asNumber(right);
      if (a === undefined || b === undefined) return NONE;
      if (tree.operator === "-") return finite(a - b);
      if (tree.operator === "*") return finite(a * b);
      return b === 0 ? NONE : finite(a / b);
    }
  }
}

export type OperandValue = { ok: true; value: unknown } | { ok: false };

/**
 * The value of a rule's `variable`: a path's value (possibly undefined: no value), or an
 * expression's. `ok: false` when it cannot be evaluated at all (it does not compile, or
 * the expression has no value). Never throws.
 */
export function readOperand(source: string, resolve: Resolver): OperandValue {
  const compiled = compileOperand(source);
  if (!compiled.ok) return { ok: false };
  const { operand } = compiled;
  if (operand.kind === "path") return { ok: true, value: resolve(operand.path) };
  try {
    const value = evaluateTree(operand.tree, resolve);
    return value === NONE ? { ok: false } : { ok: true, value };
  } catch {
    // A resolver that throws (it should not) makes the rule unevaluable, never a failed run.
    return { ok: false };
  }
}

/** Evaluates an expression over plain variables (for tests and tools without a run). */
export function evaluateExpression(source: string, variables: Record<string, unknown>): OperandValue {
  return readOperand(source, (path) => getPath(variables, path));
}
