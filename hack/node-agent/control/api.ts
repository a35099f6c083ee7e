import { z } from "zod";

// The node agent's control API (loopback only): fault injection and pod introspection.

export const PodRef = z.object({ namespace: z.string().min(1), name: z.string().min(1) });
export type PodRef = z.infer<typeof PodRef>;

export const LinkRequest = z.object({ a: PodRef, b: PodRef });
export type LinkRequest = z.infer<typeof LinkRequest>;

export const PodInfo = z.object({
  namespace: z.string(),
  name: z.string(),
  uid: z.string(),
  node: z.string(),
  ip: z.string().optional(),
  netns: z.string().optional(),
  pids: z.array(z.number()),
  logDir: z.string(),
});
export type PodInfo = z.infer<typeof PodInfo>;

export const NodeInfo = z.object({ name: z.string(), failed: z.boolean(), pods: z.number() });
export const NodeList = z.array(NodeInfo);
export const ErrorBody = z.object({ error: z.string() });
