import { TOPOLOGY_NODE_KEY } from "../driver.js";
import {
  NodeExpandVolumeRequestSchema,
  NodeGetVolumeStatsRequestSchema,
  NodePublishVolumeRequestSchema,
  NodeStageVolumeRequestSchema,
  NodeUnpublishVolumeRequestSchema,
  NodeUnstageVolumeRequestSchema,
  parseRequest,
} from "../messages.js";
import type { Handlers } from "../server.js";
import { VolumeLocks } from "../locks.js";
import type { NodeDeps } from "./deps.js";
import { expandVolume, volumeStats } from "./expand.js";
import { publishVolume, unpublishVolume } from "./publish.js";
import { stageVolume, unstageVolume } from "./stage.js";

export const NODE_CAPABILITIES = ["STAGE_UNSTAGE_VOLUME", "GET_VOLUME_STATS", "EXPAND_VOLUME"] as const;

/**
 * The Node service: requests parsed here, one operation per volume at a time (`locks`, shared
 * with the session repair), the work in the modules.
 */
export function nodeHandlers(d: NodeDeps, nodeId: string, locks = new VolumeLocks()): Handlers {
  return {
    NodeStageVolume: async (req) => {
      const r = parseRequest(NodeStageVolumeRequestSchema, req);
      return await locks.run(r.volume_id, () => stageVolume(d, r));
    },
    NodeUnstageVolume: async (req) => {
      const r = parseRequest(NodeUnstageVolumeRequestSchema, req);
      return await locks.run(r.volume_id, () => unstageVolume(d, r));
    },
    NodePublishVolume: async (req) => {
      const r = parseRequest(NodePublishVolumeRequestSchema, req);
      return await locks.run(r.volume_id, () => publishVolume(d, r));
    },
    NodeUnpublishVolume: async (req) => {
      const r = parseRequest(NodeUnpublishVolumeRequestSchema, req);
      return await locks.run(r.volume_id, () => unpublishVolume(d, r));
    },
    NodeExpandVolume: async (req) => {
      const r = parseRequest(NodeExpandVolumeRequestSchema, req);
      return await locks.run(r.volume_id, () => expandVolume(d, r));
    },
    NodeGetVolumeStats: async (req) => volumeStats(d, parseRequest(NodeGetVolumeStatsRequestSchema, req)),
    NodeGetCapabilities: async () => ({ capabilities: NODE_CAPABILITIES.map((type) => ({ rpc: { type } })) }),
    NodeGetInfo: async () => ({
      node_id: nodeId,
      max_volumes_per_node: "0",
      accessible_topology: { segments: { [TOPOLOGY_NODE_KEY]: nodeId } },
    }),
  };
}
