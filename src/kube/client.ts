import { KubeConfig, Watch } from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { delimiter as pathDelimiter, join } from 'node:path';
import { InputError, UnreachableError } from '../errors.js';
import type { JsonObject, KubeObject } from '../manifests/types.js';

/**
 * The Kubernetes edge: @kubernetes/client-node for configuration, authentication and watches, with raw JSON
 * request bodies (never the typed model, which drops fields it does not know). Every call is counted.
 */

export const FIELD_MANAGER = 'alb-rollout';

export interface KubeConnection {
  /** --kubeconfig; else KUBECONFIG, ~/.kube/config, or in-cluster service account. */
  kubeconfigPath?: string;
  context?: string;
  /** Per-request timeout (watches are long-lived and excluded). */
  requestTimeoutMs?: number;
}

export class KubeApiError extends Error {
  /** From a Retry-After header (429/503). */
  readonly retryAfterSeconds: number | undefined;
  constructor(
    readonly code: number,
    readonly status: JsonObject | undefined,
    message: string,
    extra: { retryAfterSeconds?: number } = {},
  ) {
    super(message);
    this.name = 'KubeApiError';
    this.retryAfterSeconds = extra.retryAfterSeconds;
  }
  get reason(): string {
    return typeof this.status?.reason === 'string' ? this.status.reason : '';
  }
}

export interface ResourceInfo {
  apiVersion: string;
  kind: string;
  plural: string;
  namespaced: boolean;
}

export interface ListResult {
  items: KubeObject[];
  resourceVersion: string;
}

export type WatchEvent = { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK'; object: KubeObject } | { type: 'ERROR'; status: JsonObject };

/** Where each loaded KubeConfig came from, for messages ("kubeconfig /path, context x"). */
const kubeconfigSources = new WeakMap<KubeConfig, string>();

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** Where kubectl would read its configuration from, in kubectl's order. */
export type KubeconfigSource =
  | { kind: 'flag'; files: [string] }
  | { kind: 'env'; files: string[] }
  | { kind: 'home'; files: [string] }
  | { kind: 'in-cluster'; root: string }
  | { kind: 'none'; tried: string[] };

/**
 * kubectl's order: --kubeconfig; else KUBECONFIG (a list, merged; files that do not exist are skipped); else
 * ~/.kube/config when it exists; else the in-cluster service account. Pure: file existence is asked of `exists`.
 */
export function kubeconfigSource(conn: Pick<KubeConnection, 'kubeconfigPath'>, env: Record<string, string | undefined>, exists: (path: string) => boolean, delimiter = pathDelimiter): KubeconfigSource {
  if (conn.kubeconfigPath) return { kind: 'flag', files: [conn.kubeconfigPath] };
  const listed = (env.KUBECONFIG ?? '').split(delimiter).filter((f) => f !== '');
  if (listed.length > 0) {
    // Like kubectl: a KUBECONFIG list replaces the default; its missing files are skipped.
    const present = listed.filter(exists);
    return present.length > 0 ? { kind: 'env', files: present } : { kind: 'none', tried: listed.map((f) => `${f} (KUBECONFIG)`) };
  }
  const home = env.HOME ?? env.USERPROFILE;
  const homeConfig = home ? join(home, '.kube', 'config') : undefined;
  if (homeConfig && exists(homeConfig)) return { kind: 'home', files: [homeConfig] };
  // ALB_ROLLOUT_IN_CLUSTER_ROOT: a directory the service-account files are under instead of / (the lab's kubelet
  // sets it for the pods it runs as processes; a real pod has them at the real path).
  const root = env.ALB_ROLLOUT_IN_CLUSTER_ROOT ?? '';
  if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT && exists(`${root}${SERVICE_ACCOUNT_TOKEN}`)) return { kind: 'in-cluster', root };
  return { kind: 'none', tried: [...(homeConfig ? [homeConfig] : []), 'the in-cluster service account (KUBERNETES_SERVICE_HOST)'] };
}

function describeSource(src: KubeconfigSource): string {
  switch (src.kind) {
    case 'flag':
      return `kubeconfig ${src.files[0]} (--kubeconfig)`;
    case 'env':
      return src.files.length === 1 ? `kubeconfig ${src.files[0] as string} (KUBECONFIG)` : `kubeconfig ${src.files.join(', ')} (KUBECONFIG, merged)`;
    case 'home':
      return `kubeconfig ${src.files[0]} (default)`;
    case 'in-cluster':
      return 'the in-cluster service account';
    case 'none':
      return 'no kubeconfig';
  }
}

