/**
 * What every hasan program answers before it parses its flags: --help (usage on stdout, exit 0)
 * and --version (the package version). The operator, the target and the CSI driver share it.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The version in package.json: beside dist/ in the image (/app) and in the repository. */
export function packageVersion(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // dist/target/cli-info.js → ../../package.json
  try {
    const v = (
      JSON.parse(readFileSync(path.resolve(here, "../../package.json"), "utf8")) as { version?: unknown }
    ).version;
    if (typeof v === "string") return v;
  } catch {
    // reported as unknown below
  }
  return "unknown";
}

export interface CliInfo {
  /** program name, as in the usage */
  name: string;
  /** one line: what the program does */
  summary: string;
  usage: string;
  /** closing lines of --help, e.g. where environment variables come in */
  notes?: string;
}

/** The text to print for --help / -h or --version, or undefined when argv asks for neither. */
export function helpOrVersion(argv: readonly string[], info: CliInfo): string | undefined {
  if (argv.includes("--version")) return `${info.name} ${packageVersion()}\n`;
  if (argv.includes("--help") || argv.includes("-h")) {
    return `${info.name} ${packageVersion()}: ${info.summary}\n\n${info.usage}\n${info.notes ? `\n${info.notes}\n` : ""}`;
  }
  return undefined;
}
