import type { JsonObject, KubeObject } from '../../manifests/types.js';
import type { CheckResult } from './result.js';

/** Every named CustomResourceDefinition has the condition Established=True (its kinds are served). */
export function checkCrdsEstablished(names: string[], crds: Map<string, KubeObject>): CheckResult {
  const pending: string[] = [];
  for (const name of names) {
    const crd = crds.get(name);
    if (!crd) {
      pending.push(`CustomResourceDefinition ${name} not seen yet`);
      continue;
    }
    const conditions = (((crd.status as JsonObject | undefined)?.conditions ?? []) as JsonObject[]);
    const names = conditions.find((c) => c.type === 'NamesAccepted');
    if (names?.status === 'False') {
      return {
        done: false,
        failed: true,
        message: `expected CustomResourceDefinition ${name} to become Established, but its names are not accepted: ${String(names.reason ?? '')} ${String(names.message ?? '')}. Fix: choose names (plural, kind, shortNames) no other CRD uses, then re-run.`,
      };
    }
    if (conditions.find((c) => c.type === 'Established')?.status !== 'True') pending.push(`CustomResourceDefinition ${name} Established`);
  }
  return { done: pending.length === 0, message: pending.join('; ') };
}
