/**
 * A small YAML emitter for JSON data (objects, arrays, strings, numbers, booleans, null), enough for
 * generated manifests. Strings are quoted only when YAML would read them as something else.
 */
type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

const PLAIN = /^[A-Za-z_/][A-Za-z0-9_ ./()'<>,:-]*$/;
const RESERVED = /^(true|false|yes|no|on|off|null|~|y|n)$/i;

function scalar(value: string | number | boolean | null): string {
  if (value === null) return "null";
  if (typeof value !== "string") return String(value);
  const risky = !PLAIN.test(value) || RESERVED.test(value) || value.endsWith(":") || /: |\s#|\s$/.test(value);
  return risky ? JSON.stringify(value) : value;
}

function isEmptyContainer(value: Json): boolean {
  return typeof value === "object" && value !== null && Object.keys(value).length === 0;
}

function emit(value: Json, indent: string, lines: string[], prefix: string): void {
  if (Array.isArray(value)) {
    if (value.length === 0) {
      lines.push(`${prefix} []`.trimStart());
      return;
    }
    if (prefix) lines.push(prefix);
    for (const item of value) {
      if (typeof item === "object" && item !== null && !isEmptyContainer(item)) {
        const sub: string[] = [];
        emit(item, `${indent}  `, sub, "");
        const first = sub[0] ?? "";
        lines.push(`${indent}- ${first.slice(indent.length + 2)}`, ...sub.slice(1));
      } else {
        lines.push(
          `${indent}- ${isEmptyContainer(item) ? (Array.isArray(item) ? "[]" : "{}") : scalar(item as string)}`,
        );
      }
    }
    return;
  }
  if (typeof value === "object" && value !== null) {
    if (isEmptyContainer(value)) {
      lines.push(`${prefix} {}`.trimStart());
      return;
    }
    if (prefix) lines.push(prefix);
    for (const [key, child] of Object.entries(value)) {
      const k = `${indent}${scalar(key)}:`;
      if (typeof child === "object" && child !== null && !isEmptyContainer(child)) {
        emit(child, Array.isArray(child) ? indent : `${indent}  `, lines, k);
      } else if (isEmptyContainer(child)) {
        lines.push(`${k} ${Array.isArray(child) ? "[]" : "{}"}`);
      } else {
        lines.push(`${k} ${scalar(child as string)}`);
      }
    }
    return;
  }
  lines.push(`${prefix} ${scalar(value)}`.trimStart());
}

export function toYaml(value: unknown): string {
  const lines: string[] = [];
  emit(JSON.parse(JSON.stringify(value)) as Json, "", lines, "");
  return lines.join("\n") + "\n";
}
