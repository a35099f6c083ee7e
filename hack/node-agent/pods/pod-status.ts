// Pure computation of a pod's status from what the agent knows about its containers.

export type ContainerState =
  | { waiting: { reason: string; message?: string } }
  | { running: { startedAt: string } }
  | {
      terminated: {
        exitCode: number;
        signal?: number;
        reason: string;
        message?: string;
        startedAt: string;
        finishedAt: string;
      };
    };

export interface ContainerView {
  name: string;
  image: string;
  state: ContainerState;
  lastState?: ContainerState;
  restartCount: number;
  ready: boolean;
  started: boolean;
  /** Terminated for good: the restart policy will not start it again. */
  final: boolean;
}

export interface PodView {
  sandboxReady: boolean;
  initDone: boolean;
  init: ContainerView[];
  containers: ContainerView[];
  podIP?: string;
  hostIP: string;
  startTime: string;
}

export interface Condition {
  type: string;
  status: "True" | "False";
  reason?: string;
  message?: string;
  lastTransitionTime: string;
  lastProbeTime: null;
}

export function podPhase(v: PodView): string {
  const cs = v.containers;
  if (v.initDone && cs.length > 0 && cs.every((c) => "terminated" in c.state && c.final)) {
    return cs.every((c) => "terminated" in c.state && c.state.terminated.exitCode === 0)
      ? "Succeeded"
      : "Failed";
  }
  if (v.init.some((c) => c.final && "terminated" in c.state && c.state.terminated.exitCode !== 0))
    return "Failed";
  if (v.initDone && cs.every((c) => c.restartCount > 0 || !("waiting" in c.state))) return "Running";
  return "Pending";
}

function cond(
  type: string,
  ok: boolean,
  prev: Map<string, Condition>,
  now: string,
  reason?: string,
): Condition {
  const status = ok ? "True" : "False";
  const before = prev.get(type);
  const c: Condition = {
    type,
    status,
    lastTransitionTime: before && before.status === status ? before.lastTransitionTime : now,
    lastProbeTime: null,
  };
  if (!ok && reason) c.reason = reason;
  return c;
}

function containerStatus(c: ContainerView, podUID: string) {
  return {
    name: c.name,
    image: c.image,
    imageID: `hasan-local://${c.image}`,
    containerID: `hasan://${podUID.slice(0, 8)}-${c.name}-${c.restartCount}`,
    state: c.state,
    lastState: c.lastState ?? {},
    ready: c.ready,
    started: c.started,
    restartCount: c.restartCount,
  };
}

export function podStatus(v: PodView, podUID: string, prev: Map<string, Condition>, now: string) {
  const phase = podPhase(v);
  const containersReady = v.containers.length > 0 && v.containers.every((c) => c.ready);
  const notReady = v.containers.filter((c) => !c.ready).map((c) => c.name);
  const terminal = phase === "Succeeded" || phase === "Failed";
  const conditions = [
    cond("PodReadyToStartContainers", v.sandboxReady && !terminal, prev, now),
    cond("Initialized", v.initDone, prev, now, "ContainersNotInitialized"),
    cond("Ready", containersReady && !terminal, prev, now, terminal ? "PodCompleted" : "ContainersNotReady"),
    cond(
      "ContainersReady",
      containersReady && !terminal,
      prev,
      now,
      terminal ? "PodCompleted" : "ContainersNotReady",
    ),
    cond("PodScheduled", true, prev, now),
  ];
  for (const c of conditions) {
    if (c.status === "False" && (c.type === "Ready" || c.type === "ContainersReady") && !terminal) {
      c.message = `containers with unready status: [${notReady.join(" ")}]`;
    }
  }
  return {
    phase,
    conditions,
    hostIP: v.hostIP,
    hostIPs: [{ ip: v.hostIP }],
    ...(v.podIP ? { podIP: v.podIP, podIPs: [{ ip: v.podIP }] } : {}),
    startTime: v.startTime,
    initContainerStatuses: v.init.length ? v.init.map((c) => containerStatus(c, podUID)) : undefined,
    containerStatuses: v.containers.map((c) => containerStatus(c, podUID)),
  };
}
