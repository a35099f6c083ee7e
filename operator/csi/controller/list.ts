import { aborted } from "../errors.js";

/** A volume as ListVolumes orders it: by creation time, then id. */
export interface Listed<T> {
  created: string;
  id: string;
  item: T;
}

export interface Page<T> {
  items: T[];
  nextToken: string;
}

const keyOf = (l: { created: string; id: string }) => `${l.created}\u0000${l.id}`;

export function encodeToken(l: { created: string; id: string }): string {
  return Buffer.from(JSON.stringify([l.created, l.id])).toString("base64url");
}

function decodeToken(token: string): string {
  try {
    const v: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === "string"))
      return keyOf({ created: v[0] as string, id: v[1] as string });
  } catch {
    // fall through
  }
  throw aborted(`starting_token ${JSON.stringify(token)} was not issued by this driver`);
}

/**
 * One page of volumes. The token names the last volume handed out (its creation time and id), not
 * an offset: a volume deleted between pages does not shift the next page, and volumes created
 * later sort after the token, so they are still listed. An unknown token is ABORTED, as CSI asks.
 */
export function page<T>(all: Listed<T>[], maxEntries: number, startingToken: string): Page<T> {
  const sorted = [...all].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : keyOf(a) > keyOf(b) ? 1 : 0));
  const after = startingToken ? decodeToken(startingToken) : undefined;
  const rest = after === undefined ? sorted : sorted.filter((l) => keyOf(l) > after);
  const take = maxEntries > 0 ? rest.slice(0, maxEntries) : rest;
  const last = take[take.length - 1];
  return {
    items: take.map((l) => l.item),
    nextToken: last && take.length < rest.length ? encodeToken(last) : "",
  };
}
