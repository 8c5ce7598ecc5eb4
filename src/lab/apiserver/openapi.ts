/**
 * OpenAPI v3 documents, enough for kubectl's validation path: `/openapi/v3` lists one document per group
 * version; each document has one schema per kind carrying `x-kubernetes-group-version-kind` (open parts marked
 * `x-kubernetes-preserve-unknown-fields`), and PATCH operations that declare the `fieldValidation` and `dryRun`
 * query parameters. kubectl then delegates field validation to the server (fieldValidation=Strict).
 *
 * The PATCH request bodies deliberately do not list strategic-merge-patch: kubectl then computes client-side
 * apply patches from its compiled-in types instead of from these (schematic) schemas.
 *
 * kubectl ≤ 1.27 first reads `/openapi/v2` (protobuf, a gnostic `openapi.v2.Document`): openapi-v2.ts derives it
 * from these documents. 1.27 then reads these v3 documents to learn that PATCH accepts `fieldValidation`.
 * `/swagger-2.0.0.pb-v1` is not served (only asked for when `/openapi/v2` is missing).
 */
import { createHash } from 'node:crypto';
import type { JsonObject } from '../../manifests/types.js';
import { SERVER_VERSION } from './discovery.js';
import { groupVersions, gvPath, type GroupVersion, type ResourceDescriptor } from './resources.js';

const META = 'io.k8s.apimachinery.pkg.apis.meta.v1';
const ref = (name: string): JsonObject => ({ $ref: `#/components/schemas/${name}` });

function schemaName(r: ResourceDescriptor): string {
  if (!r.group) return `io.k8s.api.core.v1.${r.kind}`;
  if (r.group.endsWith('.k8s.io')) return `io.k8s.api.${r.group.slice(0, -'.k8s.io'.length).split('.')[0]}.${r.version}.${r.kind}`;
  if (!r.group.includes('.')) return `io.k8s.api.${r.group}.${r.version}.${r.kind}`;
  return `${r.group.split('.').reverse().join('.')}.${r.version}.${r.kind}`;
}

function gvk(r: ResourceDescriptor): JsonObject {
  return { group: r.group, kind: r.kind, version: r.version };
}

const open = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
const stringMap = { type: 'object', additionalProperties: { type: 'string', default: '' } };

function metaSchemas(): Record<string, JsonObject> {
  return {
    [`${META}.ObjectMeta`]: {
      description: 'ObjectMeta is metadata that all persisted resources must have.',
      type: 'object',
      properties: {
        name: { type: 'string' },
        generateName: { type: 'string' },
        namespace: { type: 'string' },
        labels: stringMap,
        annotations: stringMap,
        finalizers: { type: 'array', items: { type: 'string', default: '' }, 'x-kubernetes-list-type': 'set', 'x-kubernetes-patch-strategy': 'merge' },
        ownerReferences: { type: 'array', items: open, 'x-kubernetes-patch-merge-key': 'uid', 'x-kubernetes-patch-strategy': 'merge' },
        uid: { type: 'string' },
        resourceVersion: { type: 'string' },
        generation: { type: 'integer', format: 'int64' },
        creationTimestamp: { type: 'string', format: 'date-time' },
        deletionTimestamp: { type: 'string', format: 'date-time' },
        deletionGracePeriodSeconds: { type: 'integer', format: 'int64' },
        managedFields: { type: 'array', items: open },
        selfLink: { type: 'string' },
      },
    },
    [`${META}.Patch`]: { description: 'Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.', type: 'object' },
    [`${META}.Status`]: { description: 'Status is a return value for calls that do not return other objects.', ...open },
    [`${META}.DeleteOptions`]: { description: 'DeleteOptions may be provided when deleting an API object.', ...open },
  };
}

function kindSchema(r: ResourceDescriptor): JsonObject {
  return {
    description: `${r.kind} (${r.group || 'core'}/${r.version}) as served by the alb-rollout lab.`,
    type: 'object',
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { allOf: [ref(`${META}.ObjectMeta`)], default: {} },
      spec: open,
      status: open,
    },
    'x-kubernetes-preserve-unknown-fields': true,
    'x-kubernetes-group-version-kind': [gvk(r)],
  };
}

function listSchema(r: ResourceDescriptor): JsonObject {
  return {
    type: 'object',
    required: ['items'],
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      items: { type: 'array', items: { allOf: [ref(schemaName(r))], default: {} } },
      metadata: open,
    },
    'x-kubernetes-group-version-kind': [{ ...gvk(r), kind: `${r.kind}List` }],
  };
}

const queryParam = (name: string, description: string, type = 'string'): JsonObject => ({ name, in: 'query', description, schema: { type, uniqueItems: true } });
const pathParam = (name: string, description: string): JsonObject => ({ name, in: 'path', description, required: true, schema: { type: 'string', uniqueItems: true } });

function operationId(verb: string, r: ResourceDescriptor, suffix = ''): string {
  const group = (r.group || 'core')
    .split('.')
    .filter((p) => p !== 'k8s' && p !== 'io')
    .map((p) => p[0]!.toUpperCase() + p.slice(1))
    .join('');
  const version = r.version[0]!.toUpperCase() + r.version.slice(1);
  return `${verb}${group}${version}${r.namespaced ? 'Namespaced' : ''}${r.kind}${suffix}`;
}

function responses(schema: string, codes: string[]): JsonObject {
  const out: JsonObject = {};
  for (const c of codes) out[c] = { description: c === '201' ? 'Created' : c === '202' ? 'Accepted' : 'OK', content: { 'application/json': { schema: ref(schema) } } };
  out['401'] = { description: 'Unauthorized' };
  return out;
}

