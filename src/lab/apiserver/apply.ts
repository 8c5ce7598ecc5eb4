/**
 * Server-side apply and `metadata.managedFields`.
 *
 * Field-set model: a field set is the set of "member" paths of an object, in the FieldsV1 element syntax:
 * `f:<field>` for a map key, `k:{"name":"x"}` for an item of an associative list (list-map keys from lists.ts),
 * `v:<json>` for a member of a set of scalars. Members are leaf values, atomic lists, empty maps and
 * associative-list items themselves. Each member carries the JSON of its value so that ownership changes and
 * conflicts can be decided by comparing values.
 */
import { isDeepStrictEqual } from 'node:util';
import type { JsonObject, JsonValue, KubeObject } from '../../manifests/types.js';
import { KEY_DEFAULTS, listSemantics } from './lists.js';
import { isObject } from './patch.js';
import { ApiError, badRequest } from './status.js';

type Elements = string[];
interface Member {
  path: Elements;
  /** JSON of the value ('' for associative-list items, whose identity is their key). */
  value: string;
}
type FieldMap = Map<string, Member>;

export interface ManagedFieldsEntry extends JsonObject {
  manager: string;
  operation: 'Apply' | 'Update';
  apiVersion: string;
  time: string;
  fieldsType: 'FieldsV1';
  fieldsV1: JsonObject;
  subresource?: string;
}

/** metadata fields that the server owns and that never appear in field sets. */
const SERVER_METADATA = new Set([
  'name',
  'namespace',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'managedFields',
  'selfLink',
]);

const mapKey = (path: Elements): string => JSON.stringify(path);

function keyElement(item: JsonObject, keys: string[]): string {
  const k: JsonObject = {};
  for (const name of [...keys].sort()) k[name] = item[name] ?? KEY_DEFAULTS[name] ?? null;
  return `k:${JSON.stringify(k)}`;
}

function collect(kind: string, v: JsonValue, names: string[], elems: Elements, out: FieldMap): void {
  if (isObject(v)) {
    const entries = Object.entries(v).filter((e): e is [string, JsonValue] => e[1] !== undefined && e[1] !== null);
    if (entries.length === 0) out.set(mapKey(elems), { path: elems, value: '{}' });
    for (const [k, x] of entries) collect(kind, x, [...names, k], [...elems, `f:${k}`], out);
    return;
  }
  if (Array.isArray(v) && v.length > 0) {
    const sem = listSemantics(kind, names);
    if (sem?.mapKeys && v.every(isObject)) {
      for (const item of v as JsonObject[]) {
        const itemPath = [...elems, keyElement(item, sem.mapKeys)];
        out.set(mapKey(itemPath), { path: itemPath, value: '' });
        for (const [k, x] of Object.entries(item)) {
          if (x !== undefined && x !== null) collect(kind, x, [...names, k], [...itemPath, `f:${k}`], out);
        }
      }
      return;
    }
    if (sem?.set) {
      for (const x of v) {
        const p = [...elems, `v:${JSON.stringify(x)}`];
        out.set(mapKey(p), { path: p, value: '' });
      }
      return;
    }
  }
  out.set(mapKey(elems), { path: elems, value: JSON.stringify(v) });
}

/** The members of an object, for the main resource (everything but status) or the status subresource. */
export function fieldMap(kind: string, o: KubeObject, scope: 'main' | 'status'): FieldMap {
  const out: FieldMap = new Map();
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined || v === null || k === 'apiVersion' || k === 'kind') continue;
    if ((k === 'status') !== (scope === 'status')) continue;
    if (k === 'metadata' && isObject(v)) {
      for (const [mk, mv] of Object.entries(v)) {
        if (mv === undefined || mv === null || SERVER_METADATA.has(mk)) continue;
        collect(kind, mv, ['metadata', mk], ['f:metadata', `f:${mk}`], out);
      }
      continue;
    }
    collect(kind, v, [k], [`f:${k}`], out);
  }
  return out;
}

// ------------------------------------------------------------------------------ FieldsV1 <-> member sets

export function toFieldsV1(paths: Iterable<Elements>): JsonObject {
  const root: JsonObject = {};
  const members: JsonObject[] = [];
  for (const path of paths) {
    let node = root;
    for (const e of path) {
      if (!isObject(node[e])) node[e] = {};
      node = node[e] as JsonObject;
    }
    members.push(node);
  }
  for (const m of members) if (Object.keys(m).some((k) => k !== '.')) m['.'] = {};
  return root;
}

