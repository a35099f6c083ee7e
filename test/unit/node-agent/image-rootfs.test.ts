// The local cluster runs the project's pods from the image's unpacked root filesystem: the image's
// top-level directories read-only with the host's /dev, /proc and /sys, the image's Env, Entrypoint,
// Cmd, WorkingDir and USER applied as a kubelet applies them.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import {
  containerArgv,
  containerUser,
  imageRuntime,
  OciImageConfig,
  parseImageUser,
} from "../../../hack/node-agent/pods/image-config.js";
import { containerEnv } from "../../../hack/node-agent/pods/env.js";
import { imageTopLevel, sandboxScript } from "../../../hack/node-agent/pods/sandbox-script.js";
import { Container, Pod } from "../../../hack/node-agent/kube/schemas.js";
import { agentFilesOwner, applyFsGroup } from "../../../hack/node-agent/pods/volume-ownership.js";

// What hack/image/build.sh produces (Dockerfile: WORKDIR /app, USER 65532:65532, ENV, CMD).
const config = OciImageConfig.parse({
  architecture: "amd64",
  config: {
    User: "65532:65532",
    Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NODE_ENV=production"],
    Cmd: ["node", "/app/dist/operator/main.js"],
    WorkingDir: "/app",
  },
});
const image = imageRuntime("/cache/rootfs-1/rootfs", config);

const pod = (securityContext?: Record<string, unknown>, containerSc?: Record<string, unknown>) =>
  Pod.parse({
    metadata: { name: "t-0", namespace: "ns", uid: "u" },
    spec: {
      containers: [{ name: "c", image: "ghcr.io/hasan-dev/hasan:0.1.0", securityContext: containerSc }],
      securityContext,
    },
  });

