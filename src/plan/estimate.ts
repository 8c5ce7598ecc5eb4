import {
  effectiveDeregistrationDelay,
  resolveRollingUpdate,
  type AppModel,
  type DeploymentModel,
  type TargetGroupModel,
} from '../manifests/model.js';

/**
 * Rollout-time estimate per Deployment, from the manifests alone. Deliberately simple and on the slow side:
 *
 *   batchSize = maxSurge + maxUnavailable            (resolved like Kubernetes: surge rounds up, unavailable down,
 *                                                     both 0 ⇒ unavailable 1); Recreate and blue-green: one batch
 *   batches   = ceil(replicas / batchSize)
 *   perBatch  = containerStart + registration
 *       containerStart = schedule/pull/start allowance (10 s) + readinessProbe initialDelay + period × successThreshold
 *                        + minReadySeconds (the slowest container)
 *       registration   = LBC register + ALB propagation allowance (10 s) + health-check interval × healthy threshold
 *                        (the slowest target group routing to the Deployment; 0 when nothing routes to it)
 *   seconds   = batches × perBatch + max(preStop, deregistration delay)
 *       the tail: the last old pods sleep in preStop while their targets drain (the two run at the same time);
 *       an unset delay counts as AWS's 300 s. Recreate also waits for the old pods to stop before starting.
 *
 * Old pods' termination overlaps the next batch (Kubernetes counts a terminating pod as gone), so it is paid once.
 */

export interface EstimateOptions {
  /** Scheduling, image pull and process start before the first readiness probe. Default 10. */
  containerStartSeconds?: number;
  /** LBC's register call plus the ALB data plane picking the target up. Default 10. */
  propagationSeconds?: number;
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
    /** Health-check interval × healthy threshold + propagation. */
    registrationSeconds: number;
    /** preStop sleep of the old pods. */
    terminationSeconds: number;
    /** Deregistration delay (AWS's 300 s when unset). */
    drainSeconds: number;
  };
}

const DEFAULTS: Required<EstimateOptions> = { containerStartSeconds: 10, propagationSeconds: 10 };
/** LBC's health-check defaults, used for explicit TargetGroupBindings whose target group settings live in AWS. */
const LBC_DEFAULT_HEALTH = { intervalSeconds: 15, healthyThreshold: 2 };

export function estimateRollouts(model: AppModel, opts: EstimateOptions): RolloutEstimate[] {
  const o = { ...DEFAULTS, ...opts };
  const routes = routesByDeployment(model);
  return model.deployments.map((d) => estimateOne(d, routes.get(d) ?? [], o));
}

interface Route {
  intervalSeconds: number;
  healthyThreshold: number;
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
    healthyThreshold: tg.healthCheck.healthyThreshold,
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
  const registrationSeconds = routes.length === 0 ? 0 : Math.max(...routes.map((r) => o.propagationSeconds + r.intervalSeconds * r.healthyThreshold));
  const terminationSeconds = Math.max(0, ...d.containers.map((c) => (c.preStop.kind === 'sleep' ? c.preStop.seconds : 0)));
  const drainSeconds = routes.length === 0 ? 0 : Math.max(...routes.map((r) => r.drainSeconds));

  const batchSeconds = containerStartSeconds + registrationSeconds;
  const recreateWait = d.strategy.type === 'Recreate' ? terminationSeconds : 0;
  const seconds = batches === 0 ? 0 : recreateWait + batches * batchSeconds + Math.max(terminationSeconds, drainSeconds);
  return {
    deployment: { namespace: d.namespace, name: d.name },
    replicas,
    batches,
    batchSize,
    maxSurge,
    maxUnavailable,
    seconds,
    batchSeconds,
    breakdown: { containerStartSeconds, registrationSeconds, terminationSeconds, drainSeconds },
  };
}
