import { createHash } from "node:crypto";
import { mustRun, run } from "../exec.js";

// One network namespace per pod with a veth pair, Calico style: the pod end carries the pod IP
// (/32) and a default route via the link-local gateway 169.254.1.1; the host end has no address,
// answers ARP for the gateway (proxy_arp) and has a /32 route plus a permanent neighbour entry
// for the pod. Private-range addresses therefore exist only inside pod namespaces.

export const gatewayIP = "169.254.1.1";

export interface PodNetwork {
  netns: string;
  hostVeth: string;
  ip: string;
}

export function podNetworkNames(podUID: string): { netns: string; hostVeth: string } {
  const h = createHash("sha256").update(podUID).digest("hex").slice(0, 11);
  return { netns: `hasan-${h}`, hostVeth: `hsn${h}` };
}

const ipIn = (netns: string, ...args: string[]) => mustRun("ip", ["-n", netns, ...args]);

export async function createPodNetwork(podUID: string, ip: string): Promise<PodNetwork> {
  const { netns, hostVeth } = podNetworkNames(podUID);
  await deletePodNetwork({ netns, hostVeth });
  await mustRun("ip", ["netns", "add", netns]);
  await mustRun("ip", ["link", "add", hostVeth, "type", "veth", "peer", "name", "eth0", "netns", netns]);
  await ipIn(netns, "link", "set", "lo", "up");
  await ipIn(netns, "addr", "add", `${ip}/32`, "dev", "eth0");
  await ipIn(netns, "link", "set", "eth0", "up");
  await ipIn(netns, "route", "add", gatewayIP, "dev", "eth0", "scope", "link");
  await ipIn(netns, "route", "add", "default", "via", gatewayIP, "dev", "eth0");
  for (const key of ["proxy_arp", "forwarding", "route_localnet"]) {
    // route_localnet lets the kubernetes Service DNAT to the API server on 127.0.0.1.
    await mustRun("sysctl", ["-qw", `net.ipv4.conf.${hostVeth}.${key}=1`]);
  }
  await mustRun("ip", ["link", "set", hostVeth, "up"]);
  await mustRun("ip", ["route", "replace", `${ip}/32`, "dev", hostVeth]);
  const mac = (await mustRun("ip", ["netns", "exec", netns, "cat", "/sys/class/net/eth0/address"])).trim();
  await mustRun("ip", ["neigh", "replace", ip, "lladdr", mac, "dev", hostVeth, "nud", "permanent"]);
  return { netns, hostVeth, ip };
}

/** Removes the namespace, veth pair and route; tolerant of parts already gone. */
export async function deletePodNetwork(net: Pick<PodNetwork, "netns" | "hostVeth">): Promise<void> {
  const pids = await run("ip", ["netns", "pids", net.netns]);
  for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // already gone
    }
  }
  await run("ip", ["link", "delete", net.hostVeth]);
  await run("ip", ["netns", "delete", net.netns]);
}

export async function setLinkUp(hostVeth: string, up: boolean): Promise<void> {
  await mustRun("ip", ["link", "set", hostVeth, up ? "up" : "down"]);
}

/** The host keeps traffic for the pod range local: unknown pod IPs are unreachable, never routed out. */
export async function ensureHostRoutes(podCidr: string): Promise<void> {
  await mustRun("ip", ["route", "replace", "unreachable", podCidr]);
}

export async function removeHostRoutes(podCidr: string): Promise<void> {
  await run("ip", ["route", "delete", "unreachable", podCidr]);
}
