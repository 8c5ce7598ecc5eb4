/**
 * ControllerRevisions, the template history of StatefulSets and DaemonSets (upstream pkg/controller/history): one
 * per distinct pod template, named `<owner>-<hash>`, numbered by `revision`; going back to an older template
 * renumbers its revision as the newest. History beyond spec.revisionHistoryLimit (default 10) is pruned, except the
 * revisions pods still run.
 */
import type { KubeObject } from '../../manifests/types.js';
import type { ObjectStore } from '../store.js';
import { computeTemplateHash } from './deployment.js';
import { clonePlain, isControlledBy, labelsOf, newControllerRef, numAt, objAt } from './util.js';

export const CONTROLLER_REVISION_HASH = 'controller-revision-hash';

export function revisionNumber(cr: KubeObject): number {
  return typeof cr.revision === 'number' ? cr.revision : 0;
}

export function ownedRevisions(store: ObjectStore, owner: KubeObject): KubeObject[] {
  return store
    .list('ControllerRevision', owner.metadata.namespace ?? '')
    .items.filter((cr) => isControlledBy(cr, owner))
    .sort((a, b) => revisionNumber(a) - revisionNumber(b));
}

/** The template a revision recorded. */
export function templateOf(cr: KubeObject): KubeObject['spec'] {
  return clonePlain(objAt(objAt(cr, 'data') ?? {}, 'spec')?.template ?? {});
}

/** The revision of the owner's current template, created (or renumbered as the newest) when needed. */
export function syncUpdateRevision(store: ObjectStore, owner: KubeObject): { update: KubeObject; hash: string; all: KubeObject[] } {
  const template = objAt(owner, 'spec')?.template ?? {};
  const hash = computeTemplateHash(template);
  const name = `${owner.metadata.name}-${hash}`;
  const all = ownedRevisions(store, owner);
  const max = all.reduce((m, cr) => Math.max(m, revisionNumber(cr)), 0);
  const existing = all.find((cr) => cr.metadata.name === name);
  if (existing) {
    if (revisionNumber(existing) === max) return { update: existing, hash, all };
    const renumbered = store.mutate('ControllerRevision', owner.metadata.namespace ?? '', name, (o) => {
      o.revision = max + 1;
    }) as KubeObject;
    return { update: renumbered, hash, all: ownedRevisions(store, owner) };
  }
  const created = store.create('ControllerRevision', {
    apiVersion: 'apps/v1',
    kind: 'ControllerRevision',
    metadata: {
      name,
      namespace: owner.metadata.namespace ?? '',
      labels: { ...labelsOf((template as KubeObject) ?? {}), [CONTROLLER_REVISION_HASH]: hash },
      ownerReferences: [newControllerRef(owner)],
    },
    data: { spec: { template: clonePlain(template) } },
    revision: max + 1,
  });
  return { update: created, hash, all: ownedRevisions(store, owner) };
}

/** Deletes the oldest revisions beyond the history limit that no live pod runs (`inUse` holds their names or hashes). */
export function pruneRevisions(store: ObjectStore, owner: KubeObject, keep: ReadonlySet<string>): void {
  const limit = numAt(objAt(owner, 'spec'), 'revisionHistoryLimit') ?? 10;
  const all = ownedRevisions(store, owner);
  const prunable = all.filter((cr) => !keep.has(cr.metadata.name) && !keep.has(labelsOf(cr)[CONTROLLER_REVISION_HASH] ?? ''));
  const excess = all.length - keep.size - limit;
  for (const cr of prunable.slice(0, Math.max(0, excess))) {
    try {
      store.delete('ControllerRevision', cr.metadata.namespace ?? '', cr.metadata.name);
    } catch {
      // already gone
    }
  }
}
