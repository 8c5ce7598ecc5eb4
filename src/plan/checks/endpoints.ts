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

/** The ports of each address in a Service's EndpointSlices (every endpoint, ready or not). */
export function endpointPorts(slices: KubeObject[], service: string): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>();
  for (const s of slices) {
    if (s.metadata.labels?.[SERVICE_NAME_LABEL] !== service) continue;
    const ports = ((s.ports ?? []) as JsonObject[]).map((p) => p.port).filter((p): p is number => typeof p === 'number');
    for (const e of (s.endpoints ?? []) as JsonObject[]) {
      for (const a of (e.addresses ?? []) as string[]) {
        const set = out.get(a) ?? new Set<number>();
        for (const p of ports) set.add(p);
        out.set(a, set);
      }
    }
  }
  return out;
}

/**
 * The target record of an endpoint: its IP on one of its ports (any port when none is known). A reused IP (the VPC
 * CNI hands a released pod IP to a new pod) can carry the old pod's draining record beside the new pod's, on the
 * same port: the record not draining is the new pod's.
 */
export function targetOf<T extends { id: string; port: number; state: string }>(targets: readonly T[], ip: string | undefined, ports?: ReadonlySet<number>): T | undefined {
  if (ip === undefined) return undefined;
  const mine = targets.filter((t) => t.id === ip && (!ports || ports.size === 0 || ports.has(t.port)));
  return mine.find((t) => t.state !== 'draining' && t.state !== 'unhealthy.draining') ?? mine[0];
}
