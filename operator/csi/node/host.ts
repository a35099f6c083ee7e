import {
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rmdir,
  stat,
  statfs,
  unlink,
  writeFile,
} from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { FILESYSTEMS } from "../capabilities.js";

export type PathKind = "directory" | "file" | "block" | "other";

export interface VolumeStats {
  totalBytes: bigint;
  availableBytes: bigint;
  usedBytes: bigint;
  totalInodes: bigint;
  freeInodes: bigint;
  usedInodes: bigint;
}

/** The few file system operations the node service needs, behind an interface for tests. */
export interface NodeFs {
  kind(p: string): Promise<PathKind | undefined>;
  mkdirp(p: string): Promise<void>;
  /** Creates an empty file (the target of a block volume's bind mount) if none is there. */
  touch(p: string): Promise<void>;
  /** Removes a file or an empty directory; a missing path is fine. */
  remove(p: string): Promise<void>;
  statfs(p: string): Promise<VolumeStats>;
}

export class HostFs implements NodeFs {
  async kind(p: string): Promise<PathKind | undefined> {
    try {
      const s = await stat(p);
      if (s.isDirectory()) return "directory";
      if (s.isFile()) return "file";
      if (s.isBlockDevice()) return "block";
      return "other";
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  async mkdirp(p: string): Promise<void> {
    await mkdir(p, { recursive: true });
  }

  async touch(p: string): Promise<void> {
    await mkdir(path.dirname(p), { recursive: true });
    await (await open(p, "a")).close();
  }

  async remove(p: string): Promise<void> {
    const k = await this.kind(p);
    // rmdir, never a recursive removal: a directory with contents is a mount still in place.
    if (k === "directory") await rmdir(p);
    else if (k !== undefined) await unlink(p);
  }

  async statfs(p: string): Promise<VolumeStats> {
    const s = await statfs(p, { bigint: true });
    return {
      totalBytes: s.blocks * s.bsize,
      availableBytes: s.bavail * s.bsize,
      usedBytes: (s.blocks - s.bfree) * s.bsize,
      totalInodes: s.files,
      freeInodes: s.ffree,
      usedInodes: s.files - s.ffree,
    };
  }
}

/** What NodeUnstageVolume and the calls after staging need to know of a staged volume. */
export const StagedVolumeSchema = z.object({
  volumeId: z.string().min(1),
  iqn: z.string().min(1),
  portals: z.array(z.string().min(1)).min(1),
  wwid: z.string().min(1),
  accessType: z.enum(["mount", "block"]),
  fsType: z.enum(FILESYSTEMS).optional(),
});
export type StagedVolume = z.infer<typeof StagedVolumeSchema>;

/** Staged volumes by volume id: NodeUnstageVolume gets only the id and the staging path. */
export interface StagingStore {
  read(volumeId: string): Promise<StagedVolume | undefined>;
  write(v: StagedVolume): Promise<void>;
  delete(volumeId: string): Promise<void>;
  /** Every staged volume (the session repair goes through them). */
  list(): Promise<StagedVolume[]>;
}

/** One JSON file per volume under a directory of the node (a hostPath, so it outlives the pod). */
export class FileStagingStore implements StagingStore {
  constructor(private readonly dir: string) {}

  private file(volumeId: string): string {
    return path.join(this.dir, `${Buffer.from(volumeId).toString("base64url")}.json`);
  }

  async read(volumeId: string): Promise<StagedVolume | undefined> {
    let text: string;
    try {
      text = await readFile(this.file(volumeId), "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
    return StagedVolumeSchema.parse(JSON.parse(text));
  }

  async write(v: StagedVolume): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const f = this.file(v.volumeId);
    await writeFile(`${f}.tmp`, JSON.stringify(v));
    await rename(`${f}.tmp`, f);
  }

  async delete(volumeId: string): Promise<void> {
    await unlink(this.file(volumeId)).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "ENOENT") throw e;
    });
  }

  async list(): Promise<StagedVolume[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw e;
    }
    const out: StagedVolume[] = [];
    for (const n of names.filter((n) => n.endsWith(".json"))) {
      const id = Buffer.from(n.slice(0, -".json".length), "base64url").toString();
      const v = await this.read(id);
      if (v) out.push(v);
    }
    return out;
  }
}
