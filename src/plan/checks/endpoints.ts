import type { JsonObject, KubeObject } from '../../manifests/types.js';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/**
 * Addresses of a Service's ready endpoints in its EndpointSlices (ready not false, not terminating): what the
 * load balancer controller should have registered as targets.
 */
export function readyAddresses(slices: KubeObject[], service: string): Set<string> {
  const ips = new Set<string>();
  for (const s of slices) {
    if (s.metadata.labels?.[SERVICE_NAME_LABEL] !== service) continue;
    for (const e of (s.endpoints ?? []) as JsonObject[]) {
      const cond = (e.conditions ?? {}) as JsonObject;
      if (cond.ready === false || cond.terminating === true) continue;
      for (const a of (e.addresses ?? []) as string[]) ips.add(a);
    }
  }
  return ips;
}
