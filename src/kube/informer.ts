import type { KubeObject } from '../manifests/types.js';
import { KubeApiError, type KubeClient, type WatchEvent } from './client.js';

/**
 * A list-then-watch cache of one kind (kubectl's and client-go's informer pattern): it re-lists on 410 Gone,
 * reconnects with backoff when the connection drops or times out, and calls `onChange` after every change.
 * Waits are built on it, so nothing polls the API server.
 */
export interface InformerOptions {
  apiVersion: string;
  kind: string;
  namespace: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Server-side timeout of one watch connection; the informer reconnects after it. */
  watchTimeoutSeconds?: number;
  /** Called when a connection attempt fails (for progress output); the informer keeps trying. */
  onError?: (err: Error) => void;
}

export class Informer {
  readonly objects = new Map<string, KubeObject>();
  private listeners = new Set<() => void>();
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private synced = false;
  private syncWaiters: Array<() => void> = [];
  relists = 0;
  /** Failed list/watch attempts so far (each one retried with backoff). */
  failures = 0;
  /** The last failure, until the next successful list or watch; for "why is this still pending" messages. */
  lastError: Error | undefined;

  constructor(
    private readonly client: KubeClient,
    private readonly options: InformerOptions,
  ) {}

  start(): void {
    this.running ??= this.loop();
  }

  /** Stops watching. Waits briefly for the loop to end; an in-flight list is abandoned, not awaited to its timeout. */
  async stop(): Promise<void> {
    this.abort.abort();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.running?.catch(() => undefined),
      new Promise<void>((r) => {
        timer = setTimeout(r, 2000);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** True after the first successful list. */
  get isSynced(): boolean {
    return this.synced;
  }

  /** What this informer watches, for messages: "Pods in game-2048 (app=x)". */
  describe(): string {
    const sel = [this.options.labelSelector, this.options.fieldSelector].filter(Boolean).join(', ');
    return `${this.options.kind} in ${this.options.namespace || 'all namespaces'}${sel ? ` (${sel})` : ''}`;
  }

  /**
   * Resolves after the first successful list. Never rejects (the informer keeps retrying), so callers that must
   * respect a deadline check `isSynced` inside their own wait instead of awaiting this alone.
   */
  hasSynced(): Promise<void> {
    if (this.synced) return Promise.resolve();
    return new Promise((resolve) => this.syncWaiters.push(resolve));
  }

  list(): KubeObject[] {
    return [...this.objects.values()];
  }

  private notify(): void {
    for (const l of this.listeners) l();
  }

  private key(o: KubeObject): string {
    return `${o.metadata.namespace ?? ''}/${o.metadata.name}`;
  }

  private async relist(): Promise<string> {
    const { items, resourceVersion } = await this.client.list(this.options.apiVersion, this.options.kind, this.options.namespace, {
      ...(this.options.labelSelector ? { labelSelector: this.options.labelSelector } : {}),
      ...(this.options.fieldSelector ? { fieldSelector: this.options.fieldSelector } : {}),
    });
    this.relists++;
    this.lastError = undefined;
    this.objects.clear();
    for (const i of items) this.objects.set(this.key(i), i);
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w();
    }
    this.notify();
    return resourceVersion;
  }

  private async loop(): Promise<void> {
    const signal = this.abort.signal;
    let rv: string | undefined;
    let failures = 0;
    while (!signal.aborted) {
      try {
        rv ??= await this.relist();
        let expired = false;
        await this.client.watchOnce(
          this.options.apiVersion,
          this.options.kind,
          this.options.namespace,
          {
            resourceVersion: rv,
            timeoutSeconds: this.options.watchTimeoutSeconds ?? 25,
            ...(this.options.labelSelector ? { labelSelector: this.options.labelSelector } : {}),
            ...(this.options.fieldSelector ? { fieldSelector: this.options.fieldSelector } : {}),
          },
          (e: WatchEvent) => {
            if (e.type === 'ERROR') {
              if (Number(e.status.code) === 410) expired = true;
              return;
            }
            const newRv = e.object.metadata.resourceVersion;
            if (typeof newRv === 'string') rv = newRv;
            if (e.type === 'BOOKMARK') return;
            if (e.type === 'DELETED') this.objects.delete(this.key(e.object));
            else this.objects.set(this.key(e.object), e.object);
            this.notify();
          },
          signal,
        );
        failures = 0;
        this.lastError = undefined;
        if (expired) rv = undefined; // 410 Gone: the version fell out of the server's history; start over.
      } catch (err) {
        if (signal.aborted) return;
        if (err instanceof KubeApiError && err.code === 410) rv = undefined;
        failures++;
        this.failures++;
        this.lastError = err as Error;
        this.options.onError?.(err as Error);
        const backoff = this.client.jittered(Math.min(5000, 100 * 2 ** Math.min(failures, 6)));
        await new Promise<void>((r) => {
          const onAbort = (): void => {
            clearTimeout(t);
            r();
          };
          const t = setTimeout(() => {
            signal.removeEventListener('abort', onAbort);
            r();
          }, backoff);
          signal.addEventListener('abort', onAbort, { once: true });
        });
      }
    }
  }
}
