/** `meta.k8s.io/v1` Table responses (what `kubectl get` asks for) and PartialObjectMetadata. */
import type { JsonObject, KubeObject } from '../../manifests/types.js';
import type { ResourceDescriptor } from './resources.js';

export type IncludeObject = 'None' | 'Metadata' | 'Object';

export interface Representation {
  as: 'Object' | 'Table' | 'PartialObjectMetadata';
  /** meta.k8s.io version for Table/PartialObjectMetadata. */
  version: 'v1' | 'v1beta1';
}

/** Picks the representation from the Accept header (first supported media type wins). */
export function negotiate(accept: string | undefined): Representation | undefined {
  if (!accept) return { as: 'Object', version: 'v1' };
  for (const part of accept.split(',')) {
    const [type, ...params] = part.split(';').map((s) => s.trim());
    const p = new Map(params.map((x) => x.split('=').map((s) => s.trim()) as [string, string]));
    // JSON only: protobuf and YAML are skipped, so a client listing them first still gets JSON.
    const json = type === 'application/json' || type === '*/*' || type === 'application/*';
    if (!json) continue;
    const as = p.get('as');
    if (!as) return { as: 'Object', version: 'v1' };
    const version = p.get('v') === 'v1beta1' ? 'v1beta1' : 'v1';
    if (p.get('g') !== 'meta.k8s.io') continue;
    if (as === 'Table') return { as: 'Table', version };
    if (as === 'PartialObjectMetadata' || as === 'PartialObjectMetadataList') return { as: 'PartialObjectMetadata', version };
  }
  return undefined;
}

export function partialMetadata(o: KubeObject, version: string): JsonObject {
  return { kind: 'PartialObjectMetadata', apiVersion: `meta.k8s.io/${version}`, metadata: o.metadata };
}

export function table(r: ResourceDescriptor, items: KubeObject[], opts: { includeObject: IncludeObject; version: string; resourceVersion: string; continueToken?: string; remaining?: number; nowMs: number; withColumns?: boolean }): JsonObject {
  const columns = [
    { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', priority: 0 },
    ...r.printerColumns.map((c) => ({ name: c.name, type: c.type, format: '', description: c.description, priority: c.priority })),
  ];
  const rows = items.map((o) => {
    const row: JsonObject = { cells: [o.metadata.name, ...r.printerColumns.map((c) => c.cell(o, opts.nowMs))] };
    if (opts.includeObject === 'Object') row.object = o;
    else if (opts.includeObject === 'Metadata') row.object = partialMetadata(o, opts.version);
    return row;
  });
  const metadata: JsonObject = { resourceVersion: opts.resourceVersion };
  if (opts.continueToken) metadata.continue = opts.continueToken;
  if (opts.remaining !== undefined && opts.remaining > 0) metadata.remainingItemCount = opts.remaining;
  const out: JsonObject = { kind: 'Table', apiVersion: `meta.k8s.io/${opts.version}`, metadata };
  if (opts.withColumns !== false) out.columnDefinitions = columns;
  out.rows = rows;
  return out;
}
