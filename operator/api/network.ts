/**
 * spec.network: who may reach a pair's iSCSI port. The peers are Kubernetes NetworkPolicyPeer
 * objects, checked here as the API server would check them inside a NetworkPolicy, so a bad peer
 * is refused on the HASanTarget (CEL in the CRD, zod in the operator) and never becomes a policy
 * the API server rejects.
 */
import { BlockList, isIP } from "node:net";
import { z } from "zod";

const LABEL_NAME = "[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?";
const DNS_SUBDOMAIN = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const labelKey = z
  .string()
  .max(317)
  .regex(new RegExp(`^(${DNS_SUBDOMAIN}/)?${LABEL_NAME}$`), "must be a label key ([prefix/]name)");
const labelValue = z
  .string()
  .max(63)
  .regex(/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/, "must be a label value");

const LabelSelectorRequirementSchema = z
  .object({
    key: labelKey.meta({ description: "The label key the requirement applies to." }),
    operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist"]).meta({
      description:
        "How the key relates to values: In, NotIn (values needed), Exists, DoesNotExist (no values).",
    }),
    values: z
      .array(labelValue)
      .max(64)
      .optional()
      .meta({ description: "Label values for In and NotIn.", "x-kubernetes-list-type": "atomic" }),
  })
  .refine(
    (r) =>
      ["In", "NotIn"].includes(r.operator) ? (r.values?.length ?? 0) > 0 : (r.values?.length ?? 0) === 0,
    { message: "In and NotIn need values; Exists and DoesNotExist take none", path: ["values"] },
  )
  .meta({
    "x-kubernetes-validations": [
      {
        rule:
          "self.operator in ['In', 'NotIn'] ? has(self.values) && size(self.values) > 0 : " +
          "!has(self.values) || size(self.values) == 0",
        message: "In and NotIn need values; Exists and DoesNotExist take none",
      },
    ],
  });

export const LabelSelectorSchema = z
  .object({
    matchLabels: z
      .record(labelKey, labelValue)
      .optional()
      .meta({ description: "Labels an object must carry, all of them (key: value)." }),
    matchExpressions: z.array(LabelSelectorRequirementSchema).max(32).optional().meta({
      description: "Requirements an object's labels must meet, all of them.",
      "x-kubernetes-list-type": "atomic",
    }),
  })
  .meta({ description: "A label selector; an empty one selects everything." });

/** "10.0.0.0/8" → its parts, or undefined when it is not a canonical CIDR (no bits beyond the prefix). */
export function parseCidr(
  s: string,
): { address: string; prefix: number; family: "ipv4" | "ipv6" } | undefined {
  const slash = s.indexOf("/");
  if (slash < 0) return undefined;
  const address = s.slice(0, slash);
  const prefixText = s.slice(slash + 1);
  const v = isIP(address);
  if (v === 0 || !/^\d{1,3}$/.test(prefixText)) return undefined;
  const family = v === 4 ? "ipv4" : "ipv6";
  const prefix = Number(prefixText);
  if (prefix > (v === 4 ? 32 : 128)) return undefined;
  // Canonical, as the API server wants it: no address bit set past the prefix.
  const bits = family === "ipv4" ? ipv4Bits(address) : ipv6Bits(address);
  if (bits === undefined || bits.slice(prefix).includes("1")) return undefined;
  return { address, prefix, family };
}

function ipv4Bits(a: string): string | undefined {
  const parts = a.split(".").map(Number);
  if (parts.length !== 4) return undefined;
  return parts.map((p) => p.toString(2).padStart(8, "0")).join("");
}

