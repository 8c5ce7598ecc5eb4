/**
 * `ClusterAccess` over a real API server: one list+watch cache per kind (reads are synchronous, from the cache),
 * writes over HTTPS in the background. A `mutate` keeps its change function and re-applies it to the latest object
 * when the server answers 409 Conflict, so concurrent writers (the kubelet, the controller manager, the CLI under
 * test) never lose each other's fields. Writes to one object are serialised in call order.
 */
import { EventEmitter } from 'node:events';
import { Agent, request, type RequestOptions } from 'node:https';
import type { JsonObject, KubeObject } from '../../manifests/types.js';
import { apiVersionOf, findByKind, gvPath, type ResourceDescriptor } from '../apiserver/resources.js';

type Resource = Pick<ResourceDescriptor, 'group' | 'version' | 'plural' | 'kind' | 'namespaced'>;

/** Kinds a real cluster serves that the embedded API server does not. */
const EXTRA_RESOURCES: Resource[] = [{ group: '', version: 'v1', plural: 'nodes', kind: 'Node', namespaced: false }];
import type { ClusterAccess } from '../cluster.js';
import { StoreError, clone, type AdmissionHook, type DeleteOptions, type ListResult, type StoreEvent, type WatchEventType } from '../store.js';

export interface RealClusterOptions {
  url: string;
  /** PEM of the CA that signed the API server's certificate. */
  ca: string;
  token: string;
  /** The kinds to cache (every kind the lab's parts read). */
  kinds: string[];
  log: (line: string) => void;
}

export interface HttpAnswer {
  status: number;
  body: string;
}

const MAX_CONFLICT_RETRIES = 8;
const WATCH_TIMEOUT_SECONDS = 240;
const MAX_TOMBSTONES = 10_000;

interface KindCache {
  resource: Resource;
  objects: Map<string, KubeObject>;
  /** Deleted keys and the resourceVersion of their deletion: a write's response read after the watch's DELETED must not bring the object back. */
  tombstones: Map<string, number>;
  resourceVersion: string;
}

export class RealCluster implements ClusterAccess {
  private readonly caches = new Map<string, KindCache>();
  private readonly emitter = new EventEmitter();
  private readonly hooks = new Map<string, AdmissionHook[]>();
  private readonly agent: Agent;
  private readonly watchAgent: Agent;
  private readonly chains = new Map<string, Promise<void>>();
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly aborts = new Set<() => void>();
  private stopped = false;

  constructor(private readonly options: RealClusterOptions) {
    this.emitter.setMaxListeners(0);
    this.agent = new Agent({ keepAlive: true, maxSockets: 32, ca: options.ca });
    this.watchAgent = new Agent({ keepAlive: false, ca: options.ca });
  }

