/**
 * PATCH bodies: JSON merge patch (RFC 7386), strategic merge patch (Kubernetes) and JSON patch (RFC 6902).
 * Each function takes the current object as JSON and returns the patched JSON; errors are ApiErrors.
 */
import { isDeepStrictEqual } from 'node:util';
import type { JsonObject, JsonValue } from '../../manifests/types.js';
import { listSemantics } from './lists.js';
import { ApiError, badRequest } from './status.js';

export function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

// ---------------------------------------------------------------------------------------------- merge patch

export function mergePatch(target: JsonValue | undefined, patch: JsonValue): JsonValue {
  if (!isObject(patch)) return clone(patch);
  const result: JsonObject = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete result[k];
    else if (v !== undefined) result[k] = mergePatch(result[k], v);
  }
  return result;
}

// ---------------------------------------------------------------------------------- strategic merge patch

const SET_ORDER = '$setElementOrder/';
const DELETE_FROM_PRIMITIVE = '$deleteFromPrimitiveList/';

/**
 * Strategic merge patch for the fields that matter in the lab: lists with a patchMergeKey merge by it
 * (containers, ports, env, volumes, conditions, readinessGates, …); `$patch: replace|delete|merge`,
 * `$retainKeys`, `$setElementOrder/…` and `$deleteFromPrimitiveList/…` directives are honoured.
 */
export function strategicMergePatch(original: JsonObject, patch: JsonValue, kind: string): JsonObject {
  if (!isObject(patch)) throw badRequest('strategic merge patch: the patch must be a JSON object');
  const result = mergeMap(original, patch, kind, []);
  if (result === undefined) throw badRequest('strategic merge patch: $patch: delete at the root is not allowed');
  return result;
}

function mergeMap(original: JsonObject, patch: JsonObject, kind: string, path: string[]): JsonObject | undefined {
  const directive = patch.$patch;
  if (directive === 'delete') return undefined;
  if (directive === 'replace') return stripDirectives(patch) as JsonObject;
  if (directive !== undefined && directive !== 'merge') throw badRequest(`strategic merge patch: unknown patch type: ${String(directive)}`);
  const result = clone(original);
  const orders: Array<[string, JsonValue[]]> = [];
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined || k === '$patch' || k === '$retainKeys') continue;
    if (k.startsWith(SET_ORDER)) {
      if (Array.isArray(v)) orders.push([k.slice(SET_ORDER.length), v]);
      continue;
    }
    if (k.startsWith(DELETE_FROM_PRIMITIVE)) {
      const field = k.slice(DELETE_FROM_PRIMITIVE.length);
      const current = result[field];
      if (Array.isArray(current) && Array.isArray(v)) result[field] = current.filter((x) => !v.some((d) => isDeepStrictEqual(d, x)));
      continue;
    }
    if (v === null) {
      delete result[k];
    } else if (isObject(v)) {
      const merged = mergeMap(isObject(result[k]) ? (result[k] as JsonObject) : {}, v, kind, [...path, k]);
      if (merged === undefined) delete result[k];
      else result[k] = merged;
    } else if (Array.isArray(v)) {
      result[k] = mergeList(Array.isArray(result[k]) ? (result[k] as JsonValue[]) : [], v, kind, [...path, k]);
    } else {
      result[k] = v;
    }
  }
  for (const [field, order] of orders) {
    const list = result[field];
    if (Array.isArray(list)) result[field] = applyOrder(list, order, listSemantics(kind, [...path, field])?.mergeKey);
  }
  const retain = patch.$retainKeys;
  if (Array.isArray(retain)) {
    for (const k of Object.keys(result)) if (!retain.includes(k)) delete result[k];
  }
  return result;
}

function mergeList(original: JsonValue[], patch: JsonValue[], kind: string, path: string[]): JsonValue[] {
  if (patch.some((x) => isObject(x) && x.$patch === 'replace')) {
    return patch.filter((x) => !(isObject(x) && x.$patch === 'replace')).map(stripDirectives);
  }
  const sem = listSemantics(kind, path);
  if (sem?.set) {
    const out = [...original];
    for (const x of patch) if (!out.some((y) => isDeepStrictEqual(x, y))) out.push(clone(x));
    return out;
  }
  const key = sem?.mergeKey;
  if (!key) return patch.map(stripDirectives);
  const out = clone(original);
  for (const item of patch) {
    if (!isObject(item)) {
      out.push(clone(item));
      continue;
    }
    const idx = item[key] === undefined ? -1 : out.findIndex((x) => isObject(x) && isDeepStrictEqual(x[key], item[key]));
    if (item.$patch === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) {
      const merged = mergeMap(out[idx] as JsonObject, item, kind, path);
      if (merged === undefined) out.splice(idx, 1);
      else out[idx] = merged;
    } else {
      const added = mergeMap({}, item, kind, path);
      if (added) out.push(added);
    }
  }
  return out;
}

function applyOrder(list: JsonValue[], order: JsonValue[], key: string | undefined): JsonValue[] {
  const same = (a: JsonValue, b: JsonValue): boolean => (key && isObject(a) && isObject(b) ? isDeepStrictEqual(a[key], b[key]) : isDeepStrictEqual(a, b));
  const ordered: JsonValue[] = [];
  const rest = [...list];
  for (const o of order) {
    const i = rest.findIndex((x) => same(x, o));
    if (i >= 0) ordered.push(...rest.splice(i, 1));
  }
  return [...ordered, ...rest];
}