function ipv6Bits(a: string): string | undefined {
  let text = a;
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4?.[1]) {
    const b = ipv4Bits(v4[1]);
    if (!b) return undefined;
    text = `${text.slice(0, -v4[1].length)}${parseInt(b.slice(0, 16), 2).toString(16)}:${parseInt(b.slice(16), 2).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail !== "" ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill("0"), ...t];
  if (groups.length !== 8) return undefined;
  return groups
    .map((g) =>
      parseInt(g || "0", 16)
        .toString(2)
        .padStart(16, "0"),
    )
    .join("");
}

/** Whether inner is a strict subset of outer (both canonical CIDRs of one family). */
export function cidrStrictlyWithin(inner: string, outer: string): boolean {
  const i = parseCidr(inner);
  const o = parseCidr(outer);
  if (!i || !o || i.family !== o.family || i.prefix <= o.prefix) return false;
  const list = new BlockList();
  list.addSubnet(o.address, o.prefix, o.family);
  return list.check(i.address, i.family);
}

const cidr = z
  .string()
  .max(64)
  .refine((s) => parseCidr(s) !== undefined, "must be a CIDR with no bits set past its prefix");

export const IPBlockSchema = z
  .object({
    cidr: cidr.meta({ description: "Addresses allowed, e.g. 10.0.0.0/16 or 2001:db8::/48." }),
    except: z
      .array(cidr)
      .max(64)
      .optional()
      .meta({ description: "Parts of cidr not allowed.", "x-kubernetes-list-type": "atomic" }),
  })
  .superRefine((b, ctx) => {
    for (const [i, e] of (b.except ?? []).entries()) {
      if (parseCidr(e) && parseCidr(b.cidr) && !cidrStrictlyWithin(e, b.cidr))
        ctx.addIssue({
          code: "custom",
          path: ["except", i],
          message: `must be a strict subset of ${b.cidr}`,
        });
    }
  })
  .meta({
    "x-kubernetes-validations": [
      {
        rule: "isCIDR(self.cidr) && cidr(self.cidr) == cidr(self.cidr).masked()",
        message: "cidr must be a CIDR with no bits set past its prefix",
      },
      {
        rule:
          "!has(self.except) || !isCIDR(self.cidr) || self.except.all(e, isCIDR(e) && " +
          "cidr(e) == cidr(e).masked() && cidr(self.cidr).containsCIDR(e) && " +
          "cidr(e).prefixLength() > cidr(self.cidr).prefixLength())",
        message: "each of except must be a CIDR strictly inside cidr",
      },
    ],
  });

const PEER_RULE = "ipBlock goes alone; otherwise set podSelector, namespaceSelector or both";

export const NetworkPolicyPeerSchema = z
  .object({
    podSelector: LabelSelectorSchema.optional().meta({
      description:
        "Pods allowed: in the HASanTarget's namespace, or with namespaceSelector in those namespaces.",
    }),
    namespaceSelector: LabelSelectorSchema.optional().meta({
      description: "Namespaces whose pods are allowed (all namespaces with {}).",
    }),
    ipBlock: IPBlockSchema.optional().meta({
      description: "Addresses allowed, for clients outside the pod network (nodes, other hosts).",
    }),
  })
  .refine(
    (p) =>
      p.ipBlock
        ? !p.podSelector && !p.namespaceSelector
        : p.podSelector !== undefined || p.namespaceSelector !== undefined,
    { message: PEER_RULE },
  )
  .meta({
    description: "A NetworkPolicyPeer (networking.k8s.io/v1).",
    "x-kubernetes-validations": [
      {
        rule: "has(self.ipBlock) ? !has(self.podSelector) && !has(self.namespaceSelector) : has(self.podSelector) || has(self.namespaceSelector)",
        message: PEER_RULE,
      },
    ],
  });

export const NetworkSpecSchema = z
  .object({
    iscsiFrom: z
      .array(NetworkPolicyPeerSchema)
      .min(1)
      .max(32)
      .optional()
      .meta({
        description:
          "Who may connect to the iSCSI port (3260) of both pods, as NetworkPolicyPeers. Unset: everyone, " +
          "because kubelet logs in from the node's host network, which no pod or namespace selector matches; " +
          "CHAP then guards the port. With exported PVs, include the nodes' addresses as an ipBlock.",
        "x-kubernetes-list-type": "atomic",
      }),
  })
  .meta({
    description:
      "Who may reach the pair. The operator's NetworkPolicies always limit the peer port to the partner pod " +
      "and the agent port to the operator; they need a network plugin that enforces NetworkPolicies.",
  });

export type NetworkPolicyPeer = z.infer<typeof NetworkPolicyPeerSchema>;
export type LabelSelector = z.infer<typeof LabelSelectorSchema>;
