import {
  effectiveDeregistrationDelay,
  resolveRollingUpdate,
  type AppModel,
  type DeploymentModel,
  type TargetGroupModel,
} from '../manifests/model.js';
import type { JsonObject } from '../manifests/types.js';
import { parseDuration } from '../options.js';
import { batchSpread } from './tail.js';

/**
 * Rollout-time estimate per Deployment, from the manifests alone, calibrated against the realistic lab (whose
 * delays follow AWS's docs and public reports; docs/lab-timings.md has the comparison, `npm run bench -- --only
 * estimate` repeats it):
 *
 *   batchSize = maxSurge + maxUnavailable            (resolved like Kubernetes: surge rounds up, unavailable down,
 *                                                     both 0 ⇒ unavailable 1); Recreate and blue-green: one batch
 *   batches   = ceil(replicas / batchSize)
 *   perBatch  = containerStart + registration
 *       containerStart = schedule/start allowance (5 s) + readinessProbe initialDelay + period × successThreshold
 *                        + minReadySeconds (the slowest container)
 *       registration   = LBC register + the slower ALB node picking the target up (15 s)
 *                        + ⅔ health-check interval (a new target needs one passing check from each node, each node
 *                          checking at its own point of the interval: the later of two comes at ⅔ on average)
 *                        + the controller's next look at the target to set the readiness gate (half its 15 s requeue)
 *                        (the slowest target group routing to the Deployment; 0 when nothing routes to it)
 *   seconds   = batches × perBatch + lastBatch
 *       lastBatch = max(slowest, lastOldGone + drainTail): the rollout ends with the later of the last batch's
 *                   slowest new pod and the last old targets' drain. With n new pods in the last batch and
 *                   u = maxUnavailable, the last old pod goes when n − u of them are ready (at once when n ≤ u):
 *         slowest     = E[slowest of n pods] − E[one pod]
 *         lastOldGone = E[the last old target off every ALB node] − E[one pod] − E[one deregistration]: each
 *                       old pod goes when a new one is ready (the (n − u)-th is the last), its target leaves the
 *                       later node after a deregistration draw; −perBatch when n ≤ u (they went as it started)
 *                       (order statistics of n draws of a pod's start plus the later ALB node's registration and
 *                       first check, and of the later node's deregistration, from the realistic profile's
 *                       distributions: src/plan/tail.ts)
 *         drainTail   = min(deregistration delay, 15 s): the last old targets leave every node (endpoint update,
 *                       LBC deregister, propagation) and, with nothing in flight, AWS completes the deregistration
 *                       at once; an unset delay counts as AWS's 300 s.
 *       Earlier batches overlap (a new pod starts as soon as one is ready), so their spread is not charged.
 *       Recreate and blue-green: u = 0; Recreate also waits for the old pods' preStop before starting.
 *
 * Old pods' termination (preStop) overlaps the next batch (Kubernetes counts a terminating pod as gone), so it does
 * not lengthen the rollout.
 */

export interface EstimateOptions {
  /** Scheduling, image pull and process start before the first readiness probe. Default 5. */
  containerStartSeconds?: number;
  /** LBC's register call plus the slower ALB node picking the target up. Default 15. */
  propagationSeconds?: number;
  /** From the target healthy to the readiness gate True (the controller re-checks every 15 s). Default 7.5. */
  gateCheckSeconds?: number;
  /** The last old targets leaving every node and AWS completing their deregistration. Default 15. */
  deregistrationSeconds?: number;
}

export interface RolloutEstimate {
  deployment: { namespace: string; name: string };
  replicas: number;
  batches: number;
  /** Pods replaced per batch (maxSurge + maxUnavailable, resolved). */
  batchSize: number;
  maxSurge: number;
  maxUnavailable: number;
  /** Whole rollout, including the last batch's drain. */
  seconds: number;
  /** One batch: a new pod starting and turning healthy in its target group(s). */
  batchSeconds: number;
  breakdown: {
    containerStartSeconds: number;
    /** Propagation + ⅔ health-check interval + the readiness-gate check. */
    registrationSeconds: number;
    /** preStop sleep of the old pods. */
    terminationSeconds: number;
    /** Deregistration delay (AWS's 300 s when unset). */
    drainSeconds: number;
    /** The last old targets' drain: min(drainSeconds, deregistration allowance). */
    drainTailSeconds: number;
    /** What the last batch adds beyond perBatch: max(slowest pod, last old pod gone + drainTail). */
    lastBatchSeconds: number;
  };
  /**
   * An Argo canary: what its steps add that the pod arithmetic cannot know. Timed pauses are in `seconds`; analysis
   * runs last as long as their templates say; deploy ends at the first pause only a person ends.
   */
  argo?: { timedPauseSeconds: number; analysisSteps: number; indefinitePauses: number };
}

const DEFAULTS: Required<EstimateOptions> = { containerStartSeconds: 5, propagationSeconds: 15, gateCheckSeconds: 7.5, deregistrationSeconds: 15 };
/** A new target's first passing check from the later of two ALB nodes, as a fraction of the interval. */
const FIRST_CHECK_FRACTION = 2 / 3;
/** LBC's health-check defaults, used for explicit TargetGroupBindings whose target group settings live in AWS. */
const LBC_DEFAULT_HEALTH = { intervalSeconds: 15 };