export function fromFieldsV1(f: JsonValue | undefined): Elements[] {
  const out: Elements[] = [];
  const walk = (node: JsonObject, path: Elements): void => {
    const keys = Object.keys(node).filter((k) => k !== '.');
    if (path.length > 0 && (keys.length === 0 || '.' in node)) out.push(path);
    for (const k of keys) {
      const child = node[k];
      walk(isObject(child) ? child : {}, [...path, k]);
    }
  };
  if (isObject(f)) walk(f, []);
  return out;
}

/** `.spec.template.spec.containers[name="app"].image`, as the real server prints paths. */
export function pathString(path: Elements): string {
  return path
    .map((e) => {
      if (e.startsWith('f:')) return `.${e.slice(2)}`;
      if (e.startsWith('k:')) {
        try {
          const k = JSON.parse(e.slice(2)) as JsonObject;
          return `[${Object.entries(k)
            .map(([n, v]) => `${n}=${JSON.stringify(v)}`)
            .join(',')}]`;
        } catch {
          return `[${e.slice(2)}]`;
        }
      }
      if (e.startsWith('v:')) return `[=${e.slice(2)}]`;
      return e;
    })
    .join('');
}

// ---------------------------------------------------------------------------------------- entries

export function readEntries(o: KubeObject | undefined): ManagedFieldsEntry[] {
  const mf = o?.metadata.managedFields;
  if (!Array.isArray(mf)) return [];
  return mf.filter((e): e is ManagedFieldsEntry => isObject(e) && typeof e.manager === 'string' && typeof e.operation === 'string');
}

function entryKeys(e: ManagedFieldsEntry): Set<string> {
  return new Set(fromFieldsV1(e.fieldsV1).map(mapKey));
}

function sameSlot(e: ManagedFieldsEntry, manager: string, operation: string, subresource: string | undefined): boolean {
  return e.manager === manager && e.operation === operation && (e.subresource ?? '') === (subresource ?? '');
}

function withKeys(e: ManagedFieldsEntry, keys: Set<string>, now: string, touched: boolean): ManagedFieldsEntry {
  const paths = [...keys].map((k) => JSON.parse(k) as Elements);
  return { ...e, fieldsV1: toFieldsV1(paths), time: touched ? now : e.time };
}

/**
 * Explicit managedFields in a write: a non-empty list that differs from the live one replaces it
 * (kubectl's client-side-apply → server-side-apply upgrade does this); `[{}]` clears them.
 */
export function explicitManagedFields(live: KubeObject | undefined, incoming: KubeObject): ManagedFieldsEntry[] | undefined {
  const mf = incoming.metadata.managedFields;
  if (!Array.isArray(mf) || mf.length === 0) return undefined;
  if (live && isDeepStrictEqual(mf, live.metadata.managedFields)) return undefined;
  for (const e of mf) {
    if (!isObject(e)) throw badRequest('metadata.managedFields: each entry must be an object');
  }
  return mf.filter((e) => isObject(e) && Object.keys(e).length > 0) as ManagedFieldsEntry[];
}

export interface UpdateContext {
  kind: string;
  manager: string;
  apiVersion: string;
  subresource?: 'status' | 'scale';
  now: string;
}

/** managedFields after a non-apply write (create, update, patch): the writer takes what it changed. */
export function managedFieldsAfterUpdate(live: KubeObject | undefined, next: KubeObject, ctx: UpdateContext): ManagedFieldsEntry[] {
  const explicit = explicitManagedFields(live, next);
  if (explicit) return explicit;
  const scope = ctx.subresource === 'status' ? 'status' : 'main';
  const before: FieldMap = live ? fieldMap(ctx.kind, live, scope) : new Map();
  const after = fieldMap(ctx.kind, next, scope);
  const changed = new Set<string>();
  for (const [k, m] of after) if (before.get(k)?.value !== m.value) changed.add(k);
  const removed = new Set<string>();
  for (const k of before.keys()) if (!after.has(k)) removed.add(k);
  const sub = ctx.subresource === 'status' ? 'status' : ctx.subresource === 'scale' ? 'scale' : undefined;
  const entries: ManagedFieldsEntry[] = [];
  let mine: ManagedFieldsEntry | undefined;
  for (const e of readEntries(live)) {
    const keys = entryKeys(e);
    const isMine = sameSlot(e, ctx.manager, 'Update', sub);
    let touched = false;
    for (const k of [...changed, ...removed]) if (keys.delete(k)) touched = true;
    if (isMine) {
      for (const k of changed) keys.add(k);
      mine = withKeys({ ...e, apiVersion: ctx.apiVersion }, keys, ctx.now, touched || changed.size > 0);
      if (keys.size > 0) entries.push(mine);
      continue;
    }
    if (keys.size > 0) entries.push(touched ? withKeys(e, keys, ctx.now, false) : e);
  }
  if (!mine && changed.size > 0) {
    const e: ManagedFieldsEntry = { manager: ctx.manager, operation: 'Update', apiVersion: ctx.apiVersion, time: ctx.now, fieldsType: 'FieldsV1', fieldsV1: {} };
    if (sub) e.subresource = sub;
    entries.push(withKeys(e, changed, ctx.now, true));
  }
  return entries;
}

