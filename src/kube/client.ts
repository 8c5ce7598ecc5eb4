import { KubeConfig, Watch } from '@kubernetes/client-node';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { UnreachableError } from '../errors.js';
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
  constructor(
    readonly code: number,
    readonly status: JsonObject | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
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

export function loadKubeConfig(conn: KubeConnection, env: Record<string, string | undefined>): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (conn.kubeconfigPath) kc.loadFromFile(conn.kubeconfigPath);
    else if (env.KUBECONFIG) kc.loadFromFile(env.KUBECONFIG.split(':')[0] as string);
    else if (env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
    else kc.loadFromDefault();
    if (conn.context) kc.setCurrentContext(conn.context);
  } catch (err) {
    throw new UnreachableError(
      `cannot load the kubeconfig${conn.kubeconfigPath ? ` ${conn.kubeconfigPath}` : ''}: ${(err as Error).message}. ` +
        'Pass --kubeconfig PATH, set KUBECONFIG, or run `aws eks update-kubeconfig --name CLUSTER` first.',
      { cause: err },
    );
  }
  if (!kc.getCurrentCluster()) {
    throw new UnreachableError(
      'the kubeconfig has no current cluster. Pass --kubeconfig PATH or --context NAME, or run `aws eks update-kubeconfig --name CLUSTER`.',
    );
  }
  return kc;
}

export class KubeClient {
  readonly calls: Record<string, number> = {};
  private readonly server: URL;
  private readonly resources = new Map<string, Promise<ResourceInfo[]>>();

  constructor(
    readonly kc: KubeConfig,
    private readonly options: { requestTimeoutMs?: number } = {},
  ) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new UnreachableError('the kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
  }

  get serverUrl(): string {
    return this.server.toString();
  }

  private count(verb: string): void {
    this.calls[verb] = (this.calls[verb] ?? 0) + 1;
  }

  /** One HTTP request with the kubeconfig's credentials; JSON in, JSON out; Status bodies become KubeApiError. */
  async request(
    verb: string,
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<JsonObject> {
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
      req.on('timeout', () => req.destroy(new Error(`no answer within ${opts.timeout} ms`)));
      req.on('error', (err: NodeJS.ErrnoException) =>
        reject(
          new UnreachableError(
            `cannot reach the Kubernetes API server at ${this.server.origin} (${err.code ?? err.message}) on ${method} ${url.pathname}. ` +
              'Check the kubeconfig (current context, server URL) and the network path to the cluster.',
            { cause: err },
          ),
        ),
      );
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
    if (code === 401 || code === 403) {
      throw new KubeApiError(code, parsed, `${method} ${url.pathname}: ${message} (the credentials in the kubeconfig are not allowed to do this; see the RBAC in the README)`);
    }
    throw new KubeApiError(code, parsed, `${method} ${url.pathname}: ${message}`);
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

  /** Server-side apply with the alb-rollout field manager. */
  async apply(obj: KubeObject, opts: { dryRun?: boolean; force?: boolean } = {}): Promise<KubeObject> {
    const path = await this.path(obj.apiVersion, obj.kind, obj.metadata.namespace ?? '', obj.metadata.name);
    const q = new URLSearchParams({ fieldManager: FIELD_MANAGER, fieldValidation: 'Strict' });
    if (opts.force) q.set('force', 'true');
    if (opts.dryRun) q.set('dryRun', 'All');
    const body = { ...obj, metadata: { ...obj.metadata } };
    delete body.metadata.resourceVersion;
    delete body.metadata.managedFields;
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
              else reject(new UnreachableError(`watch ${path} failed: ${e.code ?? e.message}`, { cause: err }));
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
