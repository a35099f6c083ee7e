import type { KubeClient } from "../../../operator/kit/kube-client.js";
import { KeyedData } from "../kube/schemas.js";
import { decodeData, type DataMap } from "./env.js";

/** Fetches (and caches for one pass) the ConfigMaps and Secrets a pod refers to. */
export class PodResources {
  readonly configMaps = new Map<string, DataMap | undefined>();
  readonly secrets = new Map<string, DataMap | undefined>();

  constructor(
    private readonly client: KubeClient,
    private readonly namespace: string,
  ) {}

  async configMap(name: string): Promise<DataMap | undefined> {
    if (!this.configMaps.has(name)) {
      const obj = await this.client.getParsed(
        KeyedData,
        `/api/v1/namespaces/${this.namespace}/configmaps/${name}`,
      );
      this.configMaps.set(name, obj && decodeData(obj, false));
    }
    return this.configMaps.get(name);
  }

  async secret(name: string): Promise<DataMap | undefined> {
    if (!this.secrets.has(name)) {
      const obj = await this.client.getParsed(
        KeyedData,
        `/api/v1/namespaces/${this.namespace}/secrets/${name}`,
      );
      this.secrets.set(name, obj && decodeData(obj, true));
    }
    return this.secrets.get(name);
  }
}
