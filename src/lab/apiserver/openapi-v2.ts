/**
 * `/openapi/v2` for kubectl ≤ 1.27, which reads only this (never `/openapi/v3`) before `apply`/`create`/`replace`:
 * a Swagger 2.0 document, served as a protobuf-encoded gnostic `openapi.v2.Document`
 * (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`, what kubectl asks for) or as JSON.
 *
 * Derived from the same per group version documents as `/openapi/v3` (openapi.ts), so both describe the same
 * kinds and operations:
 * - `paths`: every operation, with `x-kubernetes-group-version-kind` (a YAML map) and its query parameters. The
 *   PATCH operations declaring `fieldValidation` are what kubectl 1.27 looks for (QueryParamVerifier) to decide
 *   that the server validates fields itself; it then sends `fieldValidation=Strict` and skips its client-side
 *   schema validation, so unknown fields are reported by the lab server (validate.ts), as by a real ≥ 1.27 server.
 * - `definitions`: the same schemas, `$ref`s rewritten to `#/definitions/…`, each kind with its
 *   `x-kubernetes-group-version-kind` (a YAML list) and its real top-level fields (see "kind definitions" below:
 *   kubectl 1.27 validates `kind: List` items against them).
 * Values of vendor extensions and defaults are gnostic `Any`s holding YAML text; JSON is valid YAML.
 */
import type { ServerResponse } from 'node:http';
import type { JsonObject, JsonValue } from '../../manifests/types.js';
import { SERVER_VERSION } from './discovery.js';
import { groupVersionDocument } from './openapi.js';
import { ProtoWriter } from './protobuf.js';
import { groupVersions } from './resources.js';

/** What kubectl ≤ 1.27 asks for; '@' is no valid media type character, so replies use the dotted form below. */
export const OPENAPI_V2_PROTOBUF_ACCEPT = 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf';
/** The Content-Type kube-openapi answers with (client-go's mime.ParseMediaType rejects the '@' form). */
export const OPENAPI_V2_PROTOBUF = 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf';

export interface OpenApiV2 {
  /** The Swagger 2.0 document, serialized. */
  json: string;
  /** The same document as a gnostic openapi.v2.Document. */
  protobuf: Buffer;
}

const isObject = (v: JsonValue | undefined): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: JsonValue | undefined): string | undefined => (typeof v === 'string' ? v : undefined);

// ------------------------------------------------------------------------------- OpenAPI 3 → Swagger 2

function v2Ref(ref: string): string {
  return ref.replace('#/components/schemas/', '#/definitions/');
}

/** A v3 schema of openapi.ts as Swagger 2: `allOf: [$ref]` becomes `$ref` (kube-openapi's v2 parser ignores allOf). */
function v2Schema(s: JsonObject): JsonObject {
  const out: JsonObject = {};
  const allOf = s.allOf;
  if (Array.isArray(allOf) && allOf.length === 1 && isObject(allOf[0]) && typeof allOf[0].$ref === 'string') {
    out.$ref = v2Ref(allOf[0].$ref);
    if (typeof s.description === 'string') out.description = s.description;
    return out;
  }
  for (const [k, v] of Object.entries(s)) {
    if (k === '$ref' && typeof v === 'string') out.$ref = v2Ref(v);
    else if (k === 'properties' && isObject(v)) out.properties = Object.fromEntries(Object.entries(v).map(([n, p]) => [n, isObject(p) ? v2Schema(p) : p]));
    else if ((k === 'items' || k === 'additionalProperties') && isObject(v)) out[k] = v2Schema(v);
    else out[k] = v;
  }
  return out;
}

function v2Parameter(p: JsonObject): JsonObject {
  const schema = isObject(p.schema) ? p.schema : {};
  const out: JsonObject = { name: p.name ?? '', in: p.in ?? 'query', type: schema.type ?? 'string' };
  if (typeof p.description === 'string') out.description = p.description;
  if (p.required === true) out.required = true;
  if (schema.uniqueItems === true) out.uniqueItems = true;
  return out;
}

