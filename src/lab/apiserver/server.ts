/**
 * The lab's Kubernetes API server: HTTP routing and the REST verbs over the in-process ObjectStore.
 * Speaks the real wire protocol (JSON, Status errors, watch streams, tables, SSA) so that kubectl and
 * @kubernetes/client-node work against it unmodified.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parse as parseYaml } from 'yaml';
import type { JsonObject, JsonValue, KubeObject } from '../../manifests/types.js';
import { clone, type DeleteOptions, type ObjectStore } from '../store.js';
import { managedFieldsAfterUpdate, serverSideApply } from './apply.js';
import { applyDefaults, ClusterIpAllocator, initialStatus } from './defaults.js';
import { apiGroup, apiGroupList, apiResourceList, apiVersions, versionInfo } from './discovery.js';
import { buildOpenApiV3, type OpenApiV3 } from './openapi.js';
import { buildOpenApiV2, sendOpenApiV2, type OpenApiV2 } from './openapi-v2.js';
import { decodeProtobufObject } from './protobuf.js';
import { isObject, jsonPatch, mergePatch, strategicMergePatch } from './patch.js';
import { apiVersionOf, descriptorsOfCrd, findByPlural, type ResourceDescriptor, type Verb } from './resources.js';
import { labelSelectorObject, parseFieldSelector, parseLabelSelector } from './selectors.js';
import {
  ApiError,
  badRequest,
  invalid,
  methodNotAllowed,
  namespaceNotFound,
  notFound,
  statusBody,
  successStatus,
  toApiError,
} from './status.js';
import { negotiate, partialMetadata, table, type IncludeObject, type Representation } from './table.js';
import { validateObject } from './validate.js';
import { serveWatch } from './watch.js';
import { LabRandom } from '../random.js';

export interface ApiFaults {
  /** Fraction (0..1) of non-watch resource requests answered with a 500 InternalError Status. */
  errorRate: number;
  /** Close watch streams after this long (the client sees the stream end and must reconnect). */
  dropWatchAfterMs?: number;
}

export interface ApiServerOptions {
  store: ObjectStore;
  /** Default 127.0.0.1; must be a loopback address. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** When set, every API request must carry `Authorization: Bearer <token>`. */
  token?: string;
  /** Real milliseconds from a CustomResourceDefinition's creation to its Established condition (default 150). */
  crdEstablishMs?: number;
  faults?: ApiFaults;
  /** The seeded stream that decides injected errors (the lab passes a fork of its PRNG); default seed 0. */
  random?: () => number;
  /** The seeded stream for generateName suffixes (the lab passes a fork of its PRNG); default seed 0. */
  names?: LabRandom;
  /** Interval of BOOKMARK events on watches that allow them (default 30 s). */
  bookmarkIntervalMs?: number;
  /** Namespaces created at start when missing (default: default, kube-system, kube-public, kube-node-lease). */
  systemNamespaces?: string[];
  /** Receives one line per request (for debugging tests). */
  log?: (line: string) => void;
}

type Counter = Verb | 'discovery' | 'openapi' | 'other';

const PATCH_TYPES = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
  'application/apply-patch+yaml',
] as const;
type PatchType = (typeof PATCH_TYPES)[number];

const MAX_BODY = 3 * 1024 * 1024;

/** One resource request, parsed from the URL. */
interface Target {
  r: ResourceDescriptor;
  namespace: string;
  name: string;
  subresource: '' | 'status' | 'scale';
  /** The deprecated /watch/ path prefix. */
  watchPath: boolean;
}

interface Reply {
  code: number;
  body: JsonValue;
}

interface WriteParams {
  dryRun: boolean;
  /** The fieldManager query parameter, or the user agent's program name when absent. */
  fieldManager: string;
  /** Whether fieldManager came from the query (server-side apply requires it). */
  fieldManagerGiven: boolean;
  force: boolean;
}

export class LabApiServer {
  readonly requestCounts: Record<string, number> = {
    get: 0,
    list: 0,
    watch: 0,
    create: 0,
    update: 0,
    patch: 0,
    delete: 0,
    deletecollection: 0,
    discovery: 0,
    openapi: 0,
    other: 0,
  };
  private readonly store: ObjectStore;
  private faults: ApiFaults;
  private readonly random: () => number;
  private readonly names: LabRandom;
  private server: Server | undefined;
  private url = '';
  private readonly watches = new Set<() => void>();
  private readonly ips = new ClusterIpAllocator();
  private readonly openapi: OpenApiV3 = buildOpenApiV3();
  private openapiV2: OpenApiV2 | undefined;
  /** The kinds served from Established CustomResourceDefinitions. */
  private custom: ResourceDescriptor[] = [];
  private readonly crdTimers = new Set<NodeJS.Timeout>();
  private unwatchCrds: (() => void) | undefined;

  constructor(private readonly options: ApiServerOptions) {
    this.store = options.store;
    this.faults = options.faults ?? { errorRate: 0 };
    this.random = options.random ?? new LabRandom(0, 'apiserver/faults').fn();
    this.names = options.names ?? new LabRandom(0, 'apiserver/names');
    const host = options.host ?? '127.0.0.1';
    if (!host.startsWith('127.')) throw new Error(`LabApiServer: host must be a loopback address (127.0.0.0/8), got ${host}`);
  }

