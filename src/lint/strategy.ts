import { resolveRollingUpdate } from '../manifests/model.js';
import { estimateRollouts } from '../plan/estimate.js';
import { deploymentName, plural, routedDeployments } from './routes.js';
import type { RawFinding, RuleContext } from './types.js';

/** Rules about how the workload controller replaces pods: Recreate, maxUnavailable, and the progress deadline. */

export function strategyRules(ctx: RuleContext): RawFinding[] {
  return [...recreate(ctx), ...maxUnavailable(ctx), ...progressDeadline(ctx), ...replicasWithHpa(ctx)];
}

function recreate({ model }: RuleContext): RawFinding[] {
  return routedDeployments(model)
    .filter((rd) => rd.deployment.strategy.type === 'Recreate')
    .map(({ deployment: d, routes }) => ({
      rule: 'recreate-strategy' as const,
      severity: 'error' as const,
      message: `${deploymentName(d)} uses strategy Recreate: every old pod is deleted before any new pod starts, so every target behind ${routes[0]?.label ?? 'its target group'} drains at once and the ALB answers 503 (no registered targets) until new pods pass their health checks`,
      fix: 'use strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}} — if two versions must never run side by side, put the switch behind weighted target groups (alb.ingress.kubernetes.io/actions.*) instead',
      at: d.loaded,
      path: ['spec', 'strategy', 'type'],
    }));
}

function maxUnavailable({ model }: RuleContext): RawFinding[] {
  const out: RawFinding[] = [];
  for (const { deployment: d } of routedDeployments(model)) {
    if (d.strategy.type !== 'RollingUpdate' && d.strategy.type !== 'Canary') continue;
    if (d.replicas < 1) continue;
    const raw = d.strategy.maxUnavailable;
    // A DaemonSet's pod count is its node count, which the manifests do not say: only 100% is known to empty the target group.
    if (d.kind === 'DaemonSet' && !(typeof raw === 'string' && /^\s*100(\.0+)?\s*%\s*$/.test(raw))) continue;
    const resolved = resolveRollingUpdate(d.strategy, d.replicas).maxUnavailable;
    const hundred = typeof raw === 'string' && /^\s*100(\.0+)?\s*%\s*$/.test(raw);
    if (resolved < d.replicas && !hundred) continue;
    const block = d.kind === 'Rollout' ? 'canary' : 'rollingUpdate';
    const at = d.kind === 'StatefulSet' || d.kind === 'DaemonSet' ? 'updateStrategy' : 'strategy';
    out.push({
      rule: 'max-unavailable',
      severity: 'error',
      message: `${deploymentName(d)} has maxUnavailable ${String(raw)}, which resolves to ${resolved} of ${plural(d.replicas, 'replica')}: the rollout may remove every serving pod before a replacement is available, leaving the target group with no healthy targets — 503`,
      fix:
        d.kind === 'StatefulSet'
          ? 'a StatefulSet deletes each pod before its successor starts: run at least 2 replicas with spec.updateStrategy.rollingUpdate.maxUnavailable: 1 (the default), so the others serve while one is replaced'
          : `set spec.${at}.${block}.maxUnavailable: 0 and maxSurge: 1 (or 25%), so a new pod is added and healthy before an old one is removed${d.replicas === 1 ? '; with one replica this is the only safe setting' : ''}`,
      at: d.loaded,
      path: ['spec', at, block, 'maxUnavailable'],
    });
  }
  return out;
}

function progressDeadline({ model }: RuleContext): RawFinding[] {
  const out: RawFinding[] = [];
  const estimates = estimateRollouts(model, {});
  model.deployments.forEach((d, i) => {
    // Only Deployments and Rollouts have a progress deadline.
    if (d.kind === 'StatefulSet' || d.kind === 'DaemonSet') return;
    const e = estimates[i];
    if (!e || e.seconds <= d.progressDeadlineSeconds) return;
    const suggested = Math.ceil((e.seconds * 1.5) / 60) * 60;
    out.push({
      rule: 'progress-deadline',
      severity: 'warning',
      message:
        `${deploymentName(d)} has progressDeadlineSeconds ${d.progressDeadlineSeconds}, but the rollout is estimated at ~${Math.round(e.seconds)} s ` +
        `(${d.strategy.type === 'Recreate' ? `old pods stop first, ${e.breakdown.terminationSeconds} s; ` : ''}${plural(e.replicas, 'replica')} in ${plural(e.batches, 'batch', 'batches')} of ~${Math.round(e.batchSeconds)} s: start ${e.breakdown.containerStartSeconds} s + target healthy ${e.breakdown.registrationSeconds} s; then ${e.breakdown.lastBatchSeconds} s for the last batch's slowest pod and the last targets' drain): ` +
        'a slow batch can make Kubernetes report ProgressDeadlineExceeded and the deploy fail (and roll back) although nothing is wrong',
      fix: `set spec.progressDeadlineSeconds: ${suggested} (about 1.5 × the estimate), or speed up the batches (larger maxSurge, shorter health-check interval)`,
      at: d.loaded,
      path: ['spec', 'progressDeadlineSeconds'],
    });
  });
  return out;
}

/** An HPA scales the workload, yet the manifest pins spec.replicas: every apply resets the HPA's count. */
function replicasWithHpa({ model }: RuleContext): RawFinding[] {
  return model.deployments
    .filter((d) => d.hpa !== undefined && d.replicasExplicit)
    .map((d) => ({
      rule: 'replicas-with-hpa' as const,
      severity: 'warning' as const,
      message: `${deploymentName(d)} sets spec.replicas: ${d.replicas}, but HorizontalPodAutoscaler ${d.hpa?.name ?? ''} scales it (min ${d.hpa?.minReplicas ?? 1}${d.hpa?.maxReplicas !== undefined ? `, max ${d.hpa.maxReplicas}` : ''}): every apply resets the replica count to ${d.replicas}, scaling a busy app down in the middle of a rollout`,
      fix: 'remove spec.replicas from the manifest and let the HPA own it (minReplicas sets the floor)',
      at: d.loaded,
      path: ['spec', 'replicas'],
    }));
}