// --------------------------------------------------------------------------------------------- apply

function mergeApplied(kind: string, live: JsonValue | undefined, applied: JsonValue, names: string[]): JsonValue {
  if (isObject(applied)) {
    const out: JsonObject = isObject(live) ? structuredClone(live) : {};
    for (const [k, v] of Object.entries(applied)) {
      if (v === undefined) continue;
      if (v === null) delete out[k];
      else out[k] = mergeApplied(kind, out[k], v, [...names, k]);
    }
    return out;
  }
  if (Array.isArray(applied) && Array.isArray(live)) {
    const sem = listSemantics(kind, names);
    if (sem?.mapKeys && applied.every(isObject) && live.every(isObject)) {
      const keys = sem.mapKeys;
      const out = structuredClone(live) as JsonObject[];
      for (const item of applied as JsonObject[]) {
        const idx = out.findIndex((x) => keyElement(x, keys) === keyElement(item, keys));
        if (idx >= 0) out[idx] = mergeApplied(kind, out[idx], item, names) as JsonObject;
        else out.push(structuredClone(item));
      }
      return out;
    }
    if (sem?.set) {
      const out = structuredClone(live);
      for (const x of applied) if (!out.some((y) => isDeepStrictEqual(x, y))) out.push(structuredClone(x));
      return out;
    }
  }
  return structuredClone(applied);
}

/** Removes one member from an object; maps left empty by the removal go too (below the top level). */
function removeMember(o: JsonObject, path: Elements): void {
  const chain: Array<{ container: JsonObject | JsonValue[]; at: string | number }> = [];
  let cur: JsonValue = o;
  for (const e of path) {
    if (e.startsWith('f:') && isObject(cur)) {
      const k = e.slice(2);
      if (!(k in cur)) return;
      chain.push({ container: cur, at: k });
      cur = cur[k]!;
    } else if ((e.startsWith('k:') || e.startsWith('v:')) && Array.isArray(cur)) {
      const list: JsonValue[] = cur;
      const idx = e.startsWith('v:')
        ? list.findIndex((x) => JSON.stringify(x) === e.slice(2))
        : list.findIndex((x) => isObject(x) && keyElement(x, Object.keys(JSON.parse(e.slice(2)) as JsonObject)) === e);
      if (idx < 0) return;
      chain.push({ container: list, at: idx });
      cur = list[idx]!;
    } else return;
  }
  for (let i = chain.length - 1; i >= 0; i--) {
    const { container, at } = chain[i]!;
    if (Array.isArray(container)) container.splice(at as number, 1);
    else delete container[at as string];
    const parent = chain[i - 1];
    if (i <= 1 || !parent) break;
    const emptied = Array.isArray(container) ? false : Object.keys(container).length === 0;
    if (!emptied) break;
  }
}

export interface ApplyContext {
  kind: string;
  manager: string;
  force: boolean;
  now: string;
}

/**
 * Applies a configuration: conflicts with other managers' differing fields → 409 (unless force, which takes
 * them over); fields this manager applied before and now omits are removed unless someone else owns them.
 * Returns the merged object with its new managedFields.
 */
