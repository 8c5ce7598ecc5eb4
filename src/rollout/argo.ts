import { UnreachableError } from '../errors.js';
import { KubeApiError } from '../kube/client.js';
import { Informer } from '../kube/informer.js';
import { ABORT_PATCH, argoRolloutState, checkArgoRollout, describeProgress, type ArgoView, type ArgoWatchView } from '../plan/checks/argo-rollout.js';
import { podIp } from '../plan/checks/workload.js';
import { argoStepServices, type PlanStep } from '../plan/steps.js';
import type { RunContext } from './context.js';
import { GuardTripped } from './guarding.js';
import { DeployError } from './types.js';
import { waitUntil, WaitFailed, type CheckResult } from './wait.js';
import { changesOf, observePods, startTargetHealth, unsyncedMessage } from './workload.js';

/**
 * The wait for an Argo Rollout (plan step `argo-rollout`): keeps a snapshot of the Rollout, its pods, the namespace's
 * EndpointSlices and TargetGroupBindings and the target health of its Services' target groups current, and
 * re-evaluates the pure check (plan/checks/argo-rollout.ts). Argo owns the rollout: nothing here writes the Rollout,
 * except the abort `kubectl argo rollouts abort` would send when deploy itself sees the release fail (--rollback auto).
 */
export const ROLLOUT_API = 'argoproj.io/v1alpha1';

