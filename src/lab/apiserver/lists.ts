/**
 * How lists behave in merges, per field: the strategic-merge-patch merge key (`patchMergeKey`) and the server-side
 * apply list-map keys (`x-kubernetes-list-map-keys`) of the Kubernetes types the lab serves. Lists not listed here
 * are atomic (replaced as a whole).
 */

export interface ListSemantics {
  /** patchMergeKey for strategic merge patch. */
  mergeKey?: string;
  /** list-map keys for server-side apply (with defaults for absent keys, e.g. protocol TCP). */
  mapKeys?: string[];
  /** A set of scalars (merged by value). */
  set?: boolean;
}

interface Rule {
  tail: string[];
  /** The whole path must equal tail (not just end with it). */
  exact?: boolean;
  kinds?: string[];
  semantics: ListSemantics;
}

const byName: ListSemantics = { mergeKey: 'name', mapKeys: ['name'] };

const RULES: Rule[] = [
  { tail: ['spec', 'ports'], exact: true, kinds: ['Service'], semantics: { mergeKey: 'port', mapKeys: ['port', 'protocol'] } },
  { tail: ['containers', 'ports'], semantics: { mergeKey: 'containerPort', mapKeys: ['containerPort', 'protocol'] } },
  { tail: ['initContainers', 'ports'], semantics: { mergeKey: 'containerPort', mapKeys: ['containerPort', 'protocol'] } },
  { tail: ['containers'], semantics: byName },
  { tail: ['initContainers'], semantics: byName },
  { tail: ['ephemeralContainers'], semantics: byName },
  { tail: ['env'], semantics: byName },
  { tail: ['volumes'], semantics: byName },
  { tail: ['imagePullSecrets'], semantics: byName },
  { tail: ['volumeMounts'], semantics: { mergeKey: 'mountPath', mapKeys: ['mountPath'] } },
  { tail: ['volumeDevices'], semantics: { mergeKey: 'devicePath', mapKeys: ['devicePath'] } },
  { tail: ['hostAliases'], semantics: { mergeKey: 'ip', mapKeys: ['ip'] } },
  { tail: ['readinessGates'], semantics: { mergeKey: 'conditionType', mapKeys: ['conditionType'] } },
  { tail: ['topologySpreadConstraints'], semantics: { mergeKey: 'topologyKey', mapKeys: ['topologyKey', 'whenUnsatisfiable'] } },
  { tail: ['status', 'conditions'], semantics: { mergeKey: 'type', mapKeys: ['type'] } },
  { tail: ['metadata', 'ownerReferences'], exact: true, semantics: { mergeKey: 'uid', mapKeys: ['uid'] } },
  { tail: ['metadata', 'finalizers'], exact: true, semantics: { set: true } },
];

/** `path` holds field names only, from the object root (list positions left out). */
export function listSemantics(kind: string, path: readonly string[]): ListSemantics | undefined {
  for (const r of RULES) {
    if (r.kinds && !r.kinds.includes(kind)) continue;
    if (r.exact && path.length !== r.tail.length) continue;
    if (path.length < r.tail.length) continue;
    const tail = path.slice(path.length - r.tail.length);
    if (tail.every((p, i) => p === r.tail[i])) return r.semantics;
  }
  return undefined;
}

/** Values assumed for absent list-map keys (as the types' defaults make them). */
export const KEY_DEFAULTS: Record<string, string> = { protocol: 'TCP' };
