/**
 * Watch streams: newline-delimited JSON watch events over a chunked HTTP response, as the real server sends
 * them. A resourceVersion that has left the store's event log yields one ERROR event carrying a 410 `Expired`
 * Status, then the stream ends (HTTP 200, like the real server).
 */
import type { ServerResponse } from 'node:http';
import type { JsonObject, KubeObject } from '../../manifests/types.js';
import { StoreError, type ObjectStore, type StoreEvent } from '../store.js';
import { statusBody } from './status.js';

export interface WatchParams {
  store: ObjectStore;
  kind: string;
  /** Empty for all namespaces. */
  namespace: string;
  resourceVersion: string | undefined;
  sendInitialEvents: boolean;
  allowBookmarks: boolean;
  timeoutSeconds: number | undefined;
  /** Fault injection: end the stream after this long. */
  dropAfterMs: number | undefined;
  bookmarkIntervalMs: number;
  matches: (o: KubeObject) => boolean;
  /** Renders an object for the wire (plain object, Table row or PartialObjectMetadata). */
  render: (o: KubeObject) => JsonObject;
  /** The kind's apiVersion, for BOOKMARK objects. */
  apiVersion: string;
}

export type WatchType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

const objectKey = (o: KubeObject): string => `${o.metadata.namespace ?? ''}/${o.metadata.name}`;

/** Serves one watch on `res`; returns a function that ends it (for server shutdown). */
export function serveWatch(res: ServerResponse, p: WatchParams): () => void {
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
  res.flushHeaders();
  let ended = false;
  const timers: NodeJS.Timeout[] = [];
  let unsubscribe: () => void = () => {};
  const end = (): void => {
    if (ended) return;
    ended = true;
    unsubscribe();
    for (const t of timers) clearTimeout(t);
    res.end();
  };
  const send = (type: WatchType, object: JsonObject): void => {
    if (!ended) res.write(`${JSON.stringify({ type, object })}\n`);
  };
  res.on('close', end);

  const bookmark = (annotations?: Record<string, string>): void => {
    const metadata: JsonObject = { resourceVersion: p.store.resourceVersion };
    if (annotations) metadata.annotations = annotations;
    send('BOOKMARK', { kind: p.kind, apiVersion: p.apiVersion, metadata });
  };

  const known = new Set<string>();
  const fromList = p.resourceVersion === undefined || p.resourceVersion === '' || p.resourceVersion === '0' || p.sendInitialEvents;
  const seen = new Set<string>();
  const onEvent = (e: StoreEvent): void => {
    const k = objectKey(e.object);
    const matches = p.matches(e.object);
    const wasKnown = known.has(k) ? true : fromList || seen.has(k) ? false : undefined;
    seen.add(k);
    if (e.type === 'DELETED') {
      if (matches || wasKnown) send('DELETED', p.render(e.object));
      known.delete(k);
      return;
    }
    if (matches) {
      send(e.type === 'ADDED' || wasKnown === false ? 'ADDED' : 'MODIFIED', p.render(e.object));
      known.add(k);
    } else if (wasKnown) {
      // The object left the selection: the watcher sees it deleted.
      send('DELETED', p.render(e.object));
      known.delete(k);
    }
  };

  try {
    if (fromList) {
      const { items } = p.store.list(p.kind, p.namespace || undefined);
      for (const o of items) {
        if (!p.matches(o)) continue;
        known.add(objectKey(o));
        send('ADDED', p.render(o));
      }
      if (p.sendInitialEvents) bookmark({ 'k8s.io/initial-events-end': 'true' });
      unsubscribe = p.store.watch(p.kind, p.namespace || undefined, p.store.resourceVersion, onEvent);
    } else {
      unsubscribe = p.store.watch(p.kind, p.namespace || undefined, p.resourceVersion, onEvent);
    }
  } catch (err) {
    if (err instanceof StoreError && err.code === 410) {
      send('ERROR', statusBody(410, 'Expired', err.message));
    } else if (err instanceof StoreError) {
      send('ERROR', statusBody(err.code, err.reason === 'Gone' ? 'Expired' : err.reason, err.message));
    } else {
      send('ERROR', statusBody(500, 'InternalError', err instanceof Error ? err.message : String(err)));
    }
    end();
    return end;
  }

  if (p.timeoutSeconds !== undefined && p.timeoutSeconds > 0) timers.push(setTimeout(end, p.timeoutSeconds * 1000));
  if (p.dropAfterMs !== undefined && p.dropAfterMs >= 0) timers.push(setTimeout(end, p.dropAfterMs));
  for (const t of timers) t.unref();
  if (p.allowBookmarks) {
    const ticker = setInterval(() => bookmark(), p.bookmarkIntervalMs).unref();
    res.on('close', () => clearInterval(ticker));
  }
  return end;
}
