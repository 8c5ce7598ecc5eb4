import type { SourceRef } from '../errors.js';

export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue | undefined;
}

export interface ObjectMeta extends JsonObject {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** A Kubernetes object as plain JSON (never the client's typed model, which drops unknown fields). */
export interface KubeObject extends JsonObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
}

/** A path into an object, as YAML keys and sequence indexes: ['spec', 'template', 'spec', 'containers', 0]. */
export type FieldPath = ReadonlyArray<string | number>;

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  /** Empty for cluster-scoped kinds; the effective namespace (defaulted) for namespaced ones. */
  namespace: string;
  name: string;
  /** Kind of unknown scope, no namespace written: the one it gets (kubectl's -n) if the kind turns out to be namespaced. */
  defaultNamespace?: string;
  /** The kind's scope is not known offline: discovery (or a CRD in the set) decides; until then no namespace is guessed. */
  scopeUnknown?: boolean;
}

/** An object read from the user's manifests, with where it came from. */
export interface LoadedObject {
  object: KubeObject;
  ref: ObjectRef;
  /** Where the object starts (its first key). */
  source: SourceRef;
  /** The line of a field inside the object; falls back to the nearest ancestor that exists. */
  locate(path: FieldPath): SourceRef;
}

export interface ManifestSet {
  objects: LoadedObject[];
  /** Files that were read, in order. */
  files: string[];
}

export function refString(ref: Pick<ObjectRef, 'kind' | 'namespace' | 'name'>): string {
  return ref.namespace ? `${ref.kind} ${ref.namespace}/${ref.name}` : `${ref.kind} ${ref.name}`;
}
