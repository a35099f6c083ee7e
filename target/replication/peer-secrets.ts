/**
 * The peer secrets a node accepts, and their rotation without downtime.
 *
 * A node normally accepts one secret: the content of `--peer-secret-file`. Kubernetes updates a
 * mounted Secret in place (the kubelet writes the new content into a fresh directory and swaps the
 * `..data` symlink), and the two pods of a pair see the new value at different times, up to a
 * minute or two apart. So when the file changes, the node keeps accepting the previous value next
 * to the new one, and a link that drops in between reconnects with whichever secret both nodes
 * hold. The previous value goes once the partner proves the new one, or after a grace time at the
 * latest (an old secret must not stay valid for ever). An established link is not disturbed: the
 * secrets only authenticate new connections.
 */
import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "../log.js";
import { secretProblem } from "../secret-rules.js";
import { MAX_PEER_SECRETS } from "./peer-auth.js";

export const DEFAULT_ROTATION_GRACE_MS = 10 * 60_000;
const DEFAULT_POLL_MS = 2000;

export interface PeerSecretsOptions {
  /** how long a previous secret stays accepted after a change (default 10 minutes) */
  graceMs?: number;
  logger?: Logger;
  now?: () => number;
}

/** The file's content as the secret: UTF-8, without one trailing newline (as the target's flags read it). */
export function secretFromText(text: string): Buffer {
  return Buffer.from(text.replace(/\r?\n$/, ""), "utf8");
}

export class PeerSecrets {
  private current: Buffer;
  private previous: { secret: Buffer; until: number } | null = null;
  private watcher: FSWatcher | null = null;
  private poll: NodeJS.Timeout | null = null;
  private reading = false;
  private rereadAgain = false;
  private lastReadError: string | null = null;
  private readonly graceMs: number;
  private readonly now: () => number;
  /** Where the secrets come from, for messages ("--peer-secret-file PATH"). */
  source: string | undefined;

  constructor(
    initial: Buffer,
    private readonly o: PeerSecretsOptions = {},
  ) {
    if (initial.length === 0) throw new Error("the peer secret is empty");
    this.current = initial;
    this.graceMs = o.graceMs ?? DEFAULT_ROTATION_GRACE_MS;
    this.now = o.now ?? Date.now;
  }

  /** A fixed secret (a string is taken as UTF-8), or the given set as it is. */
  static of(s: Buffer | string | PeerSecrets): PeerSecrets {
    if (s instanceof PeerSecrets) return s;
    return new PeerSecrets(typeof s === "string" ? Buffer.from(s, "utf8") : s);
  }

  /** The secrets accepted now, the current one first; at most MAX_PEER_SECRETS. */
  accepted(): Buffer[] {
    const p = this.previous;
    if (p && this.now() >= p.until) {
      this.previous = null;
      this.o.logger?.info(
        { source: this.source, graceSeconds: Math.round(this.graceMs / 1000) },
        "peer secret rotation: grace time over; the previous peer secret is no longer accepted",
      );
    }
    return (this.previous ? [this.current, this.previous.secret] : [this.current]).slice(0, MAX_PEER_SECRETS);
  }

  /** A new value: it becomes current and the old one stays accepted for the grace time. */
  update(next: Buffer): boolean {
    if (next.length === 0 || next.equals(this.current)) return false;
    this.previous = { secret: this.current, until: this.now() + this.graceMs };
    this.current = next;
    this.o.logger?.info(
      { source: this.source, graceSeconds: Math.round(this.graceMs / 1000) },
      "peer secret changed: accepting the new and the previous one until the partner proves the new one",
    );
    return true;
  }

  /** The partner proved `secret` in a handshake: once it is the current one, the previous one goes. */
  proven(secret: Buffer): void {
    if (!this.previous || !secret.equals(this.current)) return;
    this.previous = null;
    this.o.logger?.info(
      { source: this.source },
      "peer secret rotation complete: the partner proved the new peer secret; the previous one is no longer accepted",
    );
  }

  /** Whether a rotation is in progress (a previous secret is still accepted). */
  get rotating(): boolean {
    return this.accepted().length > 1;
  }

  /**
   * Follows the file: a change in its directory (the kubelet's `..data` swap) or the periodic
   * poll re-reads it. An unreadable file, or one whose secret is empty or too short (secret-rules.ts),
   * keeps the secrets as they are.
   */
  watchFile(path: string, pollMs = DEFAULT_POLL_MS): this {
    this.source = `--peer-secret-file ${path}`;
    const check = () => void this.reread(path);
    try {
      this.watcher = watch(dirname(path), { persistent: false }, check);
      this.watcher.on("error", () => {
        this.watcher?.close();
        this.watcher = null; // the poll goes on
      });
    } catch {
      this.watcher = null;
    }
    this.poll = setInterval(check, pollMs);
    this.poll.unref();
    return this;
  }

  private async reread(path: string): Promise<void> {
    if (this.reading) {
      this.rereadAgain = true;
      return;
    }
    this.reading = true;
    try {
      do {
        this.rereadAgain = false;
        let next: Buffer;
        try {
          next = secretFromText(await readFile(path, "utf8"));
        } catch (e) {
          this.readProblem(`cannot read ${path}: ${(e as Error).message}`);
          continue;
        }
        const problem = secretProblem(next);
        if (problem) {
          this.readProblem(`the secret in ${path} ${problem}`);
          continue;
        }
        this.lastReadError = null;
        this.update(next);
      } while (this.rereadAgain);
    } finally {
      this.reading = false;
    }
  }

  private readProblem(reason: string): void {
    if (reason === this.lastReadError) return;
    this.lastReadError = reason;
    this.o.logger?.warn(
      { err: reason },
      "peer secret file unusable; keeping the peer secrets accepted so far",
    );
  }

  close(): void {
    this.watcher?.close();
    this.watcher = null;
    if (this.poll) clearInterval(this.poll);
    this.poll = null;
  }
}