function stripDirectives(v: JsonValue): JsonValue {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObject(v)) return v;
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(v)) {
    if (x === undefined || k === '$patch' || k === '$retainKeys' || k.startsWith(SET_ORDER) || k.startsWith(DELETE_FROM_PRIMITIVE)) continue;
    out[k] = stripDirectives(x);
  }
  return out;
}

// ------------------------------------------------------------------------------------------- JSON patch

interface Operation {
  op: string;
  path: string;
  value?: JsonValue;
  from?: string;
}

function unprocessable(message: string): ApiError {
  return new ApiError(422, 'Invalid', message);
}

function parsePointer(p: string): string[] {
  if (p === '') return [];
  if (!p.startsWith('/')) throw unprocessable(`JSON pointer ${JSON.stringify(p)} must start with "/"`);
  return p
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function getAt(doc: JsonValue, parts: string[]): JsonValue | undefined {
  let cur: JsonValue | undefined = doc;
  for (const p of parts) {
    if (Array.isArray(cur)) cur = /^\d+$/.test(p) ? cur[Number(p)] : undefined;
    else if (isObject(cur)) cur = cur[p];
    else return undefined;
  }
  return cur;
}

function parentOf(doc: JsonValue, parts: string[], pointer: string): { parent: JsonValue; last: string } {
  const parent = getAt(doc, parts.slice(0, -1));
  if (parent === undefined || (!Array.isArray(parent) && !isObject(parent))) {
    throw unprocessable(`doc is missing path: "${pointer}": missing value`);
  }
  return { parent, last: parts[parts.length - 1]! };
}

function arrayIndex(arr: JsonValue[], last: string, pointer: string, forInsert: boolean): number {
  if (forInsert && last === '-') return arr.length;
  if (!/^\d+$/.test(last)) throw unprocessable(`invalid array index ${JSON.stringify(last)} in "${pointer}"`);
  const i = Number(last);
  if (i > arr.length || (!forInsert && i >= arr.length)) throw unprocessable(`index out of range in "${pointer}"`);
  return i;
}

function add(doc: JsonValue, pointer: string, value: JsonValue): JsonValue {
  const parts = parsePointer(pointer);
  if (parts.length === 0) return clone(value);
  const { parent, last } = parentOf(doc, parts, pointer);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, pointer, true), 0, clone(value));
  else (parent as JsonObject)[last] = clone(value);
  return doc;
}

function remove(doc: JsonValue, pointer: string): JsonValue {
  const parts = parsePointer(pointer);
  if (parts.length === 0) throw unprocessable('cannot remove the whole document');
  const { parent, last } = parentOf(doc, parts, pointer);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, pointer, false), 1);
  else {
    if (!(last in (parent as JsonObject))) throw unprocessable(`doc is missing key: "${pointer}": missing value`);
    delete (parent as JsonObject)[last];
  }
  return doc;
}

export function jsonPatch(original: JsonObject, ops: JsonValue): JsonObject {
  if (!Array.isArray(ops)) throw badRequest('json patch: the patch must be a JSON array of operations');
  let doc: JsonValue = clone(original);
  for (const raw of ops) {
    if (!isObject(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string') {
      throw badRequest(`json patch: each operation needs "op" and "path": ${JSON.stringify(raw)}`);
    }
    const op = raw as unknown as Operation;
    switch (op.op) {
      case 'add':
        doc = add(doc, op.path, op.value ?? null);
        break;
      case 'remove':
        doc = remove(doc, op.path);
        break;
      case 'replace': {
        if (getAt(doc, parsePointer(op.path)) === undefined) throw unprocessable(`replace operation does not apply: doc is missing key: ${op.path}: missing value`);
        const parts = parsePointer(op.path);
        if (parts.length === 0) doc = clone(op.value ?? null);
        else {
          const { parent, last } = parentOf(doc, parts, op.path);
          if (Array.isArray(parent)) parent[arrayIndex(parent, last, op.path, false)] = clone(op.value ?? null);
          else (parent as JsonObject)[last] = clone(op.value ?? null);
        }
        break;
      }
      case 'move':
      case 'copy': {
        if (typeof op.from !== 'string') throw badRequest(`json patch: "${op.op}" needs "from"`);
        const v = getAt(doc, parsePointer(op.from));
        if (v === undefined) throw unprocessable(`${op.op} operation does not apply: doc is missing from path: ${op.from}: missing value`);
        const value = clone(v);
        if (op.op === 'move') doc = remove(doc, op.from);
        doc = add(doc, op.path, value);
        break;
      }
      case 'test': {
        const v = getAt(doc, parsePointer(op.path));
        if (!isDeepStrictEqual(v ?? null, op.value ?? null)) throw unprocessable(`testing value ${op.path} failed: test failed`);
        break;
      }
      default:
        throw badRequest(`json patch: unexpected operation kind ${JSON.stringify(op.op)}`);
    }
  }
  if (!isObject(doc)) throw unprocessable('json patch: the result is not a JSON object');
  return doc;
}
