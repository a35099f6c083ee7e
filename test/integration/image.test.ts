// The container image as users run it: built by `make image`'s script into an OCI archive, loaded
// from the archive into podman and run there. The target serves a LUN to real initiators (libiscsi,
// qemu-io) from a data file on a mounted volume; the operator and the CSI driver answer --version
// and --help; all run as uid 65532 without the Pulumi component's dependencies.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  chownSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  buildImageArchive,
  imageName,
  loadImageArchive,
  packageVersion,
  podmanRunFlags,
  removeContainer,
  runInImage,
} from "../support/image.js";
import { freePort, run, spawnLogged, waitFor } from "../support/processes.js";
import { qemuIoOk } from "../support/qemu.js";

const IMAGE_UID = 65532;
const version = packageVersion();
const containers: string[] = [];
let n = 0;
const containerName = () => {
  const name = `hasan-image-test-${process.pid}-${++n}`;
  containers.push(name);
  return name;
};

let archive = "";
let image = "";

before(async () => {
  const built = await buildImageArchive();
  archive = built.archive;
  image = await loadImageArchive(archive);
});

after(async () => {
  for (const name of containers) await removeContainer(name);
});

describe("the image archive", () => {
  it(`is named ${imageName(version)} and runs as ${IMAGE_UID}`, async () => {
    const r = await run("skopeo", ["inspect", "--config", `oci-archive:${archive}`]);
    assert.equal(r.code, 0, r.stderr);
    const config = JSON.parse(r.stdout) as { config?: { User?: string; Cmd?: string[] } };
    assert.equal(config.config?.User, `${IMAGE_UID}:${IMAGE_UID}`);
    assert.deepEqual(config.config?.Cmd, ["node", "/app/dist/operator/main.js"]);
    const names = await run("podman", ["image", "inspect", "--format", "{{.RepoTags}}", image]);
    assert.match(names.stdout, new RegExp(imageName(version).replace(/[.:/]/g, "\\$&")));
    const size = await run("podman", ["image", "inspect", "--format", "{{.Size}}", image]);
    console.log(`image ${imageName(version)}: ${(Number(size.stdout) / 1e6).toFixed(0)} MB unpacked`);
  });

  it("has the host tools the target and the CSI node plugin call: fallocate, flock, nsenter", async () => {
    // fallocate punches holes for UNMAP, flock holds the data file's lock, nsenter runs the node
    // plugin's iscsiadm and mount in the host's namespaces (--host-commands=nsenter).
    for (const tool of ["fallocate", "flock", "nsenter"]) {
      const r = await runInImage(image, containerName(), [tool, "--version"]);
      assert.equal(r.code, 0, `${tool}: ${r.stdout}${r.stderr}`);
      assert.match(r.stdout, /util-linux/);
    }
  });

  it("holds no @pulumi packages and no Pulumi component, and Node.js 20 or later", async () => {
    const r = await runInImage(image, containerName(), [
      "node",
      "-e",
      `const fs = require("node:fs");
       console.log(JSON.stringify({
         uid: process.getuid(),
         node: process.versions.node,
         pulumi: fs.existsSync("/app/node_modules/@pulumi"),
         component: fs.existsSync("/app/dist/operator/pulumi"),
         grpc: fs.existsSync("/app/node_modules/@grpc/grpc-js"),
       }));`,
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const seen = JSON.parse(r.stdout) as Record<string, unknown>;
    assert.deepEqual(
      { ...seen, node: Number(String(seen.node).split(".")[0]) >= 20 },
      { uid: IMAGE_UID, node: true, pulumi: false, component: false, grpc: true },
    );
  });
});

describe("the target in the image", () => {
  it("serves a LUN from a mounted data file: discovery, INQUIRY, write and verified read", async () => {
    const work = mkdtempSync(join(tmpdir(), "hasan-image-target-"));
    const dir = join(work, "data");
    mkdirSync(dir);
    // The image runs as 65532, which must own the volume to create the data file in it.
    chownSync(dir, IMAGE_UID, IMAGE_UID);
    const port = await freePort();
    const agentPort = await freePort();
    const iqn = `iqn.2026-11.dev.hasan:image-${port}`;
    const name = containerName();
    const logFile = join(work, "target.log");
    const container = spawnLogged(
      "podman",
      [
        ...podmanRunFlags(name),
        "--volume",
        `${dir}:/data`,
        image,
        "node",
        "/app/dist/target/main.js",
        "serve",
        "--data",
        "/data/lun0.img",
        "--size",
        "64Mi",
        "--iqn",
        iqn,
        "--listen",
        `127.0.0.1:${port}`,
        "--agent-listen",
        `127.0.0.1:${agentPort}`,
      ],
      logFile,
    );
    try {
      await waitFor(
        `the target in the image to be ready (log: ${logFile})`,
        async () => {
          if (container.exitCode !== null)
            throw new Error(`podman run exited with ${container.exitCode}: ${readFileSync(logFile, "utf8")}`);
          const r = await fetch(`http://127.0.0.1:${agentPort}/readyz`);
          return r.status === 200;
        },
        120_000,
        200,
      );

      const ls = await run("iscsi-ls", ["-s", `iscsi://127.0.0.1:${port}`]);
      assert.equal(ls.code, 0, ls.stdout + ls.stderr);
      assert.match(
        ls.stdout,
        new RegExp(`Target:${iqn.replace(/\./g, "\\.")} Portal:127\\.0\\.0\\.1:${port}`),
      );
      assert.match(ls.stdout, /Lun:0\s+Type:DIRECT_ACCESS \(Size:6[34]M\)/);

      const url = `iscsi://127.0.0.1:${port}/${iqn}/0`;
      const inq = await run("iscsi-inq", [url]);
      assert.equal(inq.code, 0, inq.stdout + inq.stderr);
      assert.match(inq.stdout, /Vendor:HASAN/);

      await qemuIoOk(url, ["write -P 0xa5 1M 1M", "read -P 0xa5 1M 1M", "read -P 0 0 1M"]);
    } finally {
      await run("podman", ["stop", "--time", "20", name], { timeoutMs: 60_000 });
    }
    assert.equal(
      container.exitCode ?? (await new Promise((r) => container.once("exit", r))),
      0,
      readFileSync(logFile, "utf8"),
    );

    // The write went through to the volume, into a file the image's user created.
    const dataFile = join(dir, "lun0.img");
    assert.equal(statSync(dataFile).uid, IMAGE_UID);
    const buf = Buffer.alloc(1 << 20);
    const fd = openSync(dataFile, "r");
    try {
      readSync(fd, buf, 0, buf.length, 1 << 20);
    } finally {
      closeSync(fd);
    }
    assert.ok(
      buf.every((b) => b === 0xa5),
      "the data file holds the pattern written through iSCSI",
    );
    rmSync(work, { recursive: true, force: true });
  });
});

describe("the operator and the CSI driver in the image", () => {
  it("the operator answers --version and --help", async () => {
    const v = await runInImage(image, containerName(), ["node", "/app/dist/operator/main.js", "--version"]);
    assert.equal(v.code, 0, v.stderr);
    assert.equal(v.stdout, `hasan-operator ${version}\n`);
    const h = await runInImage(image, containerName(), ["node", "/app/dist/operator/main.js", "--help"]);
    assert.equal(h.code, 0, h.stderr);
    assert.match(h.stdout, /^hasan-operator .*: reconciles HASanTargets/);
    assert.match(h.stdout, /--kubeconfig/);
  });

  it("the operator started without a cluster exits at once, saying what it looked for", async () => {
    const r = await runInImage(image, containerName(), ["node", "/app/dist/operator/main.js"], 60_000);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stdout + r.stderr, /no Kubernetes cluster to talk to: no --kubeconfig, no KUBECONFIG/);
  });

  it("the CSI driver answers --version", async () => {
    const v = await runInImage(image, containerName(), [
      "node",
      "/app/dist/operator/csi/main.js",
      "--version",
    ]);
    assert.equal(v.code, 0, v.stderr);
    assert.equal(v.stdout, `hasan-csi ${version}\n`);
  });

  it("the target answers --version", async () => {
    const v = await runInImage(image, containerName(), ["node", "/app/dist/target/main.js", "--version"]);
    assert.equal(v.code, 0, v.stderr);
    assert.equal(v.stdout, `hasan-target ${version}\n`);
  });
});