export function serverSideApply(live: KubeObject | undefined, applied: KubeObject, ctx: ApplyContext): KubeObject {
  if (applied.metadata.managedFields !== undefined && applied.metadata.managedFields !== null) {
    throw badRequest('metadata.managedFields must be nil');
  }
  const appliedMap = fieldMap(ctx.kind, applied, 'main');
  const liveMap: FieldMap = live ? fieldMap(ctx.kind, live, 'main') : new Map();
  const entries = readEntries(live).map((e) => ({ entry: e, keys: entryKeys(e) }));

  const conflicts: Array<{ manager: ManagedFieldsEntry; key: string }> = [];
  for (const { entry, keys } of entries) {
    // A manager is its name *and* operation (kubernetes/kubernetes#107417): the same name's Update entry is another manager.
    if (sameSlot(entry, ctx.manager, 'Apply', undefined) || entry.subresource === 'status') continue;
    for (const [k, m] of appliedMap) {
      if (!keys.has(k)) continue;
      const liveValue = liveMap.get(k)?.value;
      if (liveValue !== undefined && liveValue !== m.value) conflicts.push({ manager: entry, key: k });
    }
  }
  if (conflicts.length > 0 && !ctx.force) throw conflictError(conflicts);

  const base: JsonObject = live ? structuredClone(live) : { apiVersion: applied.apiVersion, kind: applied.kind, metadata: {} };
  const appliedBody: JsonObject = structuredClone(applied);
  delete appliedBody.status;
  const merged = mergeApplied(ctx.kind, base, appliedBody, []) as KubeObject;
  merged.apiVersion = applied.apiVersion;

  const mine = entries.find((x) => sameSlot(x.entry, ctx.manager, 'Apply', undefined));
  const previous = mine?.keys ?? new Set<string>();
  const appliedKeys = new Set(appliedMap.keys());
  const others = entries.filter((x) => x !== mine);
  for (const c of conflicts) others.find((x) => x.entry === c.manager)?.keys.delete(c.key);
  const ownedElsewhere = (k: string): boolean => {
    const prefix = k.slice(0, -1);
    return others.some((x) => x.keys.has(k) || [...x.keys].some((o) => o.startsWith(prefix + ',')));
  };
  // A field this apply still sets — itself or anything under it (a leaf before, e.g. `env: null`, a map or list now) — stays.
  const appliedUnder = (k: string): boolean => {
    const prefix = k.slice(0, -1) + ',';
    return [...appliedKeys].some((a) => a.startsWith(prefix));
  };
  const dropped = [...previous].filter((k) => !appliedKeys.has(k) && !appliedUnder(k) && !ownedElsewhere(k));
  // Shallowest first: a list item goes before its fields (whose removal would change the item's key).
  dropped.sort((a, b) => (JSON.parse(a) as Elements).length - (JSON.parse(b) as Elements).length);
  for (const k of dropped) removeMember(merged, JSON.parse(k) as Elements);

  const next: ManagedFieldsEntry[] = [];
  for (const x of entries) {
    if (x === mine) continue;
    const forced = conflicts.some((c) => c.manager === x.entry);
    if (x.keys.size === 0) continue;
    next.push(forced ? withKeys(x.entry, x.keys, ctx.now, false) : x.entry);
  }
  if (appliedKeys.size > 0) {
    const unchanged = mine && isDeepStrictEqual(previous, appliedKeys) && mine.entry.apiVersion === applied.apiVersion;
    const entry: ManagedFieldsEntry = unchanged
      ? mine.entry
      : { manager: ctx.manager, operation: 'Apply', apiVersion: applied.apiVersion, time: ctx.now, fieldsType: 'FieldsV1', fieldsV1: toFieldsV1([...appliedMap.values()].map((m) => m.path)) };
    // Keep the manager's slot where it was, so that a repeated apply does not reorder managedFields.
    const at = mine ? entries.indexOf(mine) : next.length;
    next.splice(Math.min(at, next.length), 0, entry);
  }
  merged.metadata.managedFields = next;
  return merged;
}

function printManager(e: ManagedFieldsEntry): string {
  const name = JSON.stringify(e.manager);
  if (e.operation === 'Update') return e.time ? `${name} using ${e.apiVersion} at ${e.time}` : `${name} using ${e.apiVersion}`;
  return name;
}

function conflictError(conflicts: Array<{ manager: ManagedFieldsEntry; key: string }>): ApiError {
  const causes = conflicts.map((c) => ({
    reason: 'FieldManagerConflict',
    message: `conflict with ${printManager(c.manager)}`,
    field: pathString(JSON.parse(c.key) as Elements),
  }));
  let message: string;
  if (conflicts.length === 1) {
    message = `Apply failed with 1 conflict: conflict with ${printManager(conflicts[0]!.manager)}: ${causes[0]!.field}`;
  } else {
    const byManager = new Map<string, string[]>();
    for (let i = 0; i < conflicts.length; i++) {
      const m = printManager(conflicts[i]!.manager);
      byManager.set(m, [...(byManager.get(m) ?? []), causes[i]!.field]);
    }
    const lines: string[] = [];
    for (const m of [...byManager.keys()].sort()) {
      lines.push(`conflicts with ${m}:`);
      for (const f of byManager.get(m)!) lines.push(`- ${f}`);
    }
    message = `Apply failed with ${conflicts.length} conflicts: ${lines.join('\n')}`;
  }
  return new ApiError(409, 'Conflict', message, { causes });
}
