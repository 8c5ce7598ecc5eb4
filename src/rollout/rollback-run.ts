import { ExitCode, exitCodeOf, InputError, UnreachableError } from '../errors.js';
import { KubeApiError } from '../kube/client.js';
import { buildModel } from '../manifests/model.js';
import type { JsonObject, KubeObject, LoadedObject, ManifestSet } from '../manifests/types.js';
import type { ReadinessGateMode } from '../options.js';
import type { Preflight } from '../preflight/index.js';
import { Recorder } from './context.js';
import { rollbackAndWait, type RollbackResult } from './rollback.js';
import { DeployError, newRunState, runResult, type DeployDeps, type DeployOptions, type DeployResult } from './types.js';
import { WaitFailed } from './wait.js';
import { waitForWorkload } from './workload.js';

export interface RollbackRunOptions {
  namespace: string;
  deployment: string;
  toRevision?: number;
  rolloutTimeoutSeconds: number;
  readinessGates: ReadinessGateMode;
  timeScale: number;
}

/** Objects read from the cluster, shaped like loaded manifests so that the model (routes, target groups) applies. */
function liveObjects(objects: KubeObject[]): LoadedObject[] {
  return objects.map((object) => {
    const source = { file: `cluster:${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`, line: 1 };
    return {
      object,
      ref: { apiVersion: object.apiVersion, kind: object.kind, namespace: object.metadata.namespace ?? '', name: object.metadata.name },
      source,
      locate: () => source,
    };
  });
}

/**
 * `alb-rollout rollback`: put a Deployment back to its previous (or a named) revision, the way `kubectl rollout
 * undo` does, and wait with the same rules as a deploy (gates, healthy targets, drained old targets).
 */
export async function runRollback(options: RollbackRunOptions, deps: DeployDeps): Promise<DeployResult> {
  const state = newRunState(true);
  const rec = new Recorder(deps.log, deps.now);
  const tl = rec.timeline;
  const { namespace, deployment } = options;
  const key = `${namespace}/${deployment}`;
  const rollbacks: RollbackResult[] = [];
  let error: string | undefined;
  let exitCode: ExitCode = ExitCode.ok;
  let rolledBack = false;
  try {
    tl.startPhase('rollback');
    const current = await deps.kube.get('apps/v1', 'Deployment', namespace, deployment);
    if (!current) throw new DeployError(`Deployment ${key} does not exist. Fix: check the name and namespace (kubectl get deployments -n ${namespace}).`, 'rollback', ExitCode.invalidInput);
    const [services, ingresses, tgbs] = await Promise.all([
      deps.kube.list('v1', 'Service', namespace),
      deps.kube.list('networking.k8s.io/v1', 'Ingress', namespace),
      deps.kube.list('elbv2.k8s.aws/v1beta1', 'TargetGroupBinding', namespace).catch(() => ({ items: [] as KubeObject[], resourceVersion: '' })),
    ]);
    const live = liveObjects([{ ...current, apiVersion: 'apps/v1', kind: 'Deployment' }, ...services.items, ...ingresses.items]);
    const set: ManifestSet = { objects: live, files: [] };
    const model = buildModel(set);
    const pre = { model } as Pick<Preflight, 'model'> as Preflight;
    const d = model.deployments[0];
    const serviceNames = new Set((d?.services ?? []).map((s) => s.name));
    for (const b of tgbs.items) {
      const spec = (b.spec ?? {}) as JsonObject;
      const ref = (spec.serviceRef ?? {}) as JsonObject;
      if (!serviceNames.has(String(ref.name))) continue;
      const tg = model.targetGroups.find((t) => t.service.name === ref.name);
      state.bindings.push({
        route: {
          ingress: { namespace, name: tg?.ingress.name ?? '' },
          service: { namespace, name: String(ref.name) },
          port: (ref.port as string | number | undefined) ?? tg?.port ?? '',
          targetType: String(spec.targetType ?? ''),
        },
        name: b.metadata.name,
        arn: String(spec.targetGroupARN ?? ''),
        targetType: String(spec.targetType ?? ''),
      });
    }
    const spec = (current.spec ?? {}) as JsonObject;
    const matchLabels = ((spec.selector as JsonObject | undefined)?.matchLabels ?? {}) as Record<string, string>;
    const selector = Object.entries(matchLabels).map(([k, v]) => `${k}=${v}`).join(',');
    const pods = (await deps.kube.list('v1', 'Pod', namespace, { labelSelector: selector })).items;
    const loaded = live[0] as LoadedObject;
    const runOptions: DeployOptions = {
      dryRun: false,
      forceConflicts: false,
      readinessGates: options.readinessGates,
      timeouts: { routingSeconds: 0, rolloutSeconds: options.rolloutTimeoutSeconds },
      timeScale: options.timeScale,
    };
    const result = await rollbackAndWait(deps.kube, namespace, deployment, { ...(options.toRevision !== undefined ? { toRevision: options.toRevision } : {}), now: deps.now }, async (target) => {
      state.previous.set(key, target.fromRevision);
      tl.add('rollback', `Deployment ${key}: revision ${target.fromRevision} → template of revision ${target.toRevision} written`, { from: target.fromRevision, to: target.toRevision });
      deps.log.info(`rolling back Deployment ${key} to the template of revision ${target.toRevision}; waiting for gates, healthy targets and drained old targets`);
      await waitForWorkload(
        {
          loaded,
          namespace,
          name: deployment,
          selector: target.selector,
          bindings: state.bindings,
          oldPodIps: target.oldPodIps,
          oldPodUids: new Set(pods.map((p) => String(p.metadata.uid ?? ''))),
          previousRevision: target.fromRevision,
        },
        { pre, options: runOptions, deps, state, rec },
      );
    });
    rollbacks.push(result);
    tl.add('rollback', result.message, { outcome: result.outcome });
    deps.log.info(result.message);
    rolledBack = result.outcome === 'rolled-back';
    if (result.outcome === 'nothing-to-roll-back') throw new DeployError(result.message, 'rollback');
  } catch (err) {
    error = err instanceof Error ? err.message : String(err);
    exitCode = exitCodeOf(err);
    tl.add('error', error, { exitCode });
    if (!(err instanceof DeployError || err instanceof WaitFailed || err instanceof KubeApiError || err instanceof UnreachableError || err instanceof InputError)) throw err;
  } finally {
    tl.endOpenPhase();
  }
  return runResult(key, error ? 'failed' : rolledBack ? 'rolled-back' : 'succeeded', tl, state, deps, {
    ...(error ? { error, failedPhase: 'rollback' } : {}),
    ...(rollbacks.length > 0 ? { rollbacks } : {}),
    exitCode,
  });
}
