/**
 * Command-line flags with HASAN_<PREFIX>_<FLAG> environment variables behind them, validated
 * together by one zod schema: what the operator and the CSI driver take the same way.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import type { z } from "zod";

export class ConfigError extends Error {
  override name = "ConfigError";
}

const camel = (flag: string) => flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** The environment variable behind a flag: `HASAN_<PREFIX>_<FLAG>`. */
export function envName(prefix: string, flag: string): string {
  return `HASAN_${prefix}_${flag.toUpperCase().replace(/-/g, "_")}`;
}

/**
 * Flags first, then the environment; an empty value counts as unset. Every problem names its
 * flag, and the usage follows.
 */
export function parseFlagsAndEnv<S extends z.ZodType>(
  argv: string[],
  env: NodeJS.ProcessEnv,
  o: { flags: NonNullable<ParseArgsConfig["options"]>; envPrefix: string; schema: S; usage: string },
): z.infer<S> {
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options: o.flags, strict: true, allowPositionals: false }));
  } catch (e) {
    throw new ConfigError(`${(e as Error).message}\n${o.usage}`);
  }
  const raw: Record<string, unknown> = {};
  for (const flag of Object.keys(o.flags)) {
    const v = values[flag] ?? env[envName(o.envPrefix, flag)];
    if (v !== undefined && v !== "") raw[camel(flag)] = v;
  }
  const parsed = o.schema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map(
      (i) => `  --${kebab(String(i.path[0] ?? "arguments"))}: ${i.message}`,
    );
    throw new ConfigError(`invalid arguments:\n${lines.join("\n")}\n${o.usage}`);
  }
  return parsed.data;
}
