/**
 * What the operator takes from the Secret named by spec.auth.chapSecretRef: the user names for the
 * pods' flags (the secrets themselves reach the pods as files). The secrets are checked by the
 * target's rules here too, so a Secret the target would refuse shows in the HASanTarget's status
 * instead of as pods that do not start.
 */
import { secretProblem } from "../../target/secret-rules.js";
import { CHAP_SECRET_KEY, CHAP_USER_KEY, MUTUAL_SECRET_KEY, MUTUAL_USER_KEY } from "./desired-children.js";

export interface ChapUsers {
  username: string;
  mutualUsername?: string;
}

const decoded = (data: Record<string, string> | undefined, key: string): string | undefined => {
  const b64 = data?.[key];
  return b64 === undefined ? undefined : Buffer.from(b64, "base64").toString("utf8");
};

/** The user names, or an Error saying what the Secret lacks. */
export function chapUsersFromSecret(
  name: string,
  data: Record<string, string> | undefined,
  mutual: boolean,
): ChapUsers {
  const where = `spec.auth.chapSecretRef: secret ${name}`;
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
