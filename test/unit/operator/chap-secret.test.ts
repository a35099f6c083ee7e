import { test } from "node:test";
import assert from "node:assert/strict";
import { chapUsersFromSecret } from "../../../operator/reconcile/chap-secret.js";

const b64 = (s: string) => Buffer.from(s).toString("base64");
const data = (o: Record<string, string>) =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, b64(v)]));

test("a CHAP Secret with a user and a secret of 12 bytes or more gives the user names for the pods", () => {
  assert.deepEqual(
    chapUsersFromSecret(
      "db-chap",
      data({ "node.session.auth.username": "db\n", "node.session.auth.password": "12-bytes-abc\n" }),
      false,
    ),
    { username: "db" },
  );
  assert.deepEqual(
    chapUsersFromSecret(
      "db-chap",
      data({
        "node.session.auth.username": "db",
        "node.session.auth.password": "12-bytes-abc",
        "node.session.auth.username_in": "db-target",
        "node.session.auth.password_in": "another-secret",
      }),
      true,
    ),
    { username: "db", mutualUsername: "db-target" },
  );
});

test("a CHAP Secret the target would refuse is reported in the status: an 11-byte or missing secret, a mutual secret too short or equal to the initiator's", () => {
  const user = { "node.session.auth.username": "db" };
  assert.throws(
    () =>
      chapUsersFromSecret("db-chap", data({ ...user, "node.session.auth.password": "11-bytes-ab" }), false),
    /spec.auth.chapSecretRef: secret db-chap: node.session.auth.password is 11 bytes long; secrets must be at least 12 bytes/,
  );
  assert.throws(
    () => chapUsersFromSecret("db-chap", data(user), false),
    /node.session.auth.password is empty/,
  );
  const mutual = (password_in: string) =>
    data({
      ...user,
      "node.session.auth.password": "the-initiator-secret",
      "node.session.auth.username_in": "db-target",
      "node.session.auth.password_in": password_in,
    });
  assert.throws(() => chapUsersFromSecret("db-chap", mutual("short"), true), /password_in is 5 bytes long/);
  assert.throws(
    () => chapUsersFromSecret("db-chap", mutual("the-initiator-secret"), true),
    /spec.auth.mutual: secret db-chap: node.session.auth.password_in must differ from node.session.auth.password/,
  );
  assert.throws(
    () => chapUsersFromSecret("db-chap", data({ "node.session.auth.password": "x".repeat(12) }), false),
    /has no node.session.auth.username/,
  );
});
