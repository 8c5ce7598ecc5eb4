import type { Elbv2Reader } from '../aws/elbv2.js';
import type { AwsClock } from '../aws/clock.js';
import { ExitCode } from '../errors.js';
import type { Decision, GuardOptions, PeriodReader } from '../guard/index.js';
import type { KubeClient } from '../kube/client.js';
import type { LoadedObject } from '../manifests/types.js';
import type { ReadinessGateMode } from '../options.js';
import type { BindingInfo } from '../plan/checks/result.js';
import type { WaitedKind } from '../plan/checks/workload.js';
import type { Logger } from '../report/log.js';
import type { PhaseRecord, Timeline, TimelineEntry } from '../report/timeline.js';
import type { GuardRun, ProbeCheck, summarizeMeasurements } from './guarding.js';
import type { RollbackResult } from './rollback.js';

/** The deploy runner's options, dependencies, run state and result, shared by its modules. */

export const GATE_LABEL = 'elbv2.k8s.aws/pod-readiness-gate-inject';
export { GATE_PREFIX } from '../plan/checks/workload.js';
export type { BindingInfo } from '../plan/checks/result.js';

export interface DeployOptions {
  dryRun: boolean;
  forceConflicts: boolean;
  readinessGates: ReadinessGateMode;
  timeouts: { routingSeconds: number; rolloutSeconds: number };
  /**
   * How many AWS/Kubernetes seconds pass per real second. 1 against a real cluster; the lab's time scale
   * against the lab, so that "when can this target's state change next" is computed on the lab's clock.
   */
  timeScale: number;
  /** The 5xx guard from the workloads phase to the end of the bake window; undefined or disabled: no guard. */
  guard?: GuardOptions;
  /** On a guard failure: roll back to the previous revision (auto) or only report (off). */
  rollback?: 'auto' | 'off';
  /** An Argo Rollout at a pause only a person ends: end the run there (end, the default) or wait through it (wait). */
  argoPauses?: 'end' | 'wait';
}

export interface DeployDeps {
  kube: KubeClient;
  elbv2: Elbv2Reader;
  log: Logger;
  now: () => number;
  /** For the guard's CloudWatch signal. */
  cloudwatch?: PeriodReader;
  /** AWS time (the lab's compressed clock); default wall-clock time at `timeScale`. */
  clock?: AwsClock;
  /** Maps an ALB hostname to the URL the probe uses (the lab); default http://<hostname>/. */
  probeUrlFor?: (hostname: string, listener?: { protocol: string; port: number }) => Promise<string | undefined>;
}

/** unverified: the rollout completed and the guard saw no failure, but it could not measure enough to call it healthy. */
/** paused: an Argo Rollout stopped at a pause only a person ends (`pause: {}`, blue-green awaiting promotion); deploy ended there. */
export type DeployResultKind = 'succeeded' | 'unverified' | 'failed' | 'rolled-back' | 'paused';

export interface DeployResult {
  result: DeployResultKind;
  /** Deployment revision after the run (first workload), and before it. */
  revision: string;
  previousRevision: string;
  durationSeconds: number;
  phases: PhaseRecord[];
  timeline: TimelineEntry[];
  loadBalancerHostnames: string[];
  targetGroupArns: string[];
  apiCalls: {
    kubernetes: Record<string, number>;
    elbv2: Record<string, number>;
    /** ELBv2 attempts answered with a throttling error (each retried with backoff and jitter). */
    throttled: { elbv2: number };
    /** Requests sent again after a transient failure (Kubernetes: 429/5xx/reset; ELBv2: throttling/5xx), by verb or action. */
    retried: { kubernetes: Record<string, number>; elbv2: Record<string, number> };
  };
  /** What failed and in which phase, for the person on call. */
  error?: string;
  /** Result `unverified`: what could not be measured and how to fix it. */
  unverified?: string;
  /** Result `paused`: which Rollout is paused at which step, and how to go on. */
  paused?: string;
  failedPhase?: string;
  /** The guard's decision and what each signal measured (when the guard ran). */
  guard?: { decision: Decision; signals: ReturnType<typeof summarizeMeasurements>; skipped: string[]; cloudwatchMetrics?: string; baselines?: string[] };
  /** The rollback the guard triggered, per Deployment. */
  rollbacks?: RollbackResult[];
  /** DESIGN.md "Interfaces": 0 succeeded; 1 failed or rolled back; 2 invalid input (nothing applied); 3 cluster or AWS unreachable. */
  exitCode: ExitCode;
  applied: string[];
}