/** kubectl's merge of a KUBECONFIG list: the first file to name a cluster, user or context (or the current context) wins. */
function loadMerged(kc: KubeConfig, files: string[]): void {
  const parts = files.map((f) => {
    const one = new KubeConfig();
    one.loadFromFile(f);
    return one;
  });
  const firstByName = <T extends { name: string }>(lists: T[][]): T[] => {
    const seen = new Map<string, T>();
    for (const list of lists) for (const item of list) if (!seen.has(item.name)) seen.set(item.name, item);
    return [...seen.values()];
  };
  kc.loadFromOptions({
    clusters: firstByName(parts.map((p) => p.clusters)),
    users: firstByName(parts.map((p) => p.users)),
    contexts: firstByName(parts.map((p) => p.contexts)),
    currentContext: parts.map((p) => p.currentContext).find((c) => c !== undefined && c !== '') ?? '',
  });
}

export function loadKubeConfig(conn: KubeConnection, env: Record<string, string | undefined>, exists: (path: string) => boolean = existsSync): KubeConfig {
  const kc = new KubeConfig();
  const src = kubeconfigSource(conn, env, exists);
  const source = describeSource(src);
  if (src.kind === 'none') {
    throw new UnreachableError(
      `expected a kubeconfig, but found none: tried ${src.tried.join(', ')}. ` +
        'Fix: pass --kubeconfig PATH, set KUBECONFIG, or run `aws eks update-kubeconfig --name CLUSTER` first. Nothing was applied.',
    );
  }
  try {
    if (src.kind === 'in-cluster') kc.loadFromCluster(src.root);
    else loadMerged(kc, src.files);
    if (conn.context) {
      if (!kc.getContextObject(conn.context)) {
        throw new Error(`it has no context "${conn.context}" (contexts: ${kc.getContexts().map((c) => c.name).join(', ') || 'none'})`);
      }
      kc.setCurrentContext(conn.context);
    }
  } catch (err) {
    throw new UnreachableError(
      `expected a readable kubeconfig, but cannot load ${source}: ${(err as Error).message}. ` +
        'Fix: pass --kubeconfig PATH, set KUBECONFIG, or run `aws eks update-kubeconfig --name CLUSTER` first. Nothing was applied.',
      { cause: err },
    );
  }
  if (!kc.getCurrentCluster()) {
    throw new UnreachableError(
      `${source} has no current cluster${kc.getCurrentContext() ? ` (context "${kc.getCurrentContext()}")` : ''}. ` +
        'Fix: pass --kubeconfig PATH or --context NAME, or run `aws eks update-kubeconfig --name CLUSTER`. Nothing was applied.',
    );
  }
  kubeconfigSources.set(kc, `${source}, context "${kc.getCurrentContext()}"`);
  return kc;
}

