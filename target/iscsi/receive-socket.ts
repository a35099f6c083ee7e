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

/**
 * Starts reading an accepted socket (created paused) and hands every received chunk to
 * `onData`; the chunk is valid only during that call. Returns the socket to use from now on.
 */
export function readInto(accepted: Socket, bufferSize: number, onData: (chunk: Buffer) => void): Socket {
  const carrier = accepted as unknown as HandleCarrier;
  const handle = carrier._handle;
  if (handle && typeof handle === "object") {
    const buffer = Buffer.allocUnsafeSlow(bufferSize);
    carrier._handle = null; // the old wrapper must not close or read the moved handle
    const options = {
      handle,
      readable: true,
      writable: true,
      onread: {
        buffer,
        callback: (n: number, buf: Uint8Array): boolean => {
          onData((buf as Buffer).subarray(0, n));
          return true;
        },
      },
    };
    const socket = new Socket(options as ConstructorParameters<typeof Socket>[0]);
    // the emptied wrapper still counts as one of the server's connections until destroyed
    accepted.destroy();
    socket.resume();
    return socket;
  }
  accepted.on("data", onData);
  accepted.resume();
  return accepted;
}
