/**
 * Holds the handshake's messages (sync state, ready) until the handshake asks for them: the
 * partner may send them before this node is ready to read them.
 */
import { PeerLostError, type PeerConnection } from "./peer-connection.js";
import type { Message, MessageOf } from "./protocol.js";

export class HandshakeMailbox {
  private readonly held: Message[] = [];
  private waiter: { type: Message["type"]; resolve: (m: Message) => void } | null = null;

  put(m: Message): void {
    if (this.waiter && this.waiter.type === m.type) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve(m);
    } else this.held.push(m);
  }

  take<T extends "syncState" | "syncReady">(
    type: T,
    timeoutMs: number,
    c: PeerConnection,
  ): Promise<MessageOf<T>> {
    const i = this.held.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(this.held.splice(i, 1)[0] as MessageOf<T>);
    return new Promise<MessageOf<T>>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`no ${type} from the partner within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const prevClosed = c.onClosed;
      c.onClosed = (reason) => {
        clearTimeout(t);
        prevClosed(reason);
        reject(new PeerLostError(reason));
      };
      this.waiter = {
        type,
        resolve: (m) => {
          clearTimeout(t);
          c.onClosed = prevClosed;
          resolve(m as MessageOf<T>);
        },
      };
    });
  }
}
