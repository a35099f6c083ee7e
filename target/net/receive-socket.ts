/**
 * Receiving into one reused buffer per connection. Node offers this (`onread`) only for sockets it
 * constructs, not for the ones a server accepts, so the accepted handle moves to a socket built
 * with `onread`: reads then allocate nothing, and the framer copies out only what must outlive the
 * buffer. Should a runtime not expose the handle, the accepted socket streams chunks as usual.
 */
import { Socket } from "node:net";

interface HandleCarrier {
  _handle?: object | null;
}

/** Where reads land: a fixed buffer, or a function giving the buffer for each read. */
export interface ReadSink {
  buffer: Buffer | (() => Uint8Array);
  /** n bytes were read into buf (the buffer given for this read); valid only during the call */
  onRead(buf: Uint8Array, n: number): void;
}

/** The `onread` option of a socket that reads into the sink. */
export function onreadOf(sink: ReadSink): {
  buffer: Buffer | (() => Uint8Array);
  callback: (n: number, buf: Uint8Array) => boolean;
} {
  return {
    buffer: sink.buffer,
    callback: (n, buf) => {
      sink.onRead(buf, n);
      return true;
    },
  };
}

/**
 * Starts reading an accepted socket (created paused) into the sink's buffer(s). Returns the
 * socket to use from now on. Without a movable handle, chunks arrive as usual and are handed
 * to onRead as they are.
 */
export function readWith(accepted: Socket, sink: ReadSink): Socket {
  const carrier = accepted as unknown as HandleCarrier;
  const handle = carrier._handle;
  if (handle && typeof handle === "object") {
    carrier._handle = null; // the old wrapper must not close or read the moved handle
    const options = { handle, readable: true, writable: true, onread: onreadOf(sink) };
    const socket = new Socket(options as ConstructorParameters<typeof Socket>[0]);
    // the emptied wrapper still counts as one of the server's connections until destroyed
    accepted.destroy();
    socket.resume();
    return socket;
  }
  accepted.on("data", (chunk: Buffer) => sink.onRead(chunk, chunk.length));
  accepted.resume();
  return accepted;
}

/**
 * Starts reading an accepted socket (created paused) and hands every received chunk to
 * `onData`; the chunk is valid only during that call. Returns the socket to use from now on.
 */
export function readInto(accepted: Socket, bufferSize: number, onData: (chunk: Buffer) => void): Socket {
  return readWith(accepted, {
    buffer: Buffer.allocUnsafeSlow(bufferSize),
    onRead: (buf, n) => onData(Buffer.from(buf.buffer, buf.byteOffset, n)),
  });
}
