/**
 * The parts of a PromQL expression a test checks one by one against a live Prometheus: the operands
 * of its top-level set operators (and, or, unless) with the labels they are joined on, an operand
 * without its final comparison with a number (so a condition that is false still shows whether its
 * series exist), the labels it groups by, and its metric selectors. A small scanner, not a parser:
 * enough for the chart's dashboard and alerts, which unit tests pin.
 */

/** Calls `visit(i, depth)` for each character outside quoted strings, with the bracket depth before it. */
function scan(expr: string, visit: (i: number, depth: number) => boolean | void): void {
  let depth = 0;
  let quote: string | undefined;
  for (let i = 0; i < expr.length; i++) {
    const ch = expr[i]!;
    if (quote) {
      if (ch === "\\") i++;
      else if (ch === quote) quote = undefined;
      continue;
    }
    if (ch === '"' || ch === "'" || ch === "`") {
      quote = ch;
      continue;
    }
    if (visit(i, depth) === true) return;
    if ("({[".includes(ch)) depth++;
    else if (")}]".includes(ch)) depth--;
  }
}

/** The expression without parentheses that enclose all of it. */
export function unwrap(expr: string): string {
  let e = expr.trim();
  for (;;) {
    if (!e.startsWith("(") || !e.endsWith(")")) return e;
    let closesAtEnd = true;
    scan(e, (i, depth) => {
      if (e[i] === ")" && depth === 1 && i < e.length - 1) {
        closesAtEnd = false;
        return true;
      }
      return false;
    });
    if (!closesAtEnd) return e;
    e = e.slice(1, -1).trim();
  }
}

const SET_OP = /^\s+(and|or|unless)\b(\s+on\s*\(([^)]*)\)|\s+ignoring\s*\([^)]*\))?\s*/;

const labelList = (s: string) =>
  s
    .split(",")
    .map((l) => l.trim())
    .filter(Boolean);

export interface Operand {
  expr: string;
  /** labels of the on (…) clauses next to this operand */
  joinLabels: string[];
}

/** The operands of the expression's top-level and/or/unless. */
export function setOperands(expr: string): Operand[] {
  const e = unwrap(expr);
  const cuts: { start: number; end: number; on: string[] }[] = [];
  scan(e, (i, depth) => {
    if (depth !== 0 || !/\s/.test(e[i]!)) return;
    if (cuts.length && i < cuts[cuts.length - 1]!.end) return;
    const m = SET_OP.exec(e.slice(i));
    if (m) cuts.push({ start: i, end: i + m[0].length, on: m[3] === undefined ? [] : labelList(m[3]) });
  });
  const out: Operand[] = [];
  let from = 0;
  cuts.forEach((c, k) => {
    out.push({
      expr: unwrap(e.slice(from, c.start)),
      joinLabels: [...(cuts[k - 1]?.on ?? []), ...c.on],
    });
    from = c.end;
  });
  out.push({ expr: unwrap(e.slice(from)), joinLabels: cuts[cuts.length - 1]?.on ?? [] });
  return out;
}

const NUMBER_TAIL = /^\s*(bool\s+)?[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$/;

/**
 * The operand without a final comparison with a number (`X == 1` → `X`), and `absent(X)` → X: the
 * series whose value the condition tests.
 */
export function withoutComparison(operand: string): string {
  let e = unwrap(operand);
  const absent = /^absent\s*\(([\s\S]*)\)$/.exec(e);
  if (absent && unwrap(`(${absent[1]!})`) === absent[1]!.trim()) e = unwrap(absent[1]!);
  let cut = -1;
  scan(e, (i, depth) => {
    if (depth !== 0) return;
    const two = e.slice(i, i + 2);
    if (["==", "!=", ">=", "<="].includes(two) || ((e[i] === ">" || e[i] === "<") && e[i + 1] !== "=")) {
      if (NUMBER_TAIL.test(e.slice(i + (two[1] === "=" ? 2 : 1)))) cut = i;
    }
  });
  return cut < 0 ? e : unwrap(e.slice(0, cut));
}

/** Labels named in the expression's `by (…)` and `on (…)` clauses, except histogram buckets' `le`. */
export function groupingLabels(expr: string): string[] {
  const out = new Set<string>();
  for (const m of expr.matchAll(/\b(by|on)\s*\(([^)]*)\)/g)) {
    for (const l of labelList(m[2]!)) if (l !== "le") out.add(l);
  }
  return [...out];
}

const KEYWORDS = new Set([
  "and",
  "or",
  "unless",
  "bool",
  "offset",
  "by",
  "on",
  "ignoring",
  "without",
  "inf",
  "nan",
]);

/** The metric selectors (`name{matchers}`) the expression reads. */
export function metricSelectors(expr: string): string[] {
  const e = expr
    .replace(/\b(by|on|ignoring|without|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/\[[^\]]*\]/g, "");
  const out = new Set<string>();
  for (const m of e.matchAll(/(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?(\s*\()?/g)) {
    if (m[3] !== undefined || KEYWORDS.has(m[1]!.toLowerCase())) continue;
    out.add(`${m[1]!}${m[2] ?? ""}`);
  }
  return [...out];
}