describe("node agent: the project's image root filesystem", () => {
  it("builds the root from the image's entries read-only and the host's /dev, /proc, /sys", () => {
    const top = imageTopLevel(image.rootfs, [
      { name: "app" },
      { name: "bin", symlink: "usr/bin" },
      { name: "dev" },
      { name: "etc" },
      { name: "proc" },
      { name: "usr" },
    ]);
    assert.deepEqual(top, [
      { name: "app", source: "/cache/rootfs-1/rootfs/app", readOnly: true },
      { name: "bin", symlink: "usr/bin" },
      { name: "dev" },
      { name: "etc", source: "/cache/rootfs-1/rootfs/etc", readOnly: true },
      { name: "proc" },
      { name: "sys" },
      { name: "usr", source: "/cache/rootfs-1/rootfs/usr", readOnly: true },
    ]);
    const script = sandboxScript({
      root: "/run/x/root",
      scratch: "/run/x/scratch",
      hostname: "t-0",
      topLevel: top,
      mounts: [],
      workingDir: image.workingDir,
      env: { PATH: "/usr/bin" },
      argv: ["node", "/app/dist/target/main.js"],
      user: { uid: 65532, gid: 65532, groups: [1000] },
    });
    assert.match(
      script,
      /mkdir "\$R"\/'usr' && mount --rbind '\/cache\/rootfs-1\/rootfs\/usr' "\$R"\/'usr'\nmount -o remount,bind,ro "\$R"\/'usr'\n/,
    );
    assert.match(script, /mount --rbind \/'proc' "\$R"\/'proc'\n(?!mount -o remount)/);
    assert.match(
      script,
      /exec chroot --userspec=65532:65532 --groups=65532,1000 "\$R" \/usr\/bin\/env -i -C '\/app' 'PATH=\/usr\/bin' 'node' '\/app\/dist\/target\/main.js'/,
    );
  });

  it("reads Env, Cmd, WorkingDir and a numeric USER from the OCI config", () => {
    assert.deepEqual(image.env, {
      PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      NODE_ENV: "production",
    });
    assert.deepEqual(image.cmd, ["node", "/app/dist/operator/main.js"]);
    assert.deepEqual(image.entrypoint, []);
    assert.equal(image.workingDir, "/app");
    assert.deepEqual(image.user, { uid: 65532, gid: 65532 });
    assert.deepEqual(parseImageUser("1000"), { uid: 1000, gid: 1000 });
    assert.deepEqual(parseImageUser(""), { uid: 0, gid: 0 });
    assert.throws(() => parseImageUser("nonroot"), /not numeric/);
    assert.equal(imageRuntime("/r", OciImageConfig.parse({ config: { Env: null } })).workingDir, "/");
  });

  it("command replaces Entrypoint and Cmd, args replace Cmd only", () => {
    const withEntry = { ...image, entrypoint: ["/tini", "--"] };
    assert.deepEqual(containerArgv(image), ["node", "/app/dist/operator/main.js"]);
    assert.deepEqual(containerArgv(image, ["node", "/app/dist/target/main.js"], ["serve"]), [
      "node",
      "/app/dist/target/main.js",
      "serve",
    ]);
    assert.deepEqual(containerArgv(image, ["node", "x.js"]), ["node", "x.js"]);
    assert.deepEqual(containerArgv(withEntry, undefined, ["a"]), ["/tini", "--", "a"]);
    assert.deepEqual(containerArgv(withEntry), ["/tini", "--", "node", "/app/dist/operator/main.js"]);
  });

  it("the image's Env lies under the container's and replaces the default PATH", () => {
    const c = Container.parse({ name: "c", env: [{ name: "NODE_ENV", value: "test" }] });
    const r = containerEnv(c, {
      pod: pod(),
      podIP: "10.0.0.1",
      hostIP: "127.0.10.1",
      configMaps: new Map(),
      secrets: new Map(),
      serviceEnv: {},
      imageEnv: { PATH: "/opt/bin", NODE_ENV: "production", UV_THREADPOOL_SIZE: "16" },
    });
    assert.equal(r.env.PATH, "/opt/bin");
    assert.equal(r.env.NODE_ENV, "test");
    assert.equal(r.env.UV_THREADPOOL_SIZE, "16");
  });

  it("runs as the image's user unless the pod or container says otherwise", () => {
    const p0 = pod();
    assert.deepEqual(containerUser(p0, p0.spec.containers[0]!, image.user), {
      uid: 65532,
      gid: 65532,
      groups: [],
    });
    const p1 = pod({ runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532, supplementalGroups: [5, 5] });
    assert.deepEqual(containerUser(p1, p1.spec.containers[0]!, image.user), {
      uid: 65532,
      gid: 65532,
      groups: [5],
    });
    const p2 = pod({ runAsUser: 1000, fsGroup: 2000 });
    assert.deepEqual(containerUser(p2, p2.spec.containers[0]!, image.user), {
      uid: 1000,
      gid: 0,
      groups: [2000],
    });
    const p3 = pod({ runAsUser: 1000 }, { runAsUser: 0 });
    assert.equal(containerUser(p3, p3.spec.containers[0]!, image.user).uid, 0);
  });

  it("gives fsGroup the pod's writable volumes, not its hostPath ones", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "hasan-fsgroup-"));
    try {
      const data = path.join(dir, "pv");
      const host = path.join(dir, "host");
      mkdirSync(path.join(data, "sub"), { recursive: true, mode: 0o755 });
      writeFileSync(path.join(data, "sub", "lun"), "x", { mode: 0o644 });
      mkdirSync(host, { mode: 0o755 });
      const p = Pod.parse({
        metadata: { name: "t-0", uid: "u" },
        spec: {
          containers: [],
          securityContext: { runAsUser: 65532, fsGroup: 65532 },
          volumes: [
            { name: "data", persistentVolumeClaim: { claimName: "data" } },
            { name: "host", hostPath: { path: host } },
          ],
        },
      });
      await applyFsGroup(
        p,
        new Map([
          ["data", data],
          ["host", host],
        ]),
      );
      const d = statSync(path.join(data, "sub"));
      assert.equal(d.gid, 65532);
      assert.equal(d.mode & 0o2070, 0o2070, "group-writable, setgid");
      const f = statSync(path.join(data, "sub", "lun"));
      assert.equal(f.gid, 65532);
      assert.equal(f.mode & 0o060, 0o060);
      assert.equal(statSync(host).gid, process.getgid?.(), "hostPath untouched");
      assert.deepEqual(agentFilesOwner(p, image.user), { uid: 65532, gid: 65532 });
      assert.equal(agentFilesOwner(pod({ runAsUser: 0 }), image.user), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