function writeParams(): JsonObject[] {
  return [
    queryParam('dryRun', 'When present, indicates that modifications should not be persisted.'),
    queryParam('fieldManager', 'fieldManager is a name associated with the actor or entity that is making these changes.'),
    queryParam('fieldValidation', 'fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields: Ignore, Warn or Strict.'),
  ];
}

function itemOperations(r: ResourceDescriptor, subresource: string): JsonObject {
  const name = schemaName(r);
  const suffix = subresource ? subresource[0]!.toUpperCase() + subresource.slice(1) : '';
  const ops: JsonObject = {
    get: { operationId: operationId('read', r, suffix), responses: responses(name, ['200']), 'x-kubernetes-action': 'get', 'x-kubernetes-group-version-kind': gvk(r) },
  };
  if (!r.verbs.includes('update')) return ops;
  ops.put = {
    operationId: operationId('replace', r, suffix),
    parameters: writeParams(),
    requestBody: { content: { '*/*': { schema: ref(name) } }, required: true },
    responses: responses(name, ['200', '201']),
    'x-kubernetes-action': 'put',
    'x-kubernetes-group-version-kind': gvk(r),
  };
  ops.patch = {
    operationId: operationId('patch', r, suffix),
    parameters: [...writeParams(), queryParam('force', 'Force is going to "force" Apply requests.', 'boolean')],
    requestBody: {
      content: {
        'application/apply-patch+yaml': { schema: ref(`${META}.Patch`) },
        'application/json-patch+json': { schema: ref(`${META}.Patch`) },
        'application/merge-patch+json': { schema: ref(`${META}.Patch`) },
      },
      required: true,
    },
    responses: responses(name, ['200', '201']),
    'x-kubernetes-action': 'patch',
    'x-kubernetes-group-version-kind': gvk(r),
  };
  if (!subresource) {
    ops.delete = {
      operationId: operationId('delete', r),
      parameters: [queryParam('dryRun', 'When present, indicates that modifications should not be persisted.'), queryParam('gracePeriodSeconds', 'The duration in seconds before the object should be deleted.', 'integer'), queryParam('propagationPolicy', 'Whether and how garbage collection will be performed.')],
      requestBody: { content: { '*/*': { schema: ref(`${META}.DeleteOptions`) } } },
      responses: responses(`${META}.Status`, ['200', '202']),
      'x-kubernetes-action': 'delete',
      'x-kubernetes-group-version-kind': gvk(r),
    };
  }
  return ops;
}

function collectionOperations(r: ResourceDescriptor): JsonObject {
  const ops: JsonObject = {
    get: {
      operationId: operationId('list', r),
      parameters: [queryParam('labelSelector', 'A selector to restrict the list of returned objects by their labels.'), queryParam('fieldSelector', 'A selector to restrict the list of returned objects by their fields.'), queryParam('limit', 'limit', 'integer'), queryParam('continue', 'continue'), queryParam('watch', 'watch', 'boolean'), queryParam('resourceVersion', 'resourceVersion')],
      responses: responses(`${schemaName(r)}List`, ['200']),
      'x-kubernetes-action': 'list',
      'x-kubernetes-group-version-kind': gvk(r),
    },
  };
  if (r.verbs.includes('create')) {
    ops.post = {
      operationId: operationId('create', r),
      parameters: writeParams(),
      requestBody: { content: { '*/*': { schema: ref(schemaName(r)) } }, required: true },
      responses: responses(schemaName(r), ['200', '201', '202']),
      'x-kubernetes-action': 'post',
      'x-kubernetes-group-version-kind': gvk(r),
    };
  }
  return ops;
}

export function groupVersionDocument(gv: GroupVersion): JsonObject {
  const base = gvPath(gv.group, gv.version);
  const paths: JsonObject = {};
  const schemas: Record<string, JsonObject> = metaSchemas();
  for (const r of gv.resources) {
    const nsPart = r.namespaced ? '/namespaces/{namespace}' : '';
    const common = [...(r.namespaced ? [pathParam('namespace', 'object name and auth scope, such as for teams and projects')] : []), queryParam('pretty', 'If true, then the output is pretty printed.')];
    const collection = `${base}${nsPart}/${r.plural}`;
    paths[collection] = { ...collectionOperations(r), parameters: common };
    const item = `${collection}/{name}`;
    const itemParams = [pathParam('name', `name of the ${r.kind}`), ...common];
    paths[item] = { ...itemOperations(r, ''), parameters: itemParams };
    for (const sub of r.subresources) {
      if (sub === 'status') paths[`${item}/status`] = { ...itemOperations(r, 'status'), parameters: itemParams };
    }
    schemas[schemaName(r)] = kindSchema(r);
    schemas[`${schemaName(r)}List`] = listSchema(r);
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: SERVER_VERSION.gitVersion },
    paths,
    components: { schemas },
  };
}

export interface OpenApiV3 {
  index: JsonObject;
  /** Keyed by 'api/v1' or 'apis/<group>/<version>', the serialized document. */
  documents: Map<string, string>;
}

export function buildOpenApiV3(): OpenApiV3 {
  const documents = new Map<string, string>();
  const paths: JsonObject = {};
  for (const gv of groupVersions()) {
    const key = gvPath(gv.group, gv.version).slice(1);
    const body = JSON.stringify(groupVersionDocument(gv));
    documents.set(key, body);
    const hash = createHash('sha512').update(body).digest('hex').toUpperCase();
    paths[key] = { serverRelativeURL: `/openapi/v3/${key}?hash=${hash}` };
  }
  return { index: { paths }, documents };
}
