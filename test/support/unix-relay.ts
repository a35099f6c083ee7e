/**
 * Relays TCP connections on 0.0.0.0:PORT to a unix socket, in a test guest: qemu forwards a host
 * loopback port to PORT, so a test on the host reaches the node service's socket in the guest as
 * kubelet reaches it on its node, with real gRPC calls and deadlines.
 *   node dist/test/support/unix-relay.js PORT /run/csi/csi.sock
 */
import { connect, createServer } from "node:net";

const [port, socket] = process.argv.slice(2);
if (!port || !socket) {
  console.error("usage: unix-relay.js PORT SOCKET");
  process.exit(2);
}
createServer((c) => {
  const u = connect(socket);
  c.pipe(u).pipe(c);
  c.on("error", () => u.destroy());
  u.on("error", () => c.destroy());
}).listen(Number(port), "0.0.0.0", () => console.log(`relaying ${port} to ${socket}`));
