/**
 * Discovery documents (legacy, non-aggregated): /api, /api/v1, /apis, /apis/<g>, /apis/<g>/<v>, /version.
 * Clients that ask for aggregated discovery (apidiscovery.k8s.io/v2) get these with Content-Type
 * application/json and fall back to the legacy walk, as they do against older servers.
 */
import { createHash } from 'node:crypto';
import type { JsonObject } from '../../manifests/types.js';
import { apiVersionOf, groupVersions, type ResourceDescriptor } from './resources.js';

export const SERVER_VERSION = { major: '1', minor: '30', gitVersion: 'v1.30.4' };

export function versionInfo(): JsonObject {
  return {
    major: SERVER_VERSION.major,
    minor: SERVER_VERSION.minor,
    gitVersion: SERVER_VERSION.gitVersion,
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2024-08-14T00:00:00Z',
    goVersion: 'go1.22.5',
    compiler: 'gc',
    platform: 'linux/amd64',
  };
}

export function apiVersions(serverAddress: string): JsonObject {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

function groupEntry(group: string, custom: readonly ResourceDescriptor[]): JsonObject | undefined {
  const versions = groupVersions(custom).filter((gv) => gv.group === group);
  if (versions.length === 0) return undefined;
  const list = versions.map((gv) => ({ groupVersion: `${group}/${gv.version}`, version: gv.version }));
  return { name: group, versions: list, preferredVersion: list[0]! };
}

export function apiGroupList(custom: readonly ResourceDescriptor[] = []): JsonObject {
  const groups: JsonObject[] = [];
  for (const gv of groupVersions(custom)) {
    if (!gv.group || groups.some((g) => g.name === gv.group)) continue;
    groups.push(groupEntry(gv.group, custom)!);
  }
  return { kind: 'APIGroupList', apiVersion: 'v1', groups };
}

export function apiGroup(group: string, custom: readonly ResourceDescriptor[] = []): JsonObject | undefined {
  const g = groupEntry(group, custom);
  return g ? { kind: 'APIGroup', apiVersion: 'v1', ...g } : undefined;
}

function storageVersionHash(r: ResourceDescriptor): string {
  return createHash('sha256').update(`${r.group}/${r.version}/${r.kind}`).digest('base64').slice(0, 11);
}

export function apiResourceList(group: string, version: string, custom: readonly ResourceDescriptor[] = []): JsonObject | undefined {
  const gv = groupVersions(custom).find((g) => g.group === group && g.version === version);
  if (!gv) return undefined;
  const resources: JsonObject[] = [];
  for (const r of gv.resources) {
    const entry: JsonObject = { name: r.plural, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: r.verbs };
    if (r.shortNames.length) entry.shortNames = r.shortNames;
    if (r.categories.length) entry.categories = r.categories;
    entry.storageVersionHash = storageVersionHash(r);
    resources.push(entry);
    const writable = r.verbs.includes('update');
    for (const sub of r.subresources) {
      const verbs = writable ? ['get', 'patch', 'update'] : ['get'];
      if (sub === 'scale') resources.push({ name: `${r.plural}/scale`, singularName: '', namespaced: r.namespaced, group: 'autoscaling', version: 'v1', kind: 'Scale', verbs });
      else resources.push({ name: `${r.plural}/${sub}`, singularName: '', namespaced: r.namespaced, kind: r.kind, verbs });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: apiVersionOf({ group, version }), resources };
}
