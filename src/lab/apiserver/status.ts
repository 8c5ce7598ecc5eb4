/** `Status` bodies (meta/v1), the API server's error and success envelope. */
import type { JsonObject } from '../../manifests/types.js';
import { StoreError } from '../store.js';
import { qualifiedResource, type ResourceDescriptor } from './resources.js';

export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Gone'
  | 'Expired'
  | 'Invalid'
  | 'UnsupportedMediaType'
  | 'RequestEntityTooLarge'
  | 'InternalError'
  | 'Timeout';

export interface StatusCause {
  reason?: string;
  message: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
}

/** An error the HTTP layer turns into a Status body with its code. */
export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: StatusReason,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function statusBody(code: number, reason: StatusReason | undefined, message: string, details?: StatusDetails): JsonObject {
  const body: JsonObject = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message };
  if (reason) body.reason = reason;
  if (details) body.details = details as JsonObject;
  body.code = code;
  return body;
}

export function successStatus(details?: StatusDetails): JsonObject {
  const body: JsonObject = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' };
  if (details) body.details = details as JsonObject;
  return body;
}

function detailsFor(r: ResourceDescriptor | undefined, name: string | undefined): StatusDetails {
  const d: StatusDetails = {};
  if (name) d.name = name;
  if (r?.group) d.group = r.group;
  if (r) d.kind = r.plural;
  return d;
}

export function notFound(r: ResourceDescriptor, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${qualifiedResource(r)} "${name}" not found`, detailsFor(r, name));
}

export function namespaceNotFound(ns: string): ApiError {
  return new ApiError(404, 'NotFound', `namespaces "${ns}" not found`, { name: ns, kind: 'namespaces' });
}

export function alreadyExists(r: ResourceDescriptor, name: string): ApiError {
  return new ApiError(409, 'AlreadyExists', `${qualifiedResource(r)} "${name}" already exists`, detailsFor(r, name));
}

export function conflict(r: ResourceDescriptor, name: string, why: string): ApiError {
  return new ApiError(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedResource(r)} "${name}": ${why}`, detailsFor(r, name));
}

export function badRequest(message: string, causes?: StatusCause[]): ApiError {
  return new ApiError(400, 'BadRequest', message, causes ? { causes } : undefined);
}

export function methodNotAllowed(message: string, r?: ResourceDescriptor, name?: string): ApiError {
  return new ApiError(405, 'MethodNotAllowed', message, r ? detailsFor(r, name) : undefined);
}

export interface FieldError {
  field: string;
  /** 'FieldValueRequired', 'FieldValueInvalid', 'FieldValueNotSupported', 'FieldValueDuplicate', 'FieldValueForbidden'. */
  type: 'FieldValueRequired' | 'FieldValueInvalid' | 'FieldValueNotSupported' | 'FieldValueDuplicate' | 'FieldValueForbidden' | 'FieldValueTooLong';
  detail: string;
  value?: unknown;
}

const TYPE_TEXT: Record<FieldError['type'], string> = {
  FieldValueRequired: 'Required value',
  FieldValueInvalid: 'Invalid value',
  FieldValueNotSupported: 'Unsupported value',
  FieldValueDuplicate: 'Duplicate value',
  FieldValueForbidden: 'Forbidden',
  FieldValueTooLong: 'Too long',
};

/** Go's %#v-ish rendering of a value, as the real server puts it into Invalid messages. */
function goValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    const entries = Object.entries(v as Record<string, unknown>);
    if (entries.every(([, x]) => typeof x === 'string')) {
      return `map[string]string{${entries.map(([k, x]) => `${JSON.stringify(k)}:${JSON.stringify(x)}`).join(', ')}}`;
    }
  }
  return JSON.stringify(v);
}

function causeMessage(e: FieldError): string {
  const head = TYPE_TEXT[e.type];
  if (e.type === 'FieldValueRequired' || e.type === 'FieldValueForbidden') return e.detail ? `${head}: ${e.detail}` : head;
  const value = e.value === undefined ? '' : `: ${goValue(e.value)}`;
  return e.detail ? `${head}${value}: ${e.detail}` : `${head}${value}`;
}

/** 422 Invalid, formatted like the real server: `Deployment.apps "x" is invalid: [a: Required value, b: ...]`. */
export function invalid(r: ResourceDescriptor, name: string, errors: FieldError[]): ApiError {
  const causes = errors.map((e) => ({ reason: e.type, message: causeMessage(e), field: e.field }));
  const parts = causes.map((c) => `${c.field}: ${c.message}`);
  const what = r.group ? `${r.kind}.${r.group}` : r.kind;
  const list = parts.length === 1 ? parts[0] : `[${parts.join(', ')}]`;
  return new ApiError(422, 'Invalid', `${what} "${name}" is invalid: ${list}`, { name, group: r.group || undefined, kind: r.kind, causes });
}

/** Maps the store's errors onto the real server's wording for the resource at hand. */
export function fromStoreError(err: StoreError, r: ResourceDescriptor, name: string): ApiError {
  switch (err.reason) {
    case 'NotFound':
      return notFound(r, name);
    case 'AlreadyExists':
      return alreadyExists(r, name);
    case 'Conflict':
      if (err.message.startsWith('Precondition failed')) return new ApiError(409, 'Conflict', err.message, { name, kind: r.plural });
      return conflict(r, name, 'the object has been modified; please apply your changes to the latest version and try again');
    case 'Gone':
      return new ApiError(410, 'Expired', err.message);
    case 'Invalid':
      return new ApiError(422, 'Invalid', err.message, { name, kind: r.kind, causes: err.causes.map((c) => ({ ...c, reason: c.reason ?? 'FieldValueInvalid' })) });
    case 'Forbidden':
      return new ApiError(403, 'Forbidden', err.message, { name, kind: r.plural });
    case 'BadRequest':
      return badRequest(err.message);
    default:
      return new ApiError(500, 'InternalError', err.message);
  }
}

export function toApiError(err: unknown, r?: ResourceDescriptor, name?: string): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof StoreError && r) return fromStoreError(err, r, name ?? '');
  if (err instanceof StoreError) return new ApiError(err.code, err.reason === 'Gone' ? 'Expired' : err.reason, err.message);
  const message = err instanceof Error ? err.message : String(err);
  return new ApiError(500, 'InternalError', `Internal error occurred: ${message}`);
}