  /** Lists every kind and starts its watch; resolves when every cache holds a full list. */
  async start(): Promise<void> {
    for (const kind of this.options.kinds) {
      const resource: Resource | undefined = findByKind(kind) ?? EXTRA_RESOURCES.find((r) => r.kind === kind);
      if (!resource) throw new Error(`RealCluster: no resource descriptor for kind ${kind}`);
      this.caches.set(kind, { resource, objects: new Map(), tombstones: new Map(), resourceVersion: '' });
    }
    // A freshly established CRD answers 429 ("storage is (re)initializing") for a moment: retry within a deadline.
    const deadline = Date.now() + 30_000;
    await Promise.all(
      [...this.caches.values()].map(async (c) => {
        for (;;) {
          try {
            return await this.relist(c);
          } catch (err) {
            if (Date.now() > deadline || !(err instanceof RetryableListError)) throw err;
            await new Promise((r) => setTimeout(r, 200));
          }
        }
      }),
    );
    for (const c of this.caches.values()) void this.watchLoop(c);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const abort of this.aborts) abort();
    this.aborts.clear();
    await Promise.allSettled([...this.inflight]);
    this.agent.destroy();
    this.watchAgent.destroy();
    this.emitter.removeAllListeners();
  }

  /** Resolves when every background write issued so far has finished (tests and shutdown). */
  async settled(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  // ------------------------------------------------------------------------------------------------
  // reads

  get(kind: string, namespace: string, name: string): KubeObject | undefined {
    const o = this.cache(kind).objects.get(key(namespace, name));
    return o ? clone(o) : undefined;
  }

  mustGet(kind: string, namespace: string, name: string): KubeObject {
    const o = this.get(kind, namespace, name);
    if (!o) throw new StoreError(404, 'NotFound', `${kind.toLowerCase()}s "${name}" not found`);
    return o;
  }

  list(kind: string, namespace?: string): ListResult {
    const c = this.cache(kind);
    const items: KubeObject[] = [];
    for (const o of c.objects.values()) if (!namespace || (o.metadata.namespace ?? '') === namespace) items.push(clone(o));
    items.sort((a, b) => key(a.metadata.namespace ?? '', a.metadata.name).localeCompare(key(b.metadata.namespace ?? '', b.metadata.name)));
    return { items, resourceVersion: c.resourceVersion };
  }

  /** Cache events; `sinceResourceVersion` is ignored (callers list the cache first, as informers do). */
  watch(kind: string, namespace: string | undefined, _since: string | undefined, handler: (e: StoreEvent) => void): () => void {
    if (kind !== '*') this.cache(kind);
    const listener = (e: StoreEvent): void => {
      if ((kind === '*' || e.kind === kind) && (!namespace || (e.object.metadata.namespace ?? '') === namespace)) handler({ ...e, object: clone(e.object) });
    };
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }

  // ------------------------------------------------------------------------------------------------
  // writes (background; errors are logged)

  create(kind: string, object: KubeObject): KubeObject {
    const ns = object.metadata.namespace ?? '';
    if (this.cache(kind).objects.has(key(ns, object.metadata.name))) {
      throw new StoreError(409, 'AlreadyExists', `${kind.toLowerCase()}s "${object.metadata.name}" already exists`);
    }
    const body = this.withType(kind, clone(object));
    this.background(kind, ns, object.metadata.name, async () => {
      const r = await this.request('POST', this.collectionPath(kind, ns), body);
      if (r.status === 409) return; // created meanwhile by someone else: the watch shows it
      this.check(r, `create ${kind} ${ns}/${object.metadata.name}`);
    });
    return clone(object);
  }

  update(kind: string, object: KubeObject, opts: { expectedResourceVersion?: string; subresource?: 'status' } = {}): KubeObject {
    const ns = object.metadata.namespace ?? '';
    const body = this.withType(kind, clone(object));
    if (opts.expectedResourceVersion) body.metadata.resourceVersion = opts.expectedResourceVersion;
    this.background(kind, ns, object.metadata.name, async () => {
      const r = await this.request('PUT', this.objectPath(kind, ns, object.metadata.name, opts.subresource), body);
      this.check(r, `update ${kind} ${ns}/${object.metadata.name}`);
    });
    return clone(object);
  }

  mutate(kind: string, namespace: string, name: string, change: (o: KubeObject) => void, subresource?: 'status'): KubeObject | undefined {
    const current = this.get(kind, namespace, name);
    if (!current) return undefined;
    const before = JSON.stringify(current);
    change(current);
    if (JSON.stringify(current) === before) return current;
    this.background(kind, namespace, name, async () => {
      let base: KubeObject | undefined = this.get(kind, namespace, name);
      for (let attempt = 0; attempt < MAX_CONFLICT_RETRIES && base && !this.stopped; attempt++) {
        const next = this.withType(kind, clone(base));
        change(next);
        if (JSON.stringify(next) === JSON.stringify(base)) return;
        const r = await this.request('PUT', this.objectPath(kind, namespace, name, subresource), next);
        if (r.status === 200 || r.status === 201) {
          const written = JSON.parse(r.body) as KubeObject;
          this.observe(kind, goneAfterWrite(written) ? 'DELETED' : 'MODIFIED', written);
          return;
        }
        if (r.status === 404) return;
        if (r.status !== 409) return this.check(r, `update ${kind} ${namespace}/${name}${subresource ? '/status' : ''}`);
        const fresh = await this.request('GET', this.objectPath(kind, namespace, name));
        if (fresh.status !== 200) return;
        base = this.withType(kind, JSON.parse(fresh.body) as KubeObject);
      }
    });
    return current;
  }

  delete(kind: string, namespace: string, name: string, opts: DeleteOptions = {}): { object: KubeObject; removed: boolean } {
    const current = this.mustGet(kind, namespace, name);
    const body: JsonObject = { apiVersion: 'v1', kind: 'DeleteOptions' };
    if (opts.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = opts.gracePeriodSeconds;
    if (opts.propagationPolicy) body.propagationPolicy = opts.propagationPolicy;
    if (opts.preconditions) body.preconditions = { ...opts.preconditions };
    this.background(kind, namespace, name, async () => {
      const r = await this.request('DELETE', this.objectPath(kind, namespace, name), body);
      if (r.status === 404 || r.status === 409) return;
      this.check(r, `delete ${kind} ${namespace}/${name}`);
    });
    return { object: current, removed: false };
  }

  removeNow(kind: string, namespace: string, name: string): KubeObject {
    const current = this.mustGet(kind, namespace, name);
    this.delete(kind, namespace, name, { gracePeriodSeconds: 0, preconditions: { uid: String(current.metadata.uid) } });
    return current;
  }

  addAdmissionHook(kind: string, hook: AdmissionHook): void {
    const list = this.hooks.get(kind) ?? [];
    list.push(hook);
    this.hooks.set(kind, list);
  }

  /** The admission hooks of a kind, for the lab's HTTPS webhook. */
  admissionHooks(kind: string): readonly AdmissionHook[] {
    return this.hooks.get(kind) ?? [];
  }

  // ------------------------------------------------------------------------------------------------
  // HTTP

  /** One request to the API server with the lab's credentials (JSON in and out). */
  request(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<HttpAnswer> {
    const url = new URL(path, this.options.url);
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const opts: RequestOptions = {
      method,
      host: url.hostname,
      port: url.port,
      path: `${url.pathname}${url.search}`,
      agent: this.agent,
      headers: {
        authorization: `Bearer ${this.options.token}`,
        accept: 'application/json',
        ...(payload !== undefined ? { 'content-type': contentType, 'content-length': Buffer.byteLength(payload) } : {}),
      },
      timeout: 30_000,
    };
    return new Promise((resolve, reject) => {
      const req = request(opts, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 30s`)));
      req.on('error', reject);
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  private background(kind: string, namespace: string, name: string, work: () => Promise<void>): void {
    if (this.stopped) return;
    const k = `${kind}/${key(namespace, name)}`;
    const prev = this.chains.get(k) ?? Promise.resolve();
    const next = prev
      .then(() => (this.stopped ? undefined : work()))
      .catch((err: unknown) => {
        if (!this.stopped) this.options.log(`real cluster: ${(err as Error).message}`);
      });
    this.chains.set(k, next);
    this.inflight.add(next);
    void next.finally(() => {
      this.inflight.delete(next);
      if (this.chains.get(k) === next) this.chains.delete(k);
    });
  }

  private check(r: HttpAnswer, what: string): void {
    if (r.status >= 200 && r.status < 300) return;
    let message = r.body;
    try {
      message = String((JSON.parse(r.body) as JsonObject).message ?? r.body);
    } catch {
      // not JSON
    }
    this.options.log(`real cluster: ${what} answered ${r.status}: ${message}`);
  }

  private cache(kind: string): KindCache {
    const c = this.caches.get(kind);
    if (!c) throw new Error(`RealCluster: kind ${kind} is not cached (add it to the kinds option)`);
    return c;
  }

  private withType(kind: string, o: KubeObject): KubeObject {
    const r = this.cache(kind).resource;
    o.apiVersion = apiVersionOf(r);
    o.kind = r.kind;
    return o;
  }

  private collectionPath(kind: string, namespace: string): string {
    const r = this.cache(kind).resource;
    return `${gvPath(r.group, r.version)}${r.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''}/${r.plural}`;
  }

  private objectPath(kind: string, namespace: string, name: string, subresource?: string): string {
    return `${this.collectionPath(kind, namespace)}/${encodeURIComponent(name)}${subresource ? `/${subresource}` : ''}`;
  }

  // ------------------------------------------------------------------------------------------------
  // list + watch

  /** Applies an object the server returned, unless the cache already holds a newer one. */
  private observe(kind: string, type: WatchEventType, object: KubeObject): void {
    const c = this.caches.get(kind);
    if (!c) return;
    const o = this.withType(kind, object);
    const k = key(o.metadata.namespace ?? '', o.metadata.name);
    const rv = Number(o.metadata.resourceVersion ?? 0);
    const have = c.objects.get(k);
    if (type === 'DELETED') {
      c.tombstones.set(k, Math.max(rv, c.tombstones.get(k) ?? 0));
      if (c.tombstones.size > MAX_TOMBSTONES) c.tombstones.delete(c.tombstones.keys().next().value as string);
      if (!have) return;
      c.objects.delete(k);
    } else {
      if (have && Number(have.metadata.resourceVersion ?? 0) >= rv) return;
      if (!have && (c.tombstones.get(k) ?? -1) >= rv) return;
      c.objects.set(k, o);
      if (!have) type = 'ADDED';
    }
    this.emitter.emit('event', { type, kind, object: o, resourceVersion: rv } satisfies StoreEvent);
  }

  private async relist(c: KindCache): Promise<void> {
    const r = await this.request('GET', this.collectionPath(c.resource.kind, ''));
    if (r.status !== 200) {
      const message = `listing ${c.resource.plural} answered ${r.status}: ${r.body.slice(0, 300)}`;
      throw r.status === 429 || r.status === 503 ? new RetryableListError(message) : new Error(message);
    }
    const list = JSON.parse(r.body) as { metadata?: { resourceVersion?: string }; items?: KubeObject[] };
    const seen = new Set<string>();
    for (const item of list.items ?? []) {
      const o = this.withType(c.resource.kind, item);
      const k = key(o.metadata.namespace ?? '', o.metadata.name);
      seen.add(k);
      const have = c.objects.get(k);
      if (have && have.metadata.resourceVersion === o.metadata.resourceVersion) continue;
      this.observe(c.resource.kind, have ? 'MODIFIED' : 'ADDED', o);
    }
    for (const [k, o] of [...c.objects]) if (!seen.has(k)) this.observe(c.resource.kind, 'DELETED', o);
    c.resourceVersion = list.metadata?.resourceVersion ?? c.resourceVersion;
  }

  private async watchLoop(c: KindCache): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        const gone = await this.watchOnce(c);
        failures = 0;
        if (gone) await this.relist(c);
      } catch (err) {
        if (this.stopped) return;
        failures++;
        if (failures === 3) this.options.log(`real cluster: watch of ${c.resource.plural} keeps failing: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, Math.min(2000, 100 * failures)).unref());
        try {
          await this.relist(c);
        } catch {
          // retried by the loop
        }
      }
    }
  }

  /** One watch request; resolves true when the server says the version is gone (410: relist). */
  private watchOnce(c: KindCache): Promise<boolean> {
    const path = `${this.collectionPath(c.resource.kind, '')}?watch=1&allowWatchBookmarks=true&timeoutSeconds=${WATCH_TIMEOUT_SECONDS}&resourceVersion=${encodeURIComponent(c.resourceVersion)}`;
    const url = new URL(path, this.options.url);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          method: 'GET',
          host: url.hostname,
          port: url.port,
          path: `${url.pathname}${url.search}`,
          agent: this.watchAgent,
          headers: { authorization: `Bearer ${this.options.token}`, accept: 'application/json' },
        },
        (res) => {
          if (res.statusCode === 410) {
            res.resume();
            resolve(true);
            return;
          }
          if (res.statusCode !== 200) {
            res.resume();
            reject(new Error(`watch ${c.resource.plural} answered ${res.statusCode}`));
            return;
          }
          let buf = '';
          let gone = false;
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            buf += chunk;
            let nl: number;
            while ((nl = buf.indexOf('\n')) >= 0) {
              const line = buf.slice(0, nl).trim();
              buf = buf.slice(nl + 1);
              if (!line) continue;
              const e = JSON.parse(line) as { type: string; object: KubeObject & { code?: number } };
              if (e.type === 'ERROR') {
                if (e.object.code === 410) gone = true;
                continue;
              }
              const rv = e.object.metadata?.resourceVersion;
              if (typeof rv === 'string' && rv) c.resourceVersion = rv;
              if (e.type === 'BOOKMARK') continue;
              this.observe(c.resource.kind, e.type as WatchEventType, e.object);
            }
          });
          res.on('end', () => resolve(gone));
          res.on('error', reject);
        },
      );
      const abort = (): void => {
        req.destroy();
      };
      this.aborts.add(abort);
      req.on('close', () => this.aborts.delete(abort));
      req.on('error', (err) => (this.stopped ? resolve(false) : reject(err)));
      req.end();
    });
  }
}

class RetryableListError extends Error {}

/**
 * A write that removed the last finalizer of an object being deleted with no grace period left: the server deleted
 * it and answered with its last state. (A terminating pod has a grace period and stays until the kubelet deletes it.)
 */
function goneAfterWrite(o: KubeObject): boolean {
  const m = o.metadata;
  return Boolean(m.deletionTimestamp) && !(Array.isArray(m.finalizers) && m.finalizers.length > 0) && Number(m.deletionGracePeriodSeconds ?? 0) === 0;
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}
