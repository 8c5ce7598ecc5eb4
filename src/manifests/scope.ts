import { apiGroup } from './kinds.js';
import type { JsonObject, LoadedObject } from './types.js';

/**
 * Scope decided by something better than the built-in table: the cluster's discovery, or a CustomResourceDefinition
 * in the same set. Pure: the caller says whether the kind is namespaced.
 */

/** The object with the namespace its scope gives it: the default one when namespaced and none was written; none when cluster-scoped. */
export function withScope(o: LoadedObject, namespaced: boolean): LoadedObject {
  const { scopeUnknown: _unknown, ...rest } = o.ref;
  if (namespaced) {
    const namespace = o.ref.namespace || o.ref.defaultNamespace || 'default';
    if (namespace === o.ref.namespace && !o.ref.scopeUnknown) return o;
    return { ...o, ref: { ...rest, namespace }, object: { ...o.object, metadata: { ...o.object.metadata, namespace } } };
  }
  if (o.ref.namespace === '' && !o.ref.scopeUnknown) return o;
  const { namespace: _ns, ...metadata } = o.object.metadata;
  return { ...o, ref: { ...rest, namespace: '' }, object: { ...o.object, metadata: { ...metadata, name: o.object.metadata.name } } };
}

/** Kinds the set's CustomResourceDefinitions define ("group/Kind" → namespaced?): known before the CRD exists. */
export function crdKinds(objects: LoadedObject[]): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const o of objects) {
    if (o.ref.kind !== 'CustomResourceDefinition') continue;
    const spec = (o.object.spec ?? {}) as JsonObject;
    const kind = ((spec.names ?? {}) as JsonObject).kind;
    if (typeof spec.group === 'string' && typeof kind === 'string') out.set(`${spec.group}/${kind}`, spec.scope !== 'Cluster');
  }
  return out;
}

export function crdKindOf(o: LoadedObject): string {
  return `${apiGroup(o.ref.apiVersion)}/${o.ref.kind}`;
}

/** Objects whose kind a CRD of the same set defines take their scope from it (the cluster does not serve them yet). */
export function scopeFromSetCrds(objects: LoadedObject[]): LoadedObject[] {
  const kinds = crdKinds(objects);
  if (kinds.size === 0) return objects;
  return objects.map((o) => {
    const namespaced = kinds.get(crdKindOf(o));
    return namespaced === undefined ? o : withScope(o, namespaced);
  });
}