function v2Operation(op: JsonObject): JsonObject {
  const out: JsonObject = {};
  if (typeof op.operationId === 'string') out.operationId = op.operationId;
  const params: JsonValue[] = Array.isArray(op.parameters) ? op.parameters.filter(isObject).map(v2Parameter) : [];
  if (isObject(op.requestBody) && isObject(op.requestBody.content)) {
    const content = op.requestBody.content;
    out.consumes = Object.keys(content);
    const first = Object.values(content).find(isObject);
    const body: JsonObject = { name: 'body', in: 'body', required: op.requestBody.required === true };
    if (first && isObject(first.schema)) body.schema = v2Schema(first.schema);
    params.unshift(body);
  }
  out.produces = ['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf'];
  out.schemes = ['https'];
  if (params.length) out.parameters = params;
  const responses: JsonObject = {};
  for (const [code, r] of Object.entries(isObject(op.responses) ? op.responses : {})) {
    if (!isObject(r)) continue;
    const resp: JsonObject = { description: str(r.description) ?? '' };
    const json = isObject(r.content) ? r.content['application/json'] : undefined;
    if (isObject(json) && isObject(json.schema)) resp.schema = v2Schema(json.schema);
    responses[code] = resp;
  }
  out.responses = responses;
  for (const [k, v] of Object.entries(op)) if (k.startsWith('x-')) out[k] = v;
  return out;
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

/** The Swagger 2.0 document: every group version of the registry, like the real server's single v2 document. */
export function swaggerDocument(): JsonObject {
  const paths: JsonObject = {};
  const definitions: JsonObject = {};
  for (const gv of groupVersions()) {
    const doc = groupVersionDocument(gv);
    for (const [path, item] of Object.entries(isObject(doc.paths) ? doc.paths : {})) {
      if (!isObject(item)) continue;
      const out: JsonObject = {};
      for (const m of METHODS) if (isObject(item[m])) out[m] = v2Operation(item[m]);
      if (Array.isArray(item.parameters)) out.parameters = item.parameters.filter(isObject).map(v2Parameter);
      paths[path] = out;
    }
    const schemas = isObject(doc.components) && isObject(doc.components.schemas) ? doc.components.schemas : {};
    for (const [name, s] of Object.entries(schemas)) if (isObject(s)) definitions[name] = v2Definition(s);
  }
  return { swagger: '2.0', info: { title: 'Kubernetes', version: SERVER_VERSION.gitVersion }, paths, definitions };
}

// ----------------------------------------------------------------------------------- kind definitions

/**
 * kubectl 1.27 validates client-side against these definitions whenever it cannot delegate to the server: always
 * for `kind: List` (its QueryParamVerifier reports v1/List as unsupported), e.g. `kubectl get … -o yaml | kubectl
 * apply -f -`. kube-openapi's v2 validator ignores `x-kubernetes-preserve-unknown-fields`: an object with
 * `properties` rejects any other field ("unknown field"), an object without them (a map) accepts anything. So a
 * kind is described by its real top-level fields (unknown top-level or metadata fields are still reported) and
 * each field's content is left open: `type: object` without properties for structs, arrays of those for lists.
 *
 * These schemas are also found by kubectl's client-side apply (three-way strategic merge patch from OpenAPI):
 * lookups of patch metadata inside an open struct fail, and kubectl then computes the patch from its compiled-in
 * types, which is the correct result for every built-in kind (checked in test/lab/kubectl-127.test.ts). Top-level
 * lists that merge by key on a real server carry the same `x-kubernetes-patch-*` extensions here.
 */
const struct: JsonObject = { type: 'object' };
const structs: JsonObject = { type: 'array', items: struct };
const strings: JsonObject = { type: 'object', additionalProperties: { type: 'string' } };
const text: JsonObject = { type: 'string' };
const bool: JsonObject = { type: 'boolean' };
const mergeByName = (s: JsonObject): JsonObject => ({ ...s, 'x-kubernetes-patch-merge-key': 'name', 'x-kubernetes-patch-strategy': 'merge' });
const specStatus: JsonObject = { spec: struct, status: struct };

/** Top-level fields besides apiVersion, kind and metadata, by kind (the Kubernetes API types of each kind). */
const TOP_LEVEL: Record<string, JsonObject> = {
  Endpoints: { subsets: structs },
  Event: {
    action: text,
    count: { type: 'integer', format: 'int32' },
    eventTime: text,
    firstTimestamp: text,
    involvedObject: struct,
    lastTimestamp: text,
    message: text,
    reason: text,
    related: struct,
    reportingComponent: text,
    reportingInstance: text,
    series: struct,
    source: struct,
    type: text,
  },
  ConfigMap: { binaryData: strings, data: strings, immutable: bool },
  Secret: { data: strings, immutable: bool, stringData: strings, type: text },
  ServiceAccount: { automountServiceAccountToken: bool, imagePullSecrets: structs, secrets: mergeByName(structs) },
  EndpointSlice: { addressType: text, endpoints: structs, ports: structs },
  IngressClass: { spec: struct },
  MutatingWebhookConfiguration: { webhooks: mergeByName(structs) },
  Role: { rules: structs },
  ClusterRole: { aggregationRule: struct, rules: structs },
  RoleBinding: { roleRef: struct, subjects: structs },
  ClusterRoleBinding: { roleRef: struct, subjects: structs },
};

function gvkKind(s: JsonObject): string | undefined {
  const gvks = s['x-kubernetes-group-version-kind'];
  const first = Array.isArray(gvks) ? gvks[0] : undefined;
  return isObject(first) ? str(first.kind) : undefined;
}

function v2Definition(s: JsonObject): JsonObject {
  const out = v2Schema(s);
  delete out['x-kubernetes-preserve-unknown-fields'];
  const kind = gvkKind(s);
  const props = out.properties;
  // A kind's own schema (not its List, not a meta type): its real top-level fields, open below them.
  if (kind && !kind.endsWith('List') && isObject(props) && props.metadata !== undefined) {
    out.properties = { apiVersion: props.apiVersion ?? text, kind: props.kind ?? text, metadata: props.metadata, ...(TOP_LEVEL[kind] ?? specStatus) };
  }
  return out;
}

// ------------------------------------------------------------------------------- gnostic protobuf

/** gnostic Any: the value as YAML text (JSON is YAML), field 2. */
function any(v: JsonValue): ProtoWriter {
  return new ProtoWriter().string(2, JSON.stringify(v));
}

/** NamedAny entries (field `field`) for the `x-` keys of `o`. */
function vendorExtensions(w: ProtoWriter, field: number, o: JsonObject): void {
  for (const [k, v] of Object.entries(o)) {
    if (k.startsWith('x-') && v !== null && v !== undefined) w.message(field, new ProtoWriter().string(1, k).message(2, any(v)));
  }
}

function schemaMessage(s: JsonObject): ProtoWriter {
  const w = new ProtoWriter()
    .string(1, str(s.$ref))
    .string(2, str(s.format))
    .string(3, str(s.title))
    .string(4, str(s.description));
  if (s.default !== undefined && s.default !== null) w.message(5, any(s.default));
  w.bool(16, s.uniqueItems === true);
  if (Array.isArray(s.required)) w.strings(19, s.required.filter((r): r is string => typeof r === 'string'));
  if (isObject(s.additionalProperties)) w.message(21, new ProtoWriter().message(1, schemaMessage(s.additionalProperties)));
  else if (typeof s.additionalProperties === 'boolean') w.message(21, new ProtoWriter().bool(2, s.additionalProperties));
  if (typeof s.type === 'string') w.message(22, new ProtoWriter().string(1, s.type));
  if (isObject(s.items)) w.message(23, new ProtoWriter().message(1, schemaMessage(s.items)));
  if (Array.isArray(s.allOf)) for (const a of s.allOf) if (isObject(a)) w.message(24, schemaMessage(a));
  if (isObject(s.properties)) {
    const props = new ProtoWriter();
    for (const [name, p] of Object.entries(s.properties)) if (isObject(p)) props.message(1, new ProtoWriter().string(1, name).message(2, schemaMessage(p)));
    w.message(25, props);
  }
  vendorExtensions(w, 31, s);
  return w;
}

function parameterMessage(p: JsonObject): ProtoWriter {
  let parameter: ProtoWriter;
  if (p.in === 'body') {
    const body = new ProtoWriter().string(1, str(p.description)).string(2, str(p.name)).string(3, 'body').bool(4, p.required === true);
    if (isObject(p.schema)) body.message(5, schemaMessage(p.schema));
    parameter = new ProtoWriter().message(1, body);
  } else {
    // QueryParameterSubSchema and PathParameterSubSchema share 1 required, 2 in, 3 description, 4 name; type is 6
    // (query) or 5 (path), uniqueItems 20 (query) or 19 (path).
    const path = p.in === 'path';
    const sub = new ProtoWriter()
      .bool(1, p.required === true)
      .string(2, str(p.in))
      .string(3, str(p.description))
      .string(4, str(p.name))
      .string(path ? 5 : 6, str(p.type))
      .bool(path ? 19 : 20, p.uniqueItems === true);
    parameter = new ProtoWriter().message(2, new ProtoWriter().message(path ? 4 : 3, sub));
  }
  return new ProtoWriter().message(1, parameter);
}

function operationMessage(op: JsonObject): ProtoWriter {
  const strings = (v: JsonValue | undefined): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  const w = new ProtoWriter().string(3, str(op.description)).string(5, str(op.operationId)).strings(6, strings(op.produces)).strings(7, strings(op.consumes));
  if (Array.isArray(op.parameters)) for (const p of op.parameters) if (isObject(p)) w.message(8, parameterMessage(p));
  if (isObject(op.responses)) {
    const responses = new ProtoWriter();
    for (const [code, r] of Object.entries(op.responses)) {
      if (!isObject(r)) continue;
      const response = new ProtoWriter().string(1, str(r.description));
      if (isObject(r.schema)) response.message(2, new ProtoWriter().message(1, schemaMessage(r.schema)));
      responses.message(1, new ProtoWriter().string(1, code).message(2, new ProtoWriter().message(1, response)));
    }
    w.message(9, responses);
  }
  w.strings(10, strings(op.schemes));
  vendorExtensions(w, 13, op);
  return w;
}

const PATH_ITEM_FIELDS: Record<(typeof METHODS)[number], number> = { get: 2, put: 3, post: 4, delete: 5, patch: 8 };

export function encodeSwagger(doc: JsonObject): Buffer {
  const w = new ProtoWriter().string(1, str(doc.swagger));
  if (isObject(doc.info)) w.message(2, new ProtoWriter().string(1, str(doc.info.title)).string(2, str(doc.info.version)));
  const paths = new ProtoWriter();
  for (const [path, item] of Object.entries(isObject(doc.paths) ? doc.paths : {})) {
    if (!isObject(item)) continue;
    const pi = new ProtoWriter();
    for (const m of METHODS) if (isObject(item[m])) pi.message(PATH_ITEM_FIELDS[m], operationMessage(item[m]));
    if (Array.isArray(item.parameters)) for (const p of item.parameters) if (isObject(p)) pi.message(9, parameterMessage(p));
    paths.message(2, new ProtoWriter().string(1, path).message(2, pi));
  }
  w.message(8, paths);
  const defs = new ProtoWriter();
  for (const [name, s] of Object.entries(isObject(doc.definitions) ? doc.definitions : {})) {
    if (isObject(s)) defs.message(1, new ProtoWriter().string(1, name).message(2, schemaMessage(s)));
  }
  w.message(9, defs);
  return w.finish();
}

export function buildOpenApiV2(): OpenApiV2 {
  const doc = swaggerDocument();
  return { json: JSON.stringify(doc), protobuf: encodeSwagger(doc) };
}

/**
 * Writes the document: protobuf when the Accept header names the gnostic media type in either spelling (kubectl
 * ≤ 1.27 sends only the '@' one), JSON otherwise.
 */
export function sendOpenApiV2(accept: string | undefined, doc: OpenApiV2, res: ServerResponse): void {
  const types = (accept ?? '').split(',').map((t) => t.split(';')[0]!.trim());
  const protobuf = types.includes(OPENAPI_V2_PROTOBUF_ACCEPT) || types.includes(OPENAPI_V2_PROTOBUF);
  const body = protobuf ? doc.protobuf : Buffer.from(doc.json, 'utf8');
  res.writeHead(200, { 'Content-Type': protobuf ? OPENAPI_V2_PROTOBUF : 'application/json', 'Content-Length': body.length, 'Cache-Control': 'no-cache, private' });
  res.end(body);
}