export function estimateRollouts(model: AppModel, opts: EstimateOptions): RolloutEstimate[] {
  const o = { ...DEFAULTS, ...opts };
  const routes = routesByDeployment(model);
  return model.deployments.map((d) => estimateOne(d, routes.get(d) ?? [], o));
}

interface Route {
  intervalSeconds: number;
  drainSeconds: number;
}

function routesByDeployment(model: AppModel): Map<DeploymentModel, Route[]> {
  const out = new Map<DeploymentModel, Route[]>();
  const add = (d: DeploymentModel, r: Route): void => {
    const list = out.get(d);
    if (list) list.push(r);
    else out.set(d, [r]);
  };
  for (const tg of model.targetGroups) for (const d of tg.deployments) add(d, routeOfTargetGroup(tg));
  // Explicit bindings: their settings live in AWS; assume LBC's health check and AWS's default delay.
  for (const b of model.bindings) for (const d of b.deployments) add(d, { ...LBC_DEFAULT_HEALTH, drainSeconds: effectiveDeregistrationDelay({}) });
  return out;
}

function routeOfTargetGroup(tg: TargetGroupModel): Route {
  return {
    intervalSeconds: tg.healthCheck.intervalSeconds,
    drainSeconds: effectiveDeregistrationDelay(tg),
  };
}

function estimateOne(d: DeploymentModel, routes: Route[], o: Required<EstimateOptions>): RolloutEstimate {
  const replicas = Math.max(0, d.replicas);
  const oneBatch = d.strategy.type === 'Recreate' || d.strategy.type === 'BlueGreen';
  const { maxSurge, maxUnavailable } = oneBatch ? { maxSurge: replicas, maxUnavailable: 0 } : resolveRollingUpdate(d.strategy, replicas);
  const batchSize = oneBatch ? Math.max(1, replicas) : Math.max(1, maxSurge + maxUnavailable);
  const batches = replicas === 0 ? 0 : Math.ceil(replicas / batchSize);

  const probeSeconds = Math.max(
    0,
    ...d.containers.map((c) => (c.readinessProbe ? c.readinessProbe.initialDelaySeconds + c.readinessProbe.periodSeconds * c.readinessProbe.successThreshold : 0)),
  );
  const containerStartSeconds = o.containerStartSeconds + probeSeconds + d.minReadySeconds;
  const registrationSeconds = routes.length === 0 ? 0 : Math.round(Math.max(...routes.map((r) => o.propagationSeconds + r.intervalSeconds * FIRST_CHECK_FRACTION + o.gateCheckSeconds)));
  const terminationSeconds = Math.max(0, ...d.containers.map((c) => (c.preStop.kind === 'sleep' ? c.preStop.seconds : 0)));
  const drainSeconds = routes.length === 0 ? 0 : Math.max(...routes.map((r) => r.drainSeconds));

  const drainTailSeconds = Math.min(drainSeconds, o.deregistrationSeconds);
  const batchSeconds = containerStartSeconds + registrationSeconds;
  const lastBatchSeconds = batches === 0 ? 0 : lastBatch(replicas - (batches - 1) * batchSize, maxUnavailable, routes, batchSeconds, drainTailSeconds);
  const recreateWait = d.strategy.type === 'Recreate' ? terminationSeconds : 0;
  const argo = d.kind === 'Rollout' ? argoSteps(d.loaded.object) : undefined;
  const seconds = (batches === 0 ? 0 : recreateWait + batches * batchSeconds + lastBatchSeconds) + (argo?.timedPauseSeconds ?? 0);
  return {
    deployment: { namespace: d.namespace, name: d.name },
    replicas,
    batches,
    batchSize,
    maxSurge,
    maxUnavailable,
    seconds,
    batchSeconds,
    breakdown: { containerStartSeconds, registrationSeconds, terminationSeconds, drainSeconds, drainTailSeconds, lastBatchSeconds },
    ...(argo ? { argo } : {}),
  };
}

/** max(slowest of the last batch's n pods, its last old pod gone + the drain), beyond one batch's time; whole seconds. */
function lastBatch(n: number, unavailable: number, routes: Route[], batchSeconds: number, drainTailSeconds: number): number {
  const spread = batchSpread(n, routes.length === 0 ? undefined : Math.max(...routes.map((r) => r.intervalSeconds)));
  const lastOldGone = n > unavailable ? spread.lastDrainSeconds(unavailable) : -batchSeconds;
  return Math.max(0, Math.round(Math.max(spread.slowestSeconds, lastOldGone + drainTailSeconds)));
}

function argoSteps(o: JsonObject): { timedPauseSeconds: number; analysisSteps: number; indefinitePauses: number } | undefined {
  const canary = ((o.spec as JsonObject | undefined)?.strategy as JsonObject | undefined)?.canary as JsonObject | undefined;
  const steps = Array.isArray(canary?.steps) ? (canary.steps as JsonObject[]) : [];
  if (steps.length === 0) return undefined;
  let timedPauseSeconds = 0;
  let analysisSteps = 0;
  let indefinitePauses = 0;
  for (const s of steps) {
    if (s.analysis !== undefined) analysisSteps++;
    if (s.pause === undefined || s.pause === null) continue;
    const d = (s.pause as JsonObject).duration;
    const ms = typeof d === 'number' ? d * 1000 : typeof d === 'string' ? parseDuration(d) : undefined;
    if (ms === undefined) indefinitePauses++;
    else timedPauseSeconds += Math.ceil(ms / 1000);
  }
  return { timedPauseSeconds, analysisSteps, indefinitePauses };
}