export class DeployError extends Error {
  constructor(
    message: string,
    readonly phase: string,
    /** 1 by default; 2 when the input is invalid and nothing was applied. */
    readonly exitCode: ExitCode = ExitCode.failed,
  ) {
    super(message);
    this.name = 'DeployError';
  }
}


export function newRunState(rollingBack: boolean): RunState {
  return {
    applied: [],
    bindings: [],
    hostnames: new Map(),
    revisions: new Map(),
    previous: new Map(),
    labelledInCluster: new Set(),
    watches: [],
    argo: new Map(),
    argoSelectors: new Set(),
    paused: [],
    newPodIps: new Set(),
    rollingBack,
    workloadsApplied: rollingBack,
  };
}

/** The result of a run as data: what it saw (timeline, phases), where it left things, and how many API calls it made. */
export function runResult(
  key: string,
  result: DeployResultKind,
  tl: Pick<Timeline, 'elapsedSeconds' | 'phases' | 'entries'>,
  state: RunState,
  deps: DeployDeps,
  outcome: Pick<DeployResult, 'exitCode'> & Partial<Pick<DeployResult, 'error' | 'failedPhase' | 'guard' | 'rollbacks' | 'unverified' | 'paused'>>,
): DeployResult {
  return {
    result,
    revision: String(state.revisions.get(key) ?? ''),
    previousRevision: String(state.previous.get(key) ?? ''),
    durationSeconds: tl.elapsedSeconds(),
    phases: tl.phases,
    timeline: tl.entries,
    loadBalancerHostnames: [...new Set(state.hostnames.values())],
    targetGroupArns: [...new Set(state.bindings.map((b) => b.arn))],
    apiCalls: {
      kubernetes: { ...deps.kube.calls },
      elbv2: { ...deps.elbv2.calls },
      throttled: { elbv2: deps.elbv2.throttled.count },
      retried: { kubernetes: { ...deps.kube.retries }, elbv2: { ...deps.elbv2.retried } },
    },
    applied: state.applied,
    ...outcome,
  };
}

export interface RunState {
  applied: string[];
  bindings: BindingInfo[];
  hostnames: Map<string, string>;
  revisions: Map<string, number>;
  previous: Map<string, number>;
  /** Namespaces whose gate label was found in the cluster although the manifests lack it (kept on apply). */
  labelledInCluster: Set<string>;
  watches: WorkloadWatch[];
  /** Argo Rollouts ("ns/name"): their selector and the pods they had before this run applied them. */
  argo: Map<string, { selector: string; oldPodUids: Set<string>; oldPodIps: Set<string>; /** Before the apply: status.currentPodHash and spec.template (JSON). */ before?: { hash: string; template: string }; /** The pod hash before this run changed the template: a status still naming it is not about this release. */ staleHash?: string }>;
  /** Services ("ns/name") whose selector Argo keeps (it added rollouts-pod-template-hash): applied without it. */
  argoSelectors: Set<string>;
  /** Rollouts the run ended at a pause of (the message for each). */
  paused: string[];
  /** IPs of the new version's pods, for the guard's target-health signal. */
  newPodIps: Set<string>;
  guard?: GuardRun;
  /** The probe's preflight (reachability and the live version's baseline), once done. */
  probeCheck?: ProbeCheck;
  /** While rolling back, the waits do not stop on the (already handled) guard failure. */
  rollingBack: boolean;
  /** The new workload templates were written: a failure from here on leaves the previous revision to go back to. */
  workloadsApplied: boolean;
}


export interface WorkloadWatch {
  loaded: LoadedObject;
  /** Deployment when absent. */
  kind?: WaitedKind;
  namespace: string;
  name: string;
  selector: string;
  bindings: BindingInfo[];
  oldPodIps: Set<string>;
  /** Pods that existed before this run applied the workload: they may predate the TargetGroupBinding (no gate). */
  oldPodUids: Set<string>;
  previousRevision?: number;
  /** metadata.generation before this run applied the Deployment (absent: it did not exist). */
  generationBefore?: number;
  /** metadata.generation the apply of this run produced. */
  appliedGeneration?: number;
  /** Whether this run changed the Deployment's spec (its generation moved, or it is new): only those are rolled back. */
  changed?: boolean;
}
