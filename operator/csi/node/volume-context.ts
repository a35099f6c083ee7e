import { z } from "zod";
import { IQN_PATTERN } from "../../api/spec.js";
import { FILESYSTEMS } from "../capabilities.js";
import { CONTEXT } from "../driver.js";
import { describeZodError, invalidArgument } from "../errors.js";
import type { Chap } from "./iscsi.js";

const portal = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "must be host:port (e.g. 10.96.4.7:3260)");

/** volume_context as the controller service writes it (controller/volume.ts volumeContextOf). */
export const VolumeContextSchema = z.object({
  [CONTEXT.iqn]: z.string().regex(new RegExp(IQN_PATTERN), "must be an iSCSI qualified name"),
  [CONTEXT.portals]: z
    .string()
    .transform((s) => s.split(",").filter(Boolean))
    .pipe(z.array(portal).min(1, "must name at least one portal")),
  [CONTEXT.lun]: z.literal("0", { message: "must be 0 (a hasan target has one LUN)" }),
  [CONTEXT.wwid]: z.string().regex(/^3[0-9a-f]{32}$/, "must be 3 and 32 hex digits (an NAA WWID)"),
  [CONTEXT.chapSecretName]: z.string().optional(),
  [CONTEXT.fsType]: z.enum(FILESYSTEMS).optional(),
});
export type VolumeContext = z.infer<typeof VolumeContextSchema>;

export function parseVolumeContext(raw: Record<string, string>): VolumeContext {
  const r = VolumeContextSchema.safeParse(raw);
  if (!r.success) throw invalidArgument(`volume_context: ${describeZodError(r.error)}`);
  return r.data;
}

/** The keys of a kubernetes.io/iscsi-chap Secret, as kubelet hands the node-stage secret over. */
const SecretsSchema = z.object({
  "node.session.auth.username": z.string().min(1).optional(),
  "node.session.auth.password": z.string().min(1).optional(),
  "node.session.auth.username_in": z.string().min(1).optional(),
  "node.session.auth.password_in": z.string().min(1).optional(),
});

/** CHAP credentials from the stage secrets; none when the Secret has no user name. */
export function chapFromSecrets(raw: Record<string, string>): Chap | undefined {
  const r = SecretsSchema.safeParse(raw);
  if (!r.success) throw invalidArgument(`secrets: ${describeZodError(r.error)}`);
  const s = r.data;
  const username = s["node.session.auth.username"];
  const password = s["node.session.auth.password"];
  if (!username && !password) return undefined;
  if (!username || !password)
    throw invalidArgument("secrets: node.session.auth.username and node.session.auth.password go together");
  const usernameIn = s["node.session.auth.username_in"];
  const passwordIn = s["node.session.auth.password_in"];
  if (!!usernameIn !== !!passwordIn)
    throw invalidArgument(
      "secrets: node.session.auth.username_in and node.session.auth.password_in go together",
    );
  return { username, password, ...(usernameIn && passwordIn ? { usernameIn, passwordIn } : {}) };
}
