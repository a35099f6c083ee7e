/**
 * CHAP credentials: what the operator takes from the Secret the pods use (the user names for the
 * pods' flags; the secrets themselves reach the pods as files), and the Secret it generates once
 * when `spec.auth.chapSecretRef` is absent and CHAP is not Disabled. The secrets are checked by the
 * target's rules here too, so a Secret the target would refuse shows in the HASanTarget's status
 * instead of as pods that do not start.
 */
import { randomBytes } from "node:crypto";
import { secretProblem } from "../../target/secret-rules.js";
import type { HASanTarget } from "../api/target.js";
import { chapSource } from "./auth.js";
import type { CreatedOnceSecret } from "./created-once-secret.js";
import { CHAP_SECRET_KEY, CHAP_USER_KEY, MUTUAL_SECRET_KEY, MUTUAL_USER_KEY } from "./desired-children.js";

export interface ChapUsers {
  username: string;
  mutualUsername?: string;
}

const decoded = (data: Record<string, string> | undefined, key: string): string | undefined => {
  const b64 = data?.[key];
  return b64 === undefined ? undefined : Buffer.from(b64, "base64").toString("utf8");
};

/**
 * The user names, or an Error saying what the Secret lacks. `where` starts the messages (the
 * field that names the Secret).
 */
export function chapUsersFromSecret(
  name: string,
  data: Record<string, string> | undefined,
  mutual: boolean,
  where = `spec.auth.chapSecretRef: secret ${name}`,
): ChapUsers {
  const username = decoded(data, CHAP_USER_KEY)?.trim();
  if (!username) throw new Error(`${where} has no ${CHAP_USER_KEY}`);
  // as the target reads its secret files: without one trailing newline
  const secret = decoded(data, CHAP_SECRET_KEY)?.replace(/\r?\n$/, "") ?? "";
  const problem = secretProblem(secret);
  if (problem) throw new Error(`${where}: ${CHAP_SECRET_KEY} ${problem}`);
  const mutualUsername = decoded(data, MUTUAL_USER_KEY)?.trim();
  if (!mutual) return mutualUsername ? { username, mutualUsername } : { username };
  if (!mutualUsername) throw new Error(`spec.auth.mutual: secret ${name} has no ${MUTUAL_USER_KEY}`);
  const mutualSecret = decoded(data, MUTUAL_SECRET_KEY)?.replace(/\r?\n$/, "") ?? "";
  const mutualProblem = secretProblem(mutualSecret);
  if (mutualProblem)
    throw new Error(`spec.auth.mutual: secret ${name}: ${MUTUAL_SECRET_KEY} ${mutualProblem}`);
  if (mutualSecret === secret) {
    throw new Error(
      `spec.auth.mutual: secret ${name}: ${MUTUAL_SECRET_KEY} must differ from ${CHAP_SECRET_KEY}`,
    );
  }
  return { username, mutualUsername };
}

/** The user names from the Secret the pods use (the user's or the generated one), checked. */
export function chapUsersOf(t: HASanTarget, data: Record<string, string> | undefined): ChapUsers {
  const s = chapSource(t);
  if (s.kind === "disabled") throw new Error("CHAP is disabled"); // callers ask only with CHAP
  const where =
    s.kind === "user" ? undefined : `generated CHAP secret ${s.name} (spec.auth.chapSecretRef unset)`;
  return chapUsersFromSecret(s.name, data, !!t.spec.auth?.mutual, where);
}

/** 24 random bytes as base64url: 32 characters, well over the 12 bytes CHAP asks for. */
export function freshChapSecret(): string {
  return randomBytes(24).toString("base64url");
}

/** The initiator's CHAP user name in a generated Secret; the target's, for mutual CHAP. */
export const generatedChapUser = (t: HASanTarget): string => t.metadata.name;
export const generatedMutualUser = (t: HASanTarget): string => `${t.metadata.name}-target`;

/**
 * The generated CHAP Secret: type kubernetes.io/iscsi-chap, so the exported PV's `secretRef` and
 * any client read it as they read a Secret of their own; with spec.auth.mutual also the target's
 * credentials (a different secret).
 */
export const GENERATED_CHAP_SECRET: CreatedOnceSecret = {
  what: "generated CHAP Secret",
  generatedName: (t) => {
    const s = chapSource(t);
    return s.kind === "generated" ? s.name : undefined;
  },
  type: "kubernetes.io/iscsi-chap",
  fresh: (t) => {
    const values: Record<string, string> = {
      [CHAP_USER_KEY]: generatedChapUser(t),
      [CHAP_SECRET_KEY]: freshChapSecret(),
    };
    if (t.spec.auth?.mutual) {
      let mutual = freshChapSecret();
      while (mutual === values[CHAP_SECRET_KEY]) mutual = freshChapSecret();
      values[MUTUAL_USER_KEY] = generatedMutualUser(t);
      values[MUTUAL_SECRET_KEY] = mutual;
    }
    return values;
  },
  problem: (t, values) => {
    const mutual = !!t.spec.auth?.mutual;
    if (!values[CHAP_USER_KEY]?.trim()) return `has no ${CHAP_USER_KEY}`;
    const secret = (values[CHAP_SECRET_KEY] ?? "").replace(/\r?\n$/, "");
    const p = secretProblem(secret);
    if (p) return `has a ${CHAP_SECRET_KEY} that ${p}`;
    if (!mutual) {
      return values[MUTUAL_USER_KEY] === undefined
        ? undefined
        : `has ${MUTUAL_USER_KEY} while spec.auth.mutual is not true (initiators would ask for mutual CHAP)`;
    }
    if (!values[MUTUAL_USER_KEY]?.trim()) return `has no ${MUTUAL_USER_KEY}, which spec.auth.mutual needs`;
    const mutualSecret = (values[MUTUAL_SECRET_KEY] ?? "").replace(/\r?\n$/, "");
    const mp = secretProblem(mutualSecret);
    if (mp) return `has a ${MUTUAL_SECRET_KEY} that ${mp}`;
    if (mutualSecret === secret) return `has the same ${MUTUAL_SECRET_KEY} as ${CHAP_SECRET_KEY}`;
    return undefined;
  },
  remedy:
    "delete it to have new credentials generated (initiators then need the new ones), " +
    "or set spec.auth.chapSecretRef to a Secret of your own",
};