/** HTTP statuses worth another attempt: the request may succeed on a healthy replica a moment later. */
const TRANSIENT_STATUS = new Set([429, 500, 502, 503, 504]);
/** Network errors worth another attempt (a connection reset mid-request, an API server restarting). */
const TRANSIENT_NETWORK = new Set(['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'EAI_AGAIN']);

export interface RetryPolicy {
  /** Attempts for 429/5xx answers (each Kubernetes call is idempotent: GET, LIST, server-side apply, merge patch). */
  attempts: number;
  /** Attempts when the server cannot be reached at all (kept small: a wrong URL should fail fast). */
  networkAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, networkAttempts: 3, baseDelayMs: 100, maxDelayMs: 3000 };

export class KubeClient {
  readonly calls: Record<string, number> = {};
  /** Requests that were sent again after a 429/5xx or a dropped connection, by verb. */
  readonly retries: Record<string, number> = {};
  private readonly server: URL;
  private readonly source: string;
  private readonly resources = new Map<string, Promise<ResourceInfo[]>>();
  private readonly retry: RetryPolicy;

  constructor(
    readonly kc: KubeConfig,
    private readonly options: {
      requestTimeoutMs?: number;
      retry?: Partial<RetryPolicy>;
      /** Source of the retry jitter, in [0, 1). Unseeded by default: its job is to de-correlate separate clients. */
      random?: () => number;
    } = {},
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new UnreachableError('the kubeconfig has no current cluster. Fix: pass --kubeconfig PATH or --context NAME.');
    this.server = new URL(cluster.server);
    this.source = kubeconfigSources.get(kc) ?? `context "${kc.getCurrentContext()}"`;
    // client-node refuses plain HTTP unless TLS verification is marked skipped; say so before any request.
    if (this.server.protocol === 'http:' && !cluster.skipTLSVerify) {
      throw InputError.single(
        `the Kubernetes API server ${this.server.origin} (from ${this.source}) is plain http:// but the cluster entry does not set insecure-skip-tls-verify`,
        'use the https:// address of the API server (EKS: aws eks update-kubeconfig --name CLUSTER), or for a plain-HTTP test server set insecure-skip-tls-verify: true in that cluster entry',
      );
    }
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
  }

  /** A delay spread over [ms/2, ms): jittered backoff, so that many clients retrying do not retry in step. */
  jittered(ms: number): number {
    return ms / 2 + (this.options.random ?? Math.random)() * (ms / 2);
  }

  get serverUrl(): string {
    return this.server.toString();
  }

  /** "kubeconfig /path (KUBECONFIG), context "x"" — for messages about reaching the cluster. */
  get configSource(): string {
    return this.source;
  }

  private count(verb: string): void {
    this.calls[verb] = (this.calls[verb] ?? 0) + 1;
  }

  /**
   * One Kubernetes call with the kubeconfig's credentials; JSON in, JSON out; Status bodies become KubeApiError.
   * 429/5xx answers and dropped connections are retried with jittered exponential backoff (every call this client
   * makes is idempotent); a server that cannot be reached at all fails after a few quick attempts (UnreachableError).
   */
  async request(
    verb: string,
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<JsonObject> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.requestOnce(verb, method, path, body, contentType);
      } catch (err) {
        const network = err instanceof UnreachableError;
        const transient = network ? TRANSIENT_NETWORK.has(String((err.cause as NodeJS.ErrnoException | undefined)?.code)) : err instanceof KubeApiError && TRANSIENT_STATUS.has(err.code);
        const limit = network ? this.retry.networkAttempts : this.retry.attempts;
        if (!transient) throw err;
        if (attempt >= limit) throw err instanceof KubeApiError ? this.unavailable(err, method, path, attempt) : err;
        this.retries[verb] = (this.retries[verb] ?? 0) + 1;
        const retryAfter = err instanceof KubeApiError ? err.retryAfterSeconds : undefined;
        const backoff = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
        const delay = retryAfter !== undefined ? Math.min(this.retry.maxDelayMs, retryAfter * 1000) : this.jittered(backoff);
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private async requestOnce(verb: string, method: string, path: string, body: unknown, contentType: string): Promise<JsonObject> {
    this.count(verb);
    const url = new URL(path, this.server);
    const opts: RequestOptions = {
      method,
      headers: { accept: 'application/json', ...(body !== undefined ? { 'content-type': contentType } : {}) },
      timeout: this.options.requestTimeoutMs ?? 30_000,
    };
    await this.kc.applyToHTTPSOptions(opts);
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const doRequest = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const { res, text } = await new Promise<{ res: IncomingMessage; text: string }>((resolve, reject) => {
      const req = doRequest(url, opts, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (c: Buffer) => chunks.push(c));
        response.on('end', () => resolve({ res: response, text: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', reject);
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error(`no answer within ${opts.timeout} ms`), { code: 'ETIMEDOUT' })));
      req.on('error', (err: NodeJS.ErrnoException) => reject(this.unreachable(err, `${method} ${url.pathname}`)));
      if (payload !== undefined) req.write(payload);
      req.end();
    });
    let parsed: JsonObject | undefined;
    try {
      parsed = text ? (JSON.parse(text) as JsonObject) : {};
    } catch {
      parsed = undefined;
    }
    const code = res.statusCode ?? 0;
    if (code >= 200 && code < 300 && parsed) return parsed;
    const message = typeof parsed?.message === 'string' ? parsed.message : text.slice(0, 300) || `HTTP ${code}`;
    const retryAfter = Number(res.headers['retry-after']);
    const extra = Number.isFinite(retryAfter) && retryAfter >= 0 ? { retryAfterSeconds: retryAfter } : {};
    if (code === 401 || code === 403) {
      throw new KubeApiError(code, parsed, `${method} ${url.pathname}: ${message} (the credentials of ${this.source} are not allowed to do this; see the RBAC in the README)`, extra);
    }
    throw new KubeApiError(code, parsed, `${method} ${url.pathname}: ${message}`, extra);
  }

  /**
   * The error for an API server that answers, but only 429/5xx, every attempt: it cannot be used now (exit 3, like
   * unreachable). Nothing about the release is wrong, so the fix is the server's health and a re-run.
   */
  unavailable(err: KubeApiError, method: string, path: string, attempts: number): UnreachableError {
    const reason = err.reason ? ` ${err.reason}` : '';
    return new UnreachableError(
      `the Kubernetes API server ${this.server.origin} (from ${this.source}) answered ${err.code}${reason} to ${method} ${path} on ${attempts} attempts in a row (${err.message}). ` +
        'It is failing or overloaded; nothing about the release is wrong. Fix: check its health (kubectl get --raw "/readyz?verbose"; on EKS: aws eks describe-cluster --name CLUSTER --query cluster.health), ' +
        'wait until it answers, then run the same command again (it is safe to re-run: it continues from what is applied).',
      { cause: err },
    );
  }

  /** The error for "no answer from the API server": names the server, where its address came from, and the fix. */
  unreachable(err: NodeJS.ErrnoException, what: string): UnreachableError {
    return new UnreachableError(
      `cannot reach the Kubernetes API server ${this.server.origin} (from ${this.source}): ${err.code ?? err.message} on ${what}. ` +
        'Fix: check that the cluster is up and that the kubeconfig points at it (kubectl config current-context; kubectl cluster-info), ' +
        'or pass --kubeconfig/--context; on EKS: aws eks update-kubeconfig --name CLUSTER.',
      { cause: err },
    );
  }

  /** Resolves kind → plural and scope through discovery, cached per group version. */
  async resource(apiVersion: string, kind: string): Promise<ResourceInfo> {
    let pending = this.resources.get(apiVersion);
    if (!pending) {
      const path = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
      pending = this.request('discovery', 'GET', path).then((doc) =>
        (Array.isArray(doc.resources) ? (doc.resources as JsonObject[]) : [])
          .filter((r) => typeof r.name === 'string' && !String(r.name).includes('/'))
          .map((r) => ({ apiVersion, kind: String(r.kind), plural: String(r.name), namespaced: r.namespaced === true })),
      );
      pending.catch(() => this.resources.delete(apiVersion));
      this.resources.set(apiVersion, pending);
    }
    let list: ResourceInfo[];
    try {
      list = await pending;
    } catch (err) {
      if (err instanceof KubeApiError && err.code === 404) {
        throw new KubeApiError(404, err.status, `the cluster does not serve ${apiVersion} (is the CRD installed? for elbv2.k8s.aws: is the AWS Load Balancer Controller installed?)`);
      }
      throw err;
    }
    const found = list.find((r) => r.kind === kind);
    if (!found) throw new KubeApiError(404, undefined, `the cluster serves ${apiVersion} but not kind ${kind}`);
    return found;
  }

  async path(apiVersion: string, kind: string, namespace: string, name?: string): Promise<string> {
    const r = await this.resource(apiVersion, kind);
    const base = apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    const ns = r.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
    return `${base}${ns}/${r.plural}${name ? `/${encodeURIComponent(name)}` : ''}`;
  }

  /** Server-side apply with the alb-rollout field manager; `resourceVersion` makes it conditional (409 when the object moved on). */
  async apply(obj: KubeObject, opts: { dryRun?: boolean; force?: boolean; resourceVersion?: string } = {}): Promise<KubeObject> {
    const path = await this.path(obj.apiVersion, obj.kind, obj.metadata.namespace ?? '', obj.metadata.name);
    const q = new URLSearchParams({ fieldManager: FIELD_MANAGER, fieldValidation: 'Strict' });
    if (opts.force) q.set('force', 'true');
    if (opts.dryRun) q.set('dryRun', 'All');
    const body = { ...obj, metadata: { ...obj.metadata } };
    delete body.metadata.resourceVersion;
    delete body.metadata.managedFields;
    if (opts.resourceVersion) body.metadata.resourceVersion = opts.resourceVersion;
    return (await this.request(opts.dryRun ? 'dryRunApply' : 'apply', 'PATCH', `${path}?${q}`, body, 'application/apply-patch+yaml')) as KubeObject;
  }

  async get(apiVersion: string, kind: string, namespace: string, name: string): Promise<KubeObject | undefined> {
    try {
      return (await this.request('get', 'GET', await this.path(apiVersion, kind, namespace, name))) as KubeObject;
    } catch (err) {
      if (err instanceof KubeApiError && err.code === 404) return undefined;
      throw err;
    }
  }

  async list(apiVersion: string, kind: string, namespace: string, selectors: { labelSelector?: string; fieldSelector?: string } = {}): Promise<ListResult> {
    const q = new URLSearchParams();
    if (selectors.labelSelector) q.set('labelSelector', selectors.labelSelector);
    if (selectors.fieldSelector) q.set('fieldSelector', selectors.fieldSelector);
    const items: KubeObject[] = [];
    let resourceVersion = '';
    let cont: string | undefined;
    do {
      if (cont) q.set('continue', cont);
      q.set('limit', '500');
      const page = await this.request('list', 'GET', `${await this.path(apiVersion, kind, namespace)}?${q}`);
      const pageItems = Array.isArray(page.items) ? (page.items as KubeObject[]) : [];
      for (const i of pageItems) items.push({ ...i, apiVersion, kind });
      const meta = (page.metadata ?? {}) as JsonObject;
      resourceVersion = String(meta.resourceVersion ?? '');
      cont = typeof meta.continue === 'string' && meta.continue !== '' ? meta.continue : undefined;
    } while (cont);
    return { items, resourceVersion };
  }

  async patch(apiVersion: string, kind: string, namespace: string, name: string, patch: unknown, type: 'merge' | 'strategic' | 'json', subresource?: 'status'): Promise<KubeObject> {
    const contentType = { merge: 'application/merge-patch+json', strategic: 'application/strategic-merge-patch+json', json: 'application/json-patch+json' }[type];
    const path = `${await this.path(apiVersion, kind, namespace, name)}${subresource ? `/${subresource}` : ''}?fieldManager=${FIELD_MANAGER}`;
    return (await this.request('patch', 'PATCH', path, patch, contentType)) as KubeObject;
  }

  /**
   * One watch connection from `resourceVersion`. Resolves when the server or the client closes it;
   * a 410 arrives as an ERROR event (the caller re-lists).
   */
  async watchOnce(
    apiVersion: string,
    kind: string,
    namespace: string,
    params: { resourceVersion: string; labelSelector?: string; fieldSelector?: string; timeoutSeconds?: number },
    onEvent: (e: WatchEvent) => void,
    signal: AbortSignal,
  ): Promise<void> {
    this.count('watch');
    const path = await this.path(apiVersion, kind, namespace);
    const watch = new Watch(this.kc);
    await new Promise<void>((resolve, reject) => {
      let controller: AbortController | undefined;
      const onAbort = (): void => controller?.abort();
      signal.addEventListener('abort', onAbort, { once: true });
      watch
        .watch(
          path,
          {
            resourceVersion: params.resourceVersion,
            allowWatchBookmarks: true,
            labelSelector: params.labelSelector,
            fieldSelector: params.fieldSelector,
            timeoutSeconds: params.timeoutSeconds ?? 60,
          },
          (type: string, obj: unknown) => {
            if (type === 'ERROR') onEvent({ type: 'ERROR', status: obj as JsonObject });
            else onEvent({ type: type as 'ADDED', object: { ...(obj as KubeObject), apiVersion, kind } });
          },
          (err: unknown) => {
            signal.removeEventListener('abort', onAbort);
            if (err && !signal.aborted && !isAbort(err)) {
              const e = err as NodeJS.ErrnoException & { statusCode?: number };
              if (e.statusCode) reject(new KubeApiError(e.statusCode, undefined, `watch ${path}: HTTP ${e.statusCode}`));
              else reject(this.unreachable(e, `watch ${path}`));
            } else resolve();
          },
        )
        .then((c) => {
          controller = c;
          if (signal.aborted) c.abort();
        }, reject);
    });
  }
}

function isAbort(err: unknown): boolean {
  const e = err as { name?: string; type?: string };
  return e?.name === 'AbortError' || e?.type === 'aborted';
}
