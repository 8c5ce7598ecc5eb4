import type { Preflight } from '../preflight/index.js';
import type { PhaseName, PlanRoute } from '../plan/phases.js';
import type { Logger } from '../report/log.js';
import { Timeline, type TimelineEntry, type TimelineKind } from '../report/timeline.js';
import type { DeployDeps, DeployOptions, RunState } from './types.js';

/**
 * One run's context: what it runs (the preflight and its plan), how (options), with what (dependencies), what it
 * has learned so far (state), and one recorder that feeds both the timeline (the report) and the log.
 */
export interface RunContext {
  pre: Preflight;
  options: DeployOptions;
  deps: DeployDeps;
  state: RunState;
  rec: Recorder;
  /** The routes of each waited workload ("ns/name"): the plan's, plus those the cluster-routes step finds live. */
  routes: Map<string, PlanRoute[]>;
  /** Namespaces that need the readiness-gate label because of routes found in the cluster. */
  clusterGateNamespaces: Set<string>;
}

/** The one place a run says what happened: each event goes to the timeline and, unless quiet, to the log. */
export class Recorder {
  readonly timeline: Timeline;
  constructor(
    readonly log: Logger,
    now: () => number,
  ) {
    this.timeline = new Timeline(now);
  }

  /** Timeline and log (info). */
  note(kind: TimelineKind, message: string, data?: TimelineEntry['data']): void {
    this.timeline.add(kind, message, data);
    this.log.info(message);
  }

  /** Timeline ('warning') and log (warn). */
  warn(message: string, data?: TimelineEntry['data']): void {
    this.timeline.add('warning', message, data);
    this.log.warn(message);
  }

  /** Timeline only: fine-grained observations (pod and target states) the log would drown in. */
  observe(kind: TimelineKind, message: string, data?: TimelineEntry['data']): void {
    this.timeline.add(kind, message, data);
  }

  /** Enters a phase unless the run is in it already. */
  enter(phase: PhaseName | 'preflight' | 'rollback'): void {
    const open = this.timeline.phases.at(-1);
    if (open && !open.endedAt && open.name === phase) return;
    this.timeline.startPhase(phase);
  }

  get currentPhase(): string | undefined {
    return this.timeline.phases.at(-1)?.name;
  }
}

export function newRunContext(pre: Preflight, options: DeployOptions, deps: DeployDeps, state: RunState): RunContext {
  const routes = new Map<string, PlanRoute[]>();
  for (const s of pre.plan.steps) if (s.type === 'workload' || s.type === 'argo-rollout') routes.set(`${s.workload.namespace}/${s.workload.name}`, s.routes);
  return { pre, options, deps, state, rec: new Recorder(deps.log, deps.now), routes, clusterGateNamespaces: new Set() };
}