  setFaults(f: ApiFaults): void {
    this.faults = { ...f };
  }

  getFaults(): ApiFaults {
    return { ...this.faults };
  }

  /** Ends every open watch stream now (clients see the stream end and must re-watch). */
  dropWatches(): void {
    for (const end of [...this.watches]) end();
  }

  async start(): Promise<{ url: string }> {
    if (this.server) return { url: this.url };
    for (const ns of this.options.systemNamespaces ?? ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      if (!this.store.get('Namespace', '', ns)) this.createNamespace(ns);
    }
    this.unwatchCrds = this.store.watch('CustomResourceDefinition', undefined, undefined, (e) => this.onCrd(e.object));
    for (const crd of this.store.list('CustomResourceDefinition').items) this.onCrd(crd);
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => resolve());
    });
    this.server = server;
    const a = server.address() as AddressInfo;
    this.url = `http://${a.address}:${a.port}`;
    return { url: this.url };
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.unwatchCrds?.();
    for (const t of this.crdTimers) clearTimeout(t);
    this.crdTimers.clear();
    for (const end of [...this.watches]) end();
    this.watches.clear();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  /**
   * A new CustomResourceDefinition: after a short delay its names are accepted and it is Established (conditions
   * NamesAccepted and Established True, as the apiextensions controllers set them); from then on its kinds are served
   * (discovery, get/list/watch, apply). The embedded tier does not validate custom resources against the CRD's schema.
   */
  private onCrd(crd: KubeObject): void {
    const established = (((crd.status as JsonObject | undefined)?.conditions ?? []) as JsonObject[]).some((c) => c.type === 'Established' && c.status === 'True');
    if (!established && this.store.get('CustomResourceDefinition', '', crd.metadata.name) && !crd.metadata.deletionTimestamp) {
      const timer = setTimeout(() => {
        this.crdTimers.delete(timer);
        this.establish(crd.metadata.name);
      }, this.options.crdEstablishMs ?? 150);
      timer.unref();
      this.crdTimers.add(timer);
    }
    this.custom = this.store
      .list('CustomResourceDefinition')
      .items.filter((c) => !c.metadata.deletionTimestamp && (((c.status as JsonObject | undefined)?.conditions ?? []) as JsonObject[]).some((x) => x.type === 'Established' && x.status === 'True'))
      .flatMap((c) => descriptorsOfCrd(c));
  }

  private establish(name: string): void {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    this.store.mutate(
      'CustomResourceDefinition',
      '',
      name,
      (o) => {
        const spec = (o.spec ?? {}) as JsonObject;
        const status = (o.status ?? {}) as JsonObject;
        const conditions = ((status.conditions ?? []) as JsonObject[]).filter((c) => c.type !== 'NamesAccepted' && c.type !== 'Established');
        conditions.push(
          { type: 'NamesAccepted', status: 'True', reason: 'NoConflicts', message: 'no conflicts found', lastTransitionTime: now },
          { type: 'Established', status: 'True', reason: 'InitialNamesAccepted', message: 'the initial names have been accepted', lastTransitionTime: now },
        );
        const versions = ((spec.versions ?? []) as JsonObject[]).filter((v) => v.storage === true).map((v) => String(v.name));
        o.status = { ...status, conditions, acceptedNames: (spec.names ?? {}) as JsonObject, storedVersions: versions };
      },
      'status',
    );
  }

  private createNamespace(name: string): void {
    const ns: KubeObject = { apiVersion: 'v1', kind: 'Namespace', metadata: { name } };
    applyDefaults(ns, () => this.ips.allocate());
    ns.status = initialStatus(ns);
    this.store.create('Namespace', ns);
  }

  private count(c: Counter): void {
    this.requestCounts[c] = (this.requestCounts[c] ?? 0) + 1;
  }

  // -------------------------------------------------------------------------------------------- HTTP

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    try {
      const reply = await this.route(req, res);
      if (reply) send(res, reply.code, reply.body);
    } catch (err) {
      const e = toApiError(err);
      if (!res.headersSent) send(res, e.code, statusBody(e.code, e.reason, e.message, e.details));
      else res.end();
    } finally {
      this.options.log?.(`${req.method} ${req.url} → ${res.statusCode} (${Date.now() - started} ms) ${String(req.headers['content-type'] ?? '')}`);
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<Reply | undefined> {
    const url = new URL(req.url ?? '/', 'http://lab');
    const segs = url.pathname.split('/').filter((s) => s !== '');
    const method = req.method ?? 'GET';

    if (['healthz', 'readyz', 'livez'].includes(segs[0] ?? '')) {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' }).end('ok');
      return undefined;
    }
    if (segs[0] === 'version' && segs.length === 1) return { code: 200, body: versionInfo() };

    if (this.options.token !== undefined && req.headers.authorization !== `Bearer ${this.options.token}`) {
      throw new ApiError(401, 'Unauthorized', 'Unauthorized');
    }

    if (segs[0] === 'openapi' && segs[1] === 'v2' && segs.length === 2 && method === 'GET') {
      this.count('openapi');
      sendOpenApiV2(req.headers.accept, (this.openapiV2 ??= buildOpenApiV2()), res);
      return undefined;
    }
    if (segs[0] === 'openapi') {
      this.count('openapi');
      return this.openapiDocument(segs);
    }
    const discovery = this.discovery(segs, req);
    if (discovery) {
      if (method !== 'GET') throw methodNotAllowed('the server does not allow this method on the requested resource');
      this.count('discovery');
      return discovery;
    }

    const target = this.parseTarget(segs);
    if (!target) {
      this.count('other');
      throw pageNotFound();
    }
    const q = url.searchParams;
    const verb = this.verbOf(method, target, q);
    this.count(verb);
    if (!target.r.verbs.includes(verb)) {
      throw methodNotAllowed(`the server does not allow this method on the requested resource`, target.r, target.name);
    }
    if (target.subresource && !target.r.verbs.includes('update') && method !== 'GET') {
      throw methodNotAllowed(`the server does not allow this method on the requested resource`, target.r, target.name);
    }
    if (verb !== 'watch' && this.faults.errorRate > 0 && this.random() < this.faults.errorRate) {
      throw new ApiError(500, 'InternalError', 'Internal error occurred: injected fault (lab API server errorRate)');
    }
    const rep = this.representation(req, verb);
    switch (verb) {
      case 'get':
        return this.get(target, rep, q);
      case 'list':
        return this.list(target, rep, q);
      case 'watch':
        this.watch(target, rep, q, res);
        return undefined;
      case 'create':
        return this.create(target, await readBody(req), this.writeParams(req, q));
      case 'update':
        return this.update(target, await readBody(req), this.writeParams(req, q));
      case 'patch':
        return this.patch(target, req, await readBody(req), this.writeParams(req, q));
      case 'delete':
        return this.delete(target, await readBody(req), q);
      case 'deletecollection':
        return this.deleteCollection(target, await readBody(req), q);
    }
  }

  private verbOf(method: string, t: Target, q: URLSearchParams): Verb {
    const watch = t.watchPath || q.get('watch') === 'true' || q.get('watch') === '1';
    switch (method) {
      case 'GET':
        if (t.name) return t.watchPath ? 'watch' : 'get';
        return watch ? 'watch' : 'list';
      case 'POST':
        if (!t.name) return 'create';
        break;
      case 'PUT':
        if (t.name) return 'update';
        break;
      case 'PATCH':
        if (t.name) return 'patch';
        break;
      case 'DELETE':
        if (t.name && !t.subresource) return 'delete';
        if (!t.name) return 'deletecollection';
        break;
      default:
        break;
    }
    throw methodNotAllowed(`the server does not allow this method on the requested resource`, t.r, t.name);
  }

  private representation(req: IncomingMessage, verb: Verb): Representation {
    const accept = req.headers.accept;
    const rep = negotiate(accept);
    if (!rep) {
      throw new ApiError(406, 'NotAcceptable', `only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io (got ${String(accept)})`);
    }
    if (rep.as !== 'Object' && verb !== 'get' && verb !== 'list' && verb !== 'watch') return { as: 'Object', version: 'v1' };
    return rep;
  }

  private writeParams(req: IncomingMessage, q: URLSearchParams): WriteParams {
    const dryRun = q.getAll('dryRun');
    for (const d of dryRun) if (d !== 'All') throw badRequest(`Invalid dry run value: ${JSON.stringify(d)}; supported values: "All"`);
    const fv = q.get('fieldValidation');
    if (fv !== null && fv !== '' && !['Strict', 'Warn', 'Ignore'].includes(fv)) {
      throw badRequest(`Invalid field validation directive: ${JSON.stringify(fv)}; supported values: "Ignore", "Warn", "Strict"`);
    }
    const fm = q.get('fieldManager') ?? undefined;
    if (fm !== undefined && fm.length > 128) throw badRequest('fieldManager: Too long: may not be more than 128 bytes');
    const ua = String(req.headers['user-agent'] ?? 'unknown');
    return { dryRun: dryRun.length > 0, fieldManager: fm ?? (ua.split('/')[0] || 'unknown'), fieldManagerGiven: fm !== undefined && fm !== '', force: q.get('force') === 'true' };
  }

  // ----------------------------------------------------------------------------------- discovery

  private discovery(segs: string[], req: IncomingMessage): Reply | undefined {
    const host = req.headers.host ?? this.url.replace(/^http:\/\//, '');
    if (segs[0] === 'api' && segs.length === 1) return { code: 200, body: apiVersions(host) };
    if (segs[0] === 'api' && segs.length === 2) {
      const list = apiResourceList('', segs[1]!, this.custom);
      if (!list) throw pageNotFound();
      return { code: 200, body: list };
    }
    if (segs[0] === 'apis' && segs.length === 1) return { code: 200, body: apiGroupList(this.custom) };
    if (segs[0] === 'apis' && segs.length === 2) {
      const g = apiGroup(segs[1]!, this.custom);
      if (!g) throw pageNotFound();
      return { code: 200, body: g };
    }
    if (segs[0] === 'apis' && segs.length === 3) {
      const list = apiResourceList(segs[1]!, segs[2]!, this.custom);
      if (!list) throw pageNotFound();
      return { code: 200, body: list };
    }
    return undefined;
  }

  private openapiDocument(segs: string[]): Reply {
    if (segs[1] === 'v3' && segs.length === 2) return { code: 200, body: this.openapi.index };
    if (segs[1] === 'v3') {
      const doc = this.openapi.documents.get(segs.slice(2).join('/'));
      if (doc) return { code: 200, body: JSON.parse(doc) as JsonObject };
    }
    throw pageNotFound();
  }

  private parseTarget(segs: string[]): Target | undefined {
    let group: string;
    let version: string;
    let rest: string[];
    if (segs[0] === 'api' && segs.length >= 3) {
      group = '';
      version = segs[1]!;
      rest = segs.slice(2);
    } else if (segs[0] === 'apis' && segs.length >= 4) {
      group = segs[1]!;
      version = segs[2]!;
      rest = segs.slice(3);
    } else return undefined;
    let watchPath = false;
    if (rest[0] === 'watch') {
      watchPath = true;
      rest = rest.slice(1);
    }
    let namespace = '';
    if (rest[0] === 'namespaces' && rest.length >= 3 && findByPlural(group, version, rest[2]!, this.custom)?.namespaced) {
      namespace = rest[1]!;
      rest = rest.slice(2);
    }
    const [plural, name = '', sub = '', ...extra] = rest;
    if (extra.length > 0 || plural === undefined) return undefined;
    const r = findByPlural(group, version, plural, this.custom);
    if (!r) return undefined;
    if (r.namespaced !== Boolean(namespace) && (name || namespace)) {
      // /api/v1/pods/x (namespaced resource without a namespace) or a cluster-scoped one under namespaces/.
      if (r.namespaced || namespace) return undefined;
    }
    if (sub && !(r.subresources as string[]).includes(sub)) return undefined;
    return { r, namespace, name, subresource: sub as Target['subresource'], watchPath };
  }

  // --------------------------------------------------------------------------------------- reads

  private render(r: ResourceDescriptor, o: KubeObject, rep: Representation, includeObject: IncludeObject): JsonObject {
    if (rep.as === 'Table') return table(r, [o], { includeObject, version: rep.version, resourceVersion: String(o.metadata.resourceVersion ?? ''), nowMs: Date.now() });
    if (rep.as === 'PartialObjectMetadata') return partialMetadata(o, rep.version);
    return o;
  }

  private includeObject(q: URLSearchParams): IncludeObject {
    const v = q.get('includeObject');
    if (v === 'None' || v === 'Object' || v === 'Metadata') return v;
    return 'Metadata';
  }

  private mustGet(t: Target): KubeObject {
    if (t.r.namespaced && t.r.kind !== 'Namespace' && !this.store.get('Namespace', '', t.namespace) && !this.store.get(t.r.kind, t.namespace, t.name)) {
      throw notFound(t.r, t.name);
    }
    const o = this.store.get(t.r.kind, t.namespace, t.name);
    if (!o) throw notFound(t.r, t.name);
    return withTypeMeta(t.r, o);
  }

  private get(t: Target, rep: Representation, q: URLSearchParams): Reply {
    const o = this.mustGet(t);
    if (t.subresource === 'scale') return { code: 200, body: scaleOf(o) };
    return { code: 200, body: this.render(t.r, o, rep, this.includeObject(q)) };
  }

  private selection(t: Target, q: URLSearchParams): (o: KubeObject) => boolean {
    const labels = parseLabelSelector(q.get('labelSelector'));
    const fields = parseFieldSelector(q.get('fieldSelector'), t.r.kind);
    return (o) => labels(o.metadata.labels ?? {}) && fields(o);
  }

  private list(t: Target, rep: Representation, q: URLSearchParams): Reply {
    const matches = this.selection(t, q);
    const { items: all, resourceVersion } = this.store.list(t.r.kind, t.namespace || undefined);
    let items = all.filter(matches).map((o) => withTypeMeta(t.r, o));
    const token = q.get('continue');
    if (token) {
      const after = decodeContinue(token);
      items = items.filter((o) => objectKey(o) > after);
    }
    const limit = Number(q.get('limit') ?? 0);
    let continueToken: string | undefined;
    let remaining: number | undefined;
    if (Number.isInteger(limit) && limit > 0 && items.length > limit) {
      remaining = items.length - limit;
      items = items.slice(0, limit);
      continueToken = encodeContinue(objectKey(items[items.length - 1]!), resourceVersion);
    }
    if (rep.as === 'Table') {
      return { code: 200, body: table(t.r, items, { includeObject: this.includeObject(q), version: rep.version, resourceVersion, continueToken, remaining, nowMs: Date.now() }) };
    }
    const metadata: JsonObject = { resourceVersion };
    if (continueToken) metadata.continue = continueToken;
    if (remaining) metadata.remainingItemCount = remaining;
    if (rep.as === 'PartialObjectMetadata') {
      return { code: 200, body: { kind: 'PartialObjectMetadataList', apiVersion: `meta.k8s.io/${rep.version}`, metadata, items: items.map((o) => partialMetadata(o, rep.version)) } };
    }
    return { code: 200, body: { kind: `${t.r.kind}List`, apiVersion: apiVersionOf(t.r), metadata, items } };
  }

  private watch(t: Target, rep: Representation, q: URLSearchParams, res: ServerResponse): void {
    let matches = this.selection(t, q);
    if (t.name) {
      const inner = matches;
      matches = (o) => o.metadata.name === t.name && inner(o);
    }
    const timeout = q.get('timeoutSeconds');
    const includeObject = this.includeObject(q);
    let first = true;
    const end = serveWatch(res, {
      store: this.store,
      kind: t.r.kind,
      namespace: t.namespace,
      resourceVersion: q.get('resourceVersion') ?? undefined,
      sendInitialEvents: q.get('sendInitialEvents') === 'true',
      allowBookmarks: q.get('allowWatchBookmarks') === 'true',
      timeoutSeconds: timeout ? Number(timeout) : undefined,
      dropAfterMs: this.faults.dropWatchAfterMs,
      bookmarkIntervalMs: this.options.bookmarkIntervalMs ?? 30_000,
      matches,
      apiVersion: apiVersionOf(t.r),
      render: (o) => {
        const typed = withTypeMeta(t.r, o);
        if (rep.as !== 'Table') return this.render(t.r, typed, rep, includeObject);
        const body = table(t.r, [typed], { includeObject, version: rep.version, resourceVersion: String(o.metadata.resourceVersion ?? ''), nowMs: Date.now(), withColumns: first });
        first = false;
        return body;
      },
    });
    this.watches.add(end);
    res.on('close', () => this.watches.delete(end));
  }

  // -------------------------------------------------------------------------------------- writes

  private now(): string {
    return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  }

  private validator(r: ResourceDescriptor): (o: KubeObject) => void {
    return (o) => {
      const errors = validateObject(r, o);
      if (errors.length > 0) throw invalid(r, o.metadata.name, errors);
    };
  }

  private requireNamespace(t: Target, ns: string): void {
    if (t.r.namespaced && !this.store.get('Namespace', '', ns)) throw namespaceNotFound(ns);
  }

  /** Checks a request body's type and identity against the URL; returns it as a KubeObject. */
  private bodyObject(t: Target, body: JsonValue | undefined, opts: { requireName: boolean }): KubeObject {
    if (!isObject(body)) throw badRequest('the request body must be a JSON or YAML object');
    const expected = apiVersionOf(t.r);
    if (body.apiVersion !== undefined && body.apiVersion !== expected) {
      throw badRequest(`the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${expected})`);
    }
    if (body.kind !== undefined && body.kind !== t.r.kind) {
      throw badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (${t.r.kind})`);
    }
    const o = clone(body) as KubeObject;
    o.apiVersion = expected;
    o.kind = t.r.kind;
    if (!isObject(o.metadata)) o.metadata = { name: '' };
    const meta = o.metadata;
    if (t.r.namespaced) {
      if (meta.namespace && meta.namespace !== t.namespace) {
        throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      }
      meta.namespace = t.namespace;
    } else delete meta.namespace;
    if (t.name) {
      if (meta.name && meta.name !== t.name) throw badRequest(`the name of the object (${String(meta.name)}) does not match the name on the URL (${t.name})`);
      meta.name = t.name;
    }
    if (opts.requireName && (typeof meta.name !== 'string' || meta.name === '')) {
      if (typeof meta.generateName === 'string' && meta.generateName !== '') {
        meta.name = `${meta.generateName}${randomSuffix(this.names)}`;
      } else throw invalid(t.r, '', [{ field: 'metadata.name', type: 'FieldValueRequired', detail: 'name or generateName is required' }]);
    }
    return o;
  }

  /** Server-owned metadata: what a client sends is replaced by what the server has (or nothing on create). */
  private adoptServerMetadata(o: KubeObject, live: KubeObject | undefined): void {
    const m = o.metadata;
    for (const k of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'selfLink']) {
      if (live && live.metadata[k] !== undefined) m[k] = live.metadata[k];
      else delete m[k];
    }
  }

  private create(t: Target, body: JsonValue | undefined, p: WriteParams): Reply {
    if (t.name) throw methodNotAllowed('the server does not allow this method on the requested resource', t.r, t.name);
    const o = this.bodyObject(t, body, { requireName: true });
    if (o.metadata.resourceVersion !== undefined && o.metadata.resourceVersion !== '') {
      throw badRequest('resourceVersion should not be set on objects to be created');
    }
    return this.createObject(t, o, p, undefined);
  }

  private createObject(t: Target, o: KubeObject, p: WriteParams, managedFields: JsonValue[] | undefined): Reply {
    this.requireNamespace(t, o.metadata.namespace ?? '');
    this.adoptServerMetadata(o, undefined);
    delete o.metadata.resourceVersion;
    const status = initialStatus(o);
    if (t.r.subresources.includes('status')) {
      if (status) o.status = status;
      else delete o.status;
    }
    applyDefaults(o, () => this.ips.allocate());
    o.metadata.managedFields = managedFields ?? managedFieldsAfterUpdate(undefined, o, { kind: t.r.kind, manager: p.fieldManager, apiVersion: o.apiVersion, now: this.now() });
    const created = this.store.create(t.r.kind, o, { dryRun: p.dryRun, validate: this.validator(t.r) });
    return { code: 201, body: withTypeMeta(t.r, created) };
  }

  private update(t: Target, body: JsonValue | undefined, p: WriteParams): Reply {
    const live = this.mustGet(t);
    if (t.subresource === 'scale') return this.writeScale(t, live, body, p);
    const o = this.bodyObject(t, body, { requireName: false });
    if (o.metadata.uid !== undefined && o.metadata.uid !== live.metadata.uid) {
      throw new ApiError(409, 'Conflict', `Precondition failed: UID in precondition: ${String(o.metadata.uid)}, UID in object meta: ${String(live.metadata.uid)}`, { name: t.name, kind: t.r.plural });
    }
    const rv = typeof o.metadata.resourceVersion === 'string' && o.metadata.resourceVersion !== '' ? o.metadata.resourceVersion : undefined;
    return this.storeUpdate(t, live, o, p, rv);
  }

  /** The common tail of PUT and PATCH: defaults, managedFields, validation + admission, store. */
  private storeUpdate(t: Target, live: KubeObject, o: KubeObject, p: WriteParams, expectedResourceVersion: string | undefined): Reply {
    this.adoptServerMetadata(o, live);
    const status = t.subresource === 'status';
    if (!status) applyDefaults(o, () => this.ips.allocate());
    o.metadata.managedFields = managedFieldsAfterUpdate(live, o, {
      kind: t.r.kind,
      manager: p.fieldManager,
      apiVersion: o.apiVersion,
      subresource: status ? 'status' : undefined,
      now: this.now(),
    });
    const updated = this.store.update(t.r.kind, o, {
      expectedResourceVersion,
      dryRun: p.dryRun,
      subresource: status ? 'status' : undefined,
      validate: this.validator(t.r),
    });
    return { code: 200, body: withTypeMeta(t.r, updated) };
  }

  private patchType(req: IncomingMessage, t: Target): PatchType {
    const ct = String(req.headers['content-type'] ?? '').split(';')[0]!.trim();
    if (!(PATCH_TYPES as readonly string[]).includes(ct)) {
      throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: ${PATCH_TYPES.join(', ')}`);
    }
    if (ct === 'application/strategic-merge-patch+json' && t.r.custom) {
      throw new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`);
    }
    return ct as PatchType;
  }

  private patch(t: Target, req: IncomingMessage, raw: JsonValue | undefined, p: WriteParams): Reply {
    const type = this.patchType(req, t);
    if (raw === undefined) throw badRequest('the PATCH request has no body');
    if (type === 'application/apply-patch+yaml') return this.apply(t, raw, p);
    const live = this.mustGet(t);
    if (t.subresource === 'scale') {
      const patched = applyPatch(type, scaleOf(live), raw, 'Scale');
      return this.writeScale(t, live, patched, p);
    }
    const patched = applyPatch(type, live, raw, t.r.kind) as KubeObject;
    if (!isObject(patched.metadata)) throw badRequest('the patch removed metadata');
    if (patched.metadata.name !== live.metadata.name) throw badRequest(`the name of the object (${String(patched.metadata.name)}) does not match the name on the URL (${t.name})`);
    const o = this.bodyObject(t, patched, { requireName: false });
    const rv = o.metadata.resourceVersion !== live.metadata.resourceVersion ? String(o.metadata.resourceVersion) : undefined;
    return this.storeUpdate(t, live, o, p, rv);
  }

  /** Server-side apply (application/apply-patch+yaml): create when absent, else merge with field ownership. */
  private apply(t: Target, raw: JsonValue, p: WriteParams): Reply {
    if (!p.fieldManagerGiven) throw badRequest('fieldManager is required for apply requests');
    if (!isObject(raw) || typeof raw.apiVersion !== 'string' || typeof raw.kind !== 'string') {
      throw badRequest('apply patches must be a complete object with apiVersion and kind');
    }
    if (t.subresource === 'scale') throw new ApiError(415, 'UnsupportedMediaType', 'apply is not supported on the scale subresource of the lab API server; use a merge patch');
    const applied = this.bodyObject(t, raw, { requireName: false });
    const stored = this.store.get(t.r.kind, t.namespace, t.name);
    const live = stored ? withTypeMeta(t.r, stored) : undefined;
    if (t.subresource === 'status') {
      if (!live) throw notFound(t.r, t.name);
      const o = clone(live);
      o.status = mergePatch(live.status, applied.status ?? {});
      return this.storeUpdate(t, live, o, { ...p }, undefined);
    }
    const expectedResourceVersion = typeof applied.metadata.resourceVersion === 'string' && applied.metadata.resourceVersion !== '' ? applied.metadata.resourceVersion : undefined;
    delete applied.metadata.resourceVersion;
    const merged = serverSideApply(live, applied, { kind: t.r.kind, manager: p.fieldManager, force: p.force, now: this.now() });
    if (!live) {
      if (expectedResourceVersion) throw notFound(t.r, t.name);
      const managedFields = merged.metadata.managedFields as JsonValue[];
      delete merged.status;
      return this.createObject(t, merged, p, managedFields);
    }
    this.adoptServerMetadata(merged, live);
    merged.metadata.resourceVersion = live.metadata.resourceVersion;
    applyDefaults(merged, () => this.ips.allocate());
    const updated = this.store.update(t.r.kind, merged, { expectedResourceVersion, dryRun: p.dryRun, validate: this.validator(t.r) });
    return { code: 200, body: withTypeMeta(t.r, updated) };
  }

  private delete(t: Target, raw: JsonValue | undefined, q: URLSearchParams): Reply {
    const live = this.mustGet(t);
    const opts = deleteOptions(raw, q);
    if (opts.dryRun) {
      const preview = clone(live);
      if (t.r.kind === 'Pod' || (live.metadata.finalizers as JsonValue[] | undefined)?.length) preview.metadata.deletionTimestamp = this.now();
      return { code: 200, body: preview };
    }
    const result = this.store.delete(t.r.kind, t.namespace, t.name, opts.options);
    if (!result.removed) return { code: 202, body: withTypeMeta(t.r, result.object) };
    if (t.r.kind === 'Pod') return { code: 200, body: withTypeMeta(t.r, result.object) };
    const details: JsonObject = { name: t.name, kind: t.r.plural, uid: String(live.metadata.uid ?? '') };
    if (t.r.group) details.group = t.r.group;
    return { code: 200, body: successStatus(details) };
  }

  private deleteCollection(t: Target, raw: JsonValue | undefined, q: URLSearchParams): Reply {
    const matches = this.selection(t, q);
    const opts = deleteOptions(raw, q);
    const items: KubeObject[] = [];
    for (const o of this.store.list(t.r.kind, t.namespace || undefined).items) {
      if (!matches(o)) continue;
      if (opts.dryRun) {
        items.push(o);
        continue;
      }
      try {
        items.push(this.store.delete(t.r.kind, o.metadata.namespace ?? '', o.metadata.name, opts.options).object);
      } catch {
        // gone meanwhile (e.g. collected as a dependent of an earlier item)
      }
    }
    return { code: 200, body: { kind: `${t.r.kind}List`, apiVersion: apiVersionOf(t.r), metadata: { resourceVersion: this.store.resourceVersion }, items: items.map((o) => withTypeMeta(t.r, o)) } };
  }

  private writeScale(t: Target, live: KubeObject, body: JsonValue | undefined, p: WriteParams): Reply {
    if (!isObject(body) || !isObject(body.spec)) throw badRequest('a Scale object with spec.replicas is required');
    const replicas = body.spec.replicas;
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
      throw invalid(t.r, t.name, [{ field: 'spec.replicas', type: 'FieldValueInvalid', value: replicas, detail: 'must be greater than or equal to 0' }]);
    }
    const meta = isObject(body.metadata) ? body.metadata : {};
    const rv = typeof meta.resourceVersion === 'string' && meta.resourceVersion !== live.metadata.resourceVersion ? meta.resourceVersion : undefined;
    const o = clone(live);
    o.spec = { ...(isObject(o.spec) ? o.spec : {}), replicas };
    this.adoptServerMetadata(o, live);
    o.metadata.managedFields = managedFieldsAfterUpdate(live, o, { kind: t.r.kind, manager: p.fieldManager, apiVersion: o.apiVersion, subresource: 'scale', now: this.now() });
    const updated = this.store.update(t.r.kind, o, { expectedResourceVersion: rv, dryRun: p.dryRun });
    return { code: 200, body: scaleOf(updated) };
  }
}

// ---------------------------------------------------------------------------------------------- helpers

function send(res: ServerResponse, code: number, body: JsonValue): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-cache, private' });
  res.end(text);
}

function pageNotFound(): ApiError {
  return new ApiError(404, 'NotFound', 'the server could not find the requested resource', {
    causes: [{ reason: 'UnexpectedServerResponse', message: '404 page not found' }],
  });
}

async function readBody(req: IncomingMessage): Promise<JsonValue | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new ApiError(413, 'RequestEntityTooLarge', `the request body is larger than ${MAX_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  const raw = Buffer.concat(chunks);
  const ct = String(req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim();
  if (ct === 'application/vnd.kubernetes.protobuf') return raw.length ? decodeProtobufObject(raw) : undefined;
  const text = raw.toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as JsonValue;
  } catch (jsonErr) {
    if (ct === 'application/apply-patch+yaml' || ct === 'application/yaml' || ct === 'application/merge-patch+json' || ct === 'application/strategic-merge-patch+json') {
      try {
        return parseYaml(text) as JsonValue;
      } catch (yamlErr) {
        throw badRequest(`error decoding YAML: ${(yamlErr as Error).message}`);
      }
    }
    throw badRequest(`couldn't get version/kind; json parse error: ${(jsonErr as Error).message}`);
  }
}

function applyPatch(type: PatchType, current: JsonObject, patch: JsonValue, kind: string): JsonObject {
  switch (type) {
    case 'application/json-patch+json':
      return jsonPatch(current, patch);
    case 'application/merge-patch+json': {
      const out = mergePatch(current, patch);
      if (!isObject(out)) throw badRequest('merge patch: the patch must be a JSON object');
      return out;
    }
    case 'application/strategic-merge-patch+json':
      return strategicMergePatch(current, patch, kind);
    default:
      throw badRequest(`unsupported patch type ${type}`);
  }
}

function withTypeMeta(r: ResourceDescriptor, o: KubeObject): KubeObject {
  return { ...o, apiVersion: apiVersionOf(r), kind: r.kind };
}

function scaleOf(o: KubeObject): JsonObject {
  const spec = isObject(o.spec) ? o.spec : {};
  const status = isObject(o.status) ? o.status : {};
  const selector = labelSelectorObject(spec.selector) ? selectorText(spec.selector) : '';
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: {
      name: o.metadata.name,
      namespace: o.metadata.namespace,
      uid: o.metadata.uid,
      resourceVersion: o.metadata.resourceVersion,
      creationTimestamp: o.metadata.creationTimestamp,
    },
    spec: { replicas: typeof spec.replicas === 'number' ? spec.replicas : 0 },
    status: { replicas: typeof status.replicas === 'number' ? status.replicas : 0, selector },
  };
}

function selectorText(sel: JsonValue | undefined): string {
  if (!isObject(sel)) return '';
  const parts: string[] = [];
  if (isObject(sel.matchLabels)) for (const [k, v] of Object.entries(sel.matchLabels)) parts.push(`${k}=${String(v)}`);
  if (Array.isArray(sel.matchExpressions)) {
    for (const e of sel.matchExpressions) {
      if (!isObject(e)) continue;
      const values = Array.isArray(e.values) ? e.values.join(',') : '';
      if (e.operator === 'In') parts.push(`${String(e.key)} in (${values})`);
      else if (e.operator === 'NotIn') parts.push(`${String(e.key)} notin (${values})`);
      else if (e.operator === 'Exists') parts.push(String(e.key));
      else if (e.operator === 'DoesNotExist') parts.push(`!${String(e.key)}`);
    }
  }
  return parts.join(',');
}

function objectKey(o: KubeObject): string {
  return `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
}

function encodeContinue(after: string, rv: string): string {
  return Buffer.from(JSON.stringify({ v: 'lab/1', rv, after })).toString('base64url');
}

function decodeContinue(token: string): string {
  try {
    const t = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { v?: string; after?: string };
    if (t.v !== 'lab/1' || typeof t.after !== 'string') throw new Error('bad token');
    return t.after;
  } catch {
    throw badRequest(`continue key is not valid: ${token}`);
  }
}

const SUFFIX_CHARS = 'bcdfghjklmnpqrstvwxz2456789';
function randomSuffix(random: LabRandom): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += SUFFIX_CHARS[random.int(SUFFIX_CHARS.length)];
  return s;
}

function deleteOptions(raw: JsonValue | undefined, q: URLSearchParams): { options: DeleteOptions; dryRun: boolean } {
  const body = isObject(raw) ? raw : {};
  if (raw !== undefined && !isObject(raw)) throw badRequest('DeleteOptions must be a JSON object');
  const options: DeleteOptions = {};
  const grace = body.gracePeriodSeconds ?? (q.get('gracePeriodSeconds') !== null ? Number(q.get('gracePeriodSeconds')) : undefined);
  if (grace !== undefined && grace !== null) {
    if (typeof grace !== 'number' || Number.isNaN(grace)) throw badRequest(`invalid gracePeriodSeconds: ${String(grace)}`);
    options.gracePeriodSeconds = Math.max(0, grace);
  }
  const policy = body.propagationPolicy ?? q.get('propagationPolicy') ?? undefined;
  if (policy !== undefined && policy !== null) {
    if (policy !== 'Background' && policy !== 'Foreground' && policy !== 'Orphan') {
      throw badRequest(`propagationPolicy: Unsupported value: ${JSON.stringify(policy)}: supported values: "Foreground", "Background", "Orphan"`);
    }
    options.propagationPolicy = policy;
  }
  if (body.orphanDependents === true) options.propagationPolicy = 'Orphan';
  if (isObject(body.preconditions)) {
    const pre = body.preconditions;
    options.preconditions = {};
    if (typeof pre.uid === 'string') options.preconditions.uid = pre.uid;
    if (typeof pre.resourceVersion === 'string') options.preconditions.resourceVersion = pre.resourceVersion;
  }
  const dryRun = (Array.isArray(body.dryRun) && body.dryRun.includes('All')) || q.getAll('dryRun').includes('All');
  return { options, dryRun };
}