export async function waitForArgoRollout(step: Extract<PlanStep, { type: 'argo-rollout' }>, ctx: RunContext): Promise<void> {
  const { options, deps, state, rec } = ctx;
  rec.enter(step.phase);
  const { namespace: ns, name } = step.workload;
  const key = `${ns}/${name}`;
  const before = state.argo.get(key);
  if (!before) throw new DeployError(`internal: the pods of Rollout ${key} were not recorded before its apply`, step.phase);
  const routes = ctx.routes.get(key) ?? step.routes;
  const services = argoStepServices(step, routes);
  const rollout = new Informer(deps.kube, { apiVersion: ROLLOUT_API, kind: 'Rollout', namespace: ns, fieldSelector: `metadata.name=${name}` });
  const pods = new Informer(deps.kube, { apiVersion: 'v1', kind: 'Pod', namespace: ns, labelSelector: before.selector });
  const slices = new Informer(deps.kube, { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', namespace: ns });
  const tgbs = new Informer(deps.kube, { apiVersion: 'elbv2.k8s.aws/v1beta1', kind: 'TargetGroupBinding', namespace: ns });
  // No bindings to find when nothing routes to it: then the TargetGroupBinding CRD may not even exist.
  const informers = services.length > 0 ? [rollout, pods, slices, tgbs] : [rollout, pods];
  informers.forEach((i) => i.start());
  const view: ArgoWatchView = {
    namespace: ns,
    name,
    selector: before.selector,
    oldPodUids: before.oldPodUids,
    services,
    pauses: options.argoPauses ?? 'end',
    gates: options.readinessGates !== 'off',
    ...(before.staleHash !== undefined ? { staleHash: before.staleHash } : {}),
  };
  let last: ArgoView | undefined;
  const targets = startTargetHealth(() => last?.bindings ?? [], ctx);
  const offPods = pods.onChange(() => targets.soon());
  const seenPods = new Map<string, string>();
  let lastProgress = '';
  try {
    const check = (): CheckResult => {
      const awsError = targets.error();
      if (awsError instanceof UnreachableError) throw awsError;
      const unsynced = unsyncedMessage(informers);
      if (unsynced) return { done: false, message: unsynced };
      const tripped = state.guard?.tripped();
      if (tripped) throw new GuardTripped(tripped);
      observePods(pods.list(), before, rec, seenPods);
      const seen = checkArgoRollout(view, {
        rollout: rollout.list()[0],
        pods: pods.list(),
        slices: services.length > 0 ? slices.list() : [],
        bindings: services.length > 0 ? tgbs.list() : [],
        health: targets.health,
        ...(awsError ? { awsError: awsError.message } : {}),
      });
      const grew = (seen.bindings.length !== (last?.bindings.length ?? 0));
      last = seen;
      if (grew) targets.soon();
      for (const p of seen.newPods) if (podIp(p)) state.newPodIps.add(podIp(p) as string);
      if (seen.state) {
        // Each change of phase, step or weight once in the timeline (and the log): the long wait's landmarks.
        const progress = `${seen.state.phase}: ${describeProgress(seen.state)}`;
        if (seen.state.observed && progress !== lastProgress) {
          lastProgress = progress;
          rec.note('argo-rollout', `Rollout ${key} ${progress}`, { rollout: key, phase: seen.state.phase, step: seen.state.stepIndex ?? null, canaryWeight: seen.state.weights?.canary ?? null });
        }
      }
      return seen.result;
    };
    const result = await waitUntil(check, {
      what: `rolling out Rollout ${key}`,
      deadlineMs: options.timeouts.rolloutSeconds * 1000,
      recheckMs: 1000,
      log: deps.log,
      now: deps.now,
      subscribe: changesOf(informers, targets, state),
    }).catch(async (err: unknown) => {
      // Argo already gave up (Degraded) or the failure is deploy's own: abort the canary unless told not to.
      if (err instanceof WaitFailed) throw new WaitFailed(`${err.message}\n${await abortOutcome(key, ctx, last)}`, err.timedOut);
      throw err;
    });
    if (last?.outcome === 'paused') {
      state.paused.push(result.message);
      rec.note('argo-rollout', result.message, { rollout: key, phase: 'Paused', step: last.state?.stepIndex ?? null });
    } else {
      deps.log.info(result.message);
    }
  } finally {
    offPods();
    await targets.stop();
    await Promise.all(informers.map((i) => i.stop()));
  }
}

/**
 * What became of the Rollout after a failed wait. With --rollback auto, a Rollout Argo has not aborted and not fully
 * promoted is aborted the way `kubectl argo rollouts abort` does it (a merge patch of status.abort=true to the status
 * subresource, else the object); Argo then shifts all traffic back to the stable ReplicaSet and scales the canary
 * down. Its template is never written.
 */
async function abortOutcome(key: string, ctx: RunContext, last: ArgoView | undefined): Promise<string> {
  const { deps, options, rec } = ctx;
  const [ns, name] = key.split('/') as [string, string];
  const cmd = `kubectl argo rollouts abort ${name} -n ${ns}`;
  const live = await deps.kube.get(ROLLOUT_API, 'Rollout', ns, name).catch(() => undefined);
  const st = live ? argoRolloutState(live) : last?.state;
  if (!st) return `Rollout ${key}: its state could not be read, so it was not aborted; check it with \`kubectl argo rollouts get rollout ${name} -n ${ns}\`.`;
  if (st.aborted) return `Rollout ${key}: aborted by Argo; nothing for alb-rollout to undo (it never writes a Rollout's template).`;
  if (st.stableRS !== undefined && st.stableRS === st.currentPodHash) {
    return `Rollout ${key}: not aborted — the new version (${st.currentPodHash}) is already its stable ReplicaSet (fully promoted); to go back: \`kubectl argo rollouts undo ${name} -n ${ns}\`.`;
  }
  if (options.rollback === 'off') return `Rollout ${key}: not aborted (--rollback off); the canary keeps its share of the traffic. Abort it with \`${cmd}\`, or fix forward.`;
  try {
    await deps.kube.patch(ROLLOUT_API, 'Rollout', ns, name, ABORT_PATCH, 'merge', 'status').catch((err: unknown) => {
      if (err instanceof KubeApiError && err.code === 404) return deps.kube.patch(ROLLOUT_API, 'Rollout', ns, name, ABORT_PATCH, 'merge');
      throw err;
    });
  } catch (err) {
    return `Rollout ${key}: expected to abort it (status.abort=true, as \`${cmd}\` does), but the patch failed: ${(err as Error).message}. Run \`${cmd}\` yourself (deploy needs patch on rollouts/status).`;
  }
  const text = `Rollout ${key}: aborted (status.abort=true, as \`${cmd}\` does): Argo sends all traffic back to the stable ReplicaSet${st.stableRS ? ` ${st.stableRS}` : ''} and scales the canary down; spec.template still holds the new version — fix it and deploy again, or \`kubectl argo rollouts undo ${name} -n ${ns}\`.`;
  rec.note('argo-rollout', text, { rollout: key, outcome: 'aborted' });
  return text;
}
