/** Label and field selectors, with the real server's syntax and its 400s for what it does not support. */
import type { JsonValue, KubeObject } from '../../manifests/types.js';
import { badRequest } from './status.js';

type Requirement =
  | { op: 'eq' | 'neq'; key: string; value: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: 'exists' | 'notexists'; key: string };

export type Selector = (labels: Record<string, string>) => boolean;

/** Splits on commas that are not inside parentheses. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((x) => x.trim()).filter((x) => x !== '');
}

function parseRequirement(term: string, raw: string): Requirement {
  let m = /^!\s*([^\s=!(),]+)$/.exec(term);
  if (m) return { op: 'notexists', key: m[1]! };
  m = /^([^\s=!(),]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
  if (m) return { op: m[2] as 'in' | 'notin', key: m[1]!, values: m[3]!.split(',').map((v) => v.trim()).filter((v) => v !== '') };
  m = /^([^\s=!(),]+)\s*(==|=|!=)\s*([^\s=!(),]*)$/.exec(term);
  if (m) return { op: m[2] === '!=' ? 'neq' : 'eq', key: m[1]!, value: m[3]! };
  m = /^([^\s=!(),]+)$/.exec(term);
  if (m) return { op: 'exists', key: m[1]! };
  throw badRequest(`unable to parse requirement: found '${term}', expected: in, notin, =, ==, !=, gt, lt (in selector "${raw}")`);
}

export function parseLabelSelector(raw: string | null): Selector {
  if (!raw) return () => true;
  const reqs = splitTop(raw).map((t) => parseRequirement(t, raw));
  return (labels) =>
    reqs.every((r) => {
      const has = Object.prototype.hasOwnProperty.call(labels, r.key);
      const v = labels[r.key];
      switch (r.op) {
        case 'eq':
          return has && v === r.value;
        case 'neq':
          return !has || v !== r.value;
        case 'in':
          return has && r.values.includes(v!);
        case 'notin':
          return !has || !r.values.includes(v!);
        case 'exists':
          return has;
        case 'notexists':
          return !has;
      }
    });
}

/** Field selector keys each kind supports (besides metadata.name and metadata.namespace). */
const FIELDS: Record<string, string[]> = {
  Pod: ['status.phase', 'spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'status.podIP', 'status.nominatedNodeName'],
  Event: [
    'involvedObject.kind',
    'involvedObject.namespace',
    'involvedObject.name',
    'involvedObject.uid',
    'involvedObject.apiVersion',
    'involvedObject.resourceVersion',
    'involvedObject.fieldPath',
    'reason',
    'reportingComponent',
    'source',
    'type',
  ],
  Namespace: ['status.phase'],
  Secret: ['type'],
  ReplicaSet: ['status.replicas'],
};

function fieldValue(o: KubeObject, path: string): string {
  let cur: JsonValue | undefined = o;
  if (path === 'source') cur = (o.source as { component?: string } | undefined)?.component;
  else
    for (const part of path.split('.')) {
      cur = cur !== null && typeof cur === 'object' && !Array.isArray(cur) ? cur[part] : undefined;
    }
  return cur === undefined || cur === null ? '' : String(cur);
}

export type FieldSelector = (o: KubeObject) => boolean;

export function parseFieldSelector(raw: string | null, kind: string): FieldSelector {
  if (!raw) return () => true;
  const allowed = new Set(['metadata.name', 'metadata.namespace', ...(FIELDS[kind] ?? [])]);
  const reqs = splitTop(raw).map((term) => {
    const m = /^([^=!]+?)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!m) throw badRequest(`invalid selector: '${raw}'; can't understand '${term}'`);
    const field = m[1]!.trim();
    if (!allowed.has(field)) throw badRequest(`field label not supported: ${field}`);
    return { field, neq: m[2] === '!=', value: m[3]!.trim() };
  });
  return (o) => reqs.every((r) => (fieldValue(o, r.field) === r.value) !== r.neq);
}

/** A Deployment/ReplicaSet-style LabelSelector object (matchLabels + matchExpressions) as a predicate. */
export function labelSelectorObject(sel: unknown): Selector | undefined {
  if (sel === null || typeof sel !== 'object') return undefined;
  const s = sel as { matchLabels?: Record<string, string>; matchExpressions?: Array<{ key: string; operator: string; values?: string[] }> };
  return (labels) => {
    for (const [k, v] of Object.entries(s.matchLabels ?? {})) if (labels[k] !== v) return false;
    for (const e of s.matchExpressions ?? []) {
      const has = Object.prototype.hasOwnProperty.call(labels, e.key);
      const v = labels[e.key];
      if (e.operator === 'In' && !(has && (e.values ?? []).includes(v!))) return false;
      if (e.operator === 'NotIn' && has && (e.values ?? []).includes(v!)) return false;
      if (e.operator === 'Exists' && !has) return false;
      if (e.operator === 'DoesNotExist' && has) return false;
    }
    return true;
  };
}
