/**
 * Task Management Function Requests (RFC 7143 §11.5): which tasks a function aborts, what the
 * SCSI layer is told, and the response code.
 */
import type { Connection } from "./connection.js";
import { Flag, TargetOp, cmdSN, initHeader, itt, lunOf, word20, writeSequence } from "./pdu.js";
import type { Session, SessionTask } from "./session.js";

export const TmfFunction = {
  abortTask: 1,
  abortTaskSet: 2,
  clearAca: 3,
  clearTaskSet: 4,
  lunReset: 5,
  targetWarmReset: 6,
  targetColdReset: 7,
  taskReassign: 8,
} as const;

export const TmfResponse = {
  functionComplete: 0,
  taskDoesNotExist: 1,
  lunDoesNotExist: 2,
  taskStillAllegiant: 3,
  reassignmentNotSupported: 4,
  functionNotSupported: 5,
  authorizationFailed: 6,
  functionRejected: 255,
} as const;

/** Which tasks a function terminates: this session's, every session's, or none. */
export function tmfScope(fn: number): "task" | "session-lun" | "all-sessions-lun" | "all-sessions" | "none" {
  switch (fn) {
    case TmfFunction.abortTask:
      return "task";
    case TmfFunction.abortTaskSet:
      return "session-lun";
    case TmfFunction.clearTaskSet:
    case TmfFunction.lunReset:
      return "all-sessions-lun";
    case TmfFunction.targetWarmReset:
    case TmfFunction.targetColdReset:
      return "all-sessions";
    default:
      return "none";
  }
}

function tasksOf(sessions: Iterable<Session>, lun: number | undefined): SessionTask[] {
  const out: SessionTask[] = [];
  for (const s of sessions) {
    if (s.id.sessionType !== "Normal") continue;
    for (const t of s.tasks.values()) if (lun === undefined || t.lun === lun) out.push(t);
  }
  return out;
}

/** TARGET WARM RESET (and the first part of a cold one): every task ends, every LUN resets. */
async function resetTarget(conn: Connection): Promise<void> {
  const nexus = conn.session!.nexus;
  await Promise.all(tasksOf(conn.allSessions(), undefined).map((t) => t.abort()));
  for (const l of conn.scsi.luns(nexus)) await conn.scsi.lunReset(nexus, l);
}

export async function handleTaskManagement(conn: Connection, h: Buffer, immediate: boolean): Promise<void> {
  const session = conn.session!;
  const fn = h[1]! & 0x7f;
  const lun = lunOf(h);
  const referenced = word20(h);
  const tag = itt(h);
  const sn = cmdSN(h);
  const nexus = session.nexus;
  let response: number = TmfResponse.functionComplete;
  const lunExists = (): boolean => lun >= 0 && conn.scsi.luns(nexus).includes(lun);
  let coldReset = false;

  switch (fn) {
    case TmfFunction.abortTask: {
      const task = session.tasks.get(referenced);
      if (!task || referenced === tag) response = TmfResponse.taskDoesNotExist;
      else await task.abort();
      break;
    }
    case TmfFunction.abortTaskSet:
      if (!lunExists()) response = TmfResponse.lunDoesNotExist;
      else await Promise.all(tasksOf([session], lun).map((t) => t.abort()));
      break;
    case TmfFunction.clearTaskSet:
      if (!lunExists()) response = TmfResponse.lunDoesNotExist;
      else {
        await Promise.all(tasksOf(conn.allSessions(), lun).map((t) => t.abort()));
        await conn.scsi.clearTaskSet(nexus, lun);
      }
      break;
    case TmfFunction.lunReset:
      if (!lunExists()) response = TmfResponse.lunDoesNotExist;
      else {
        await Promise.all(tasksOf(conn.allSessions(), lun).map((t) => t.abort()));
        await conn.scsi.lunReset(nexus, lun);
      }
      break;
    case TmfFunction.targetWarmReset:
      await resetTarget(conn);
      break;
    case TmfFunction.targetColdReset:
      // A cold reset drops every initiator's connections, not just the asker's: only when allowed.
      if (!conn.allowColdReset) {
        response = TmfResponse.authorizationFailed;
        break;
      }
      await resetTarget(conn);
      coldReset = true;
      break;
    case TmfFunction.clearAca:
      response = TmfResponse.functionNotSupported;
      break;
    case TmfFunction.taskReassign:
      response = TmfResponse.reassignmentNotSupported;
      break;
    default:
      response = TmfResponse.functionRejected;
  }
  conn.log.info({ function: fn, lun, referenced, response }, "task management");
  if (conn.closed) return;
  if (!immediate) session.window.release(sn);
  const r = conn.writer.newHeader();
  initHeader(r, TargetOp.taskManagementResponse, Flag.final, 0);
  r[2] = response;
  r.writeUInt32BE(tag, 16);
  writeSequence(r, conn.statSN++, session.window.expCmdSN, session.window.maxCmdSN);
  conn.writer.send(r);
  if (coldReset) conn.dropAllConnections("target cold reset");
}
