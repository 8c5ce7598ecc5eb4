import type { LoadedObject } from '../manifests/types.js';
import type { DeployResultKind } from '../rollout/types.js';
import type { TimelineEntry } from '../report/timeline.js';

/**
 * Every value of the `result` output, what it means, and the GitHub Deployment state it ends in. Keyed by the
 * deploy result type, so a new result value does not compile until it is described here (and the outputs test then
 * checks that action.yml and the README name it). `unverified` comes with the guard's inconclusive verdict.
 */
export type ResultValue = DeployResultKind | 'unverified';

export const RESULTS: Record<ResultValue, { meaning: string; deploymentState: 'success' | 'failure' | 'error' }> = {
  succeeded: { meaning: 'the rollout completed and the guard passed (or mode plan found nothing that fails the step)', deploymentState: 'success' },
  failed: { meaning: 'lint failed, the input was invalid, or the deploy did not complete', deploymentState: 'failure' },
  'rolled-back': { meaning: 'the guard saw the new version fail and the previous revision was put back', deploymentState: 'failure' },
  unverified: { meaning: 'the rollout completed but the guard could not measure enough to pass it', deploymentState: 'error' },
  paused: { meaning: 'an Argo Rollout stopped at a pause only a person ends (pause: {}, blue-green awaiting promotion) with its new pods healthy; deploy ended there (promote with kubectl argo rollouts promote)', deploymentState: 'success' },
};

/**
 * The URL of the environment: `https://` when the Ingress that owns the hostname has an HTTPS listener (listen-ports
 * names HTTPS, or a certificate-arn without listen-ports, which the controller turns into HTTPS:443), else `http://`.
 */
export function environmentUrl(timeline: TimelineEntry[], objects: LoadedObject[]): string | undefined {
  const lb = timeline.find((e) => e.kind === 'load-balancer' && typeof e.data?.hostname === 'string');
  const hostname = lb?.data?.hostname;
  if (typeof hostname !== 'string') return undefined;
  const ingress = objects.find((o) => o.ref.kind === 'Ingress' && `${o.ref.namespace}/${o.ref.name}` === lb?.data?.ingress);
  return `${ingress && hasHttpsListener(ingress.object.metadata.annotations) ? 'https' : 'http'}://${hostname}`;
}

export function hasHttpsListener(annotations: unknown): boolean {
  const a = (annotations ?? {}) as Record<string, unknown>;
  const ports = a['alb.ingress.kubernetes.io/listen-ports'];
  if (typeof ports === 'string' && ports.trim() !== '') {
    try {
      const parsed = JSON.parse(ports) as unknown;
      return Array.isArray(parsed) && parsed.some((p) => typeof p === 'object' && p !== null && 'HTTPS' in p);
    } catch {
      return /HTTPS/.test(ports);
    }
  }
  return typeof a['alb.ingress.kubernetes.io/certificate-arn'] === 'string' && String(a['alb.ingress.kubernetes.io/certificate-arn']).trim() !== '';
}
