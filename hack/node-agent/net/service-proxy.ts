import type { EndpointSlice, Service } from "../kube/schemas.js";
import { applyRules } from "./iptables.js";
import { renderRules, type Backend } from "./service-rules.js";
import type { Logger } from "../../../target/log.js";

export interface ProxySources {
  services: () => Service[];
  slices: () => EndpointSlice[];
  podIPs: () => string[];
  /** Pod IP pairs whose traffic is dropped. */
  cutLinks: () => [string, string][];
}

/** Keeps the host's iptables rules in line with Services, EndpointSlices and cut links. */
export class ServiceProxy {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private lastApplied = "";

  constructor(
    private readonly sources: ProxySources,
    private readonly fixed: Record<string, Backend>,
    private readonly serviceCidr: string,
    private readonly podCidr: string,
    private readonly log: Logger,
  ) {}

  /** Coalesces bursts of changes into one rule update. */
  changed(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.sync();
    }, 150);
  }

  async sync(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        const rules = renderRules({
          services: this.sources.services(),
          slices: this.sources.slices(),
          fixed: this.fixed,
          serviceCidr: this.serviceCidr,
          podCidr: this.podCidr,
          podIPs: this.sources.podIPs(),
          cutLinks: this.sources.cutLinks(),
        });
        const text = rules.nat + rules.filter;
        if (text === this.lastApplied) continue;
        try {
          await applyRules(rules);
          this.lastApplied = text;
        } catch (err) {
          this.log.error({ err: String(err) }, "applying iptables rules failed; retrying");
          setTimeout(() => this.changed(), 2000);
        }
      } while (this.again);
    })();
    try {
      await this.running;
    } finally {
      this.running = undefined;
    }
  }
}
