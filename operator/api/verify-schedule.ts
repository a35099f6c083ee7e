/**
 * spec.verify.schedule: an interval ("24h", "7d", "1h30m"; units s, m, h, d; at least one minute)
 * counted from the start of the last verify, or a 5-field cron expression (minute hour
 * day-of-month month day-of-week, in UTC; `*`, numbers, ranges `a-b`, steps `x/n` and lists `,`;
 * day-of-week 0-7 with 0 and 7 Sunday; when both day fields are restricted either one matching
 * is enough, as in cron).
 */

export type VerifySchedule =
  | { kind: "interval"; ms: number }
  | {
      kind: "cron";
      minute: Set<number>;
      hour: Set<number>;
      dom: CronDays;
      month: Set<number>;
      dow: CronDays;
    };

interface CronDays {
  values: Set<number>;
  /** the field was `*` (matters for how the two day fields combine) */
  any: boolean;
}

/** What the CRD's CEL rule checks (the operator parses fully). */
export const SCHEDULE_CEL_RULE =
  "self.matches('^([0-9]+[smhd])+$') || self.matches('^[0-9*/,-]+( +[0-9*/,-]+){4}$')";

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const MIN_INTERVAL_MS = 60_000;
/** How far ahead a cron expression must match at least once. */
const CRON_HORIZON_MS = 5 * 366 * 86_400_000;

export function parseSchedule(text: string): VerifySchedule | { error: string } {
  const s = text.trim();
  if (/^([0-9]+[smhd])+$/.test(s)) {
    let ms = 0;
    for (const m of s.matchAll(/([0-9]+)([smhd])/g)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
    if (!Number.isSafeInteger(ms) || ms < MIN_INTERVAL_MS) {
      return { error: `interval ${s} is shorter than one minute` };
    }
    return { kind: "interval", ms };
  }
  const fields = s.split(/\s+/);
  if (fields.length !== 5) {
    return { error: `${JSON.stringify(s)} is neither an interval (e.g. 24h) nor a 5-field cron expression` };
  }
  const [minute, hour, dom, month, dow] = fields as [string, string, string, string, string];
  try {
    const schedule: VerifySchedule = {
      kind: "cron",
      minute: cronField(minute, 0, 59, "minute"),
      hour: cronField(hour, 0, 23, "hour"),
      dom: { values: cronField(dom, 1, 31, "day of month"), any: dom === "*" },
      month: cronField(month, 1, 12, "month"),
      dow: { values: sundays(cronField(dow, 0, 7, "day of week")), any: dow === "*" },
    };
    if (!nextRun(schedule, new Date(Date.UTC(2000, 0, 1)))) {
      return { error: `cron expression ${JSON.stringify(s)} never matches` };
    }
    return schedule;
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** Day of week 7 is Sunday too. */
function sundays(days: Set<number>): Set<number> {
  if (days.has(7)) days.add(0);
  days.delete(7);
  return days;
}

function cronField(text: string, min: number, max: number, what: string): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(",")) {
    const m = /^(\*|([0-9]+)(?:-([0-9]+))?)(?:\/([0-9]+))?$/.exec(part);
    if (!m)
      throw new Error(`cron ${what} field ${JSON.stringify(text)}: cannot read ${JSON.stringify(part)}`);
    const from = m[1] === "*" ? min : Number(m[2]);
    // "5/15" means from 5 to the end in steps of 15, as in cron.
    const to = m[1] === "*" ? max : m[3] !== undefined ? Number(m[3]) : m[4] !== undefined ? max : from;
    const step = m[4] !== undefined ? Number(m[4]) : 1;
    if (from < min || to > max || from > to || step < 1) {
      throw new Error(`cron ${what} field ${JSON.stringify(text)}: ${part} is outside ${min}-${max}`);
    }
    for (let v = from; v <= to; v += step) out.add(v);
  }
  return out;
}

/** The first time the schedule is due strictly after `after` (null: a cron expression that never matches). */
export function nextRun(s: VerifySchedule, after: Date): Date | null {
  if (s.kind === "interval") return new Date(after.getTime() + s.ms);
  // The next whole minute after `after`, then skip whole months, days and hours that cannot match.
  const t = new Date(after.getTime());
  t.setUTCSeconds(0, 0);
  t.setUTCMinutes(t.getUTCMinutes() + 1);
  const limit = after.getTime() + CRON_HORIZON_MS;
  while (t.getTime() <= limit) {
    if (!s.month.has(t.getUTCMonth() + 1)) {
      t.setUTCMonth(t.getUTCMonth() + 1, 1);
      t.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (!dayMatches(s, t)) {
      t.setUTCDate(t.getUTCDate() + 1);
      t.setUTCHours(0, 0, 0, 0);
      continue;
    }
    if (!s.hour.has(t.getUTCHours())) {
      t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
      continue;
    }
    if (!s.minute.has(t.getUTCMinutes())) {
      t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0);
      continue;
    }
    return t;
  }
  return null;
}

function dayMatches(s: Extract<VerifySchedule, { kind: "cron" }>, t: Date): boolean {
  const dom = s.dom.values.has(t.getUTCDate());
  const dow = s.dow.values.has(t.getUTCDay());
  if (s.dom.any && s.dow.any) return true;
  if (s.dom.any) return dow;
  if (s.dow.any) return dom;
  return dom || dow;
}
