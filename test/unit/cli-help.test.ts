// Every hasan program answers --help and --version without a cluster or any other flag.
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { promisify } from "node:util";
import { flagHelp, operatorFlags } from "../../operator/config.js";
import { repoRoot } from "../support/target-process.js";

const run = promisify(execFile);
const version = (JSON.parse(readFileSync(`${repoRoot}/package.json`, "utf8")) as { version: string }).version;
const programs = [
  { name: "hasan-operator", main: "dist/operator/main.js" },
  { name: "hasan-target", main: "dist/target/main.js" },
  { name: "hasan-csi", main: "dist/operator/csi/main.js" },
];

for (const p of programs) {
  test(`${p.name} --version prints its name and the package version, exit 0`, async () => {
    const { stdout } = await run(process.execPath, [p.main, "--version"], { cwd: repoRoot });
    assert.equal(stdout, `${p.name} ${version}\n`);
  });

  test(`${p.name} --help prints what it does and its usage on stdout, exit 0`, async () => {
    for (const flag of ["--help", "-h"]) {
      const { stdout, stderr } = await run(process.execPath, [p.main, flag], { cwd: repoRoot });
      assert.match(stdout, new RegExp(`^${p.name} ${version.replace(/\./g, "\\.")}: \\S`));
      assert.match(stdout, new RegExp(`usage: ${p.name}`));
      assert.equal(stderr, "");
    }
  });
}

test("hasan-operator --help describes every flag it takes", () => {
  for (const flag of Object.keys(operatorFlags)) assert.match(flagHelp, new RegExp(`--${flag}\\b`), flag);
});

test("an unknown flag still fails with the usage on stderr and exit 2", async () => {
  const r = await run(process.execPath, ["dist/operator/main.js", "--no-such-flag"], { cwd: repoRoot }).then(
    () => assert.fail("accepted an unknown flag"),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(r.code, 2);
  assert.match(r.stderr, /Unknown option '--no-such-flag'[\s\S]*usage: hasan-operator/);
});
