/**
 * core/v1 Events as the controllers' event recorders write them (involvedObject, reason, message,
 * source.component, count, first/lastTimestamp). Identical events for one object are aggregated by
 * bumping `count` (like client-go's event correlator); the number of Event objects a recorder keeps is
 * bounded: the oldest are deleted.
 */
import type { KubeObject } from '../../manifests/types.js';
import type { ClusterAccess } from '../cluster.js';
import { isoSeconds, ns } from './util.js';

export class EventRecorder {
  private readonly written: Array<{ namespace: string; name: string; key: string }> = [];
  private readonly byKey = new Map<string, { namespace: string; name: string }>();
  private seq = 0;

  constructor(
    private readonly store: ClusterAccess,
    private readonly component: string,
    private readonly maxEvents = 300,
  ) {}

  record(involved: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const namespace = ns(involved) || 'default';
    const key = `${String(involved.metadata.uid)}|${type}|${reason}|${message}`;
    const now = isoSeconds();
    try {
      const existing = this.byKey.get(key);
      if (existing) {
        const updated = this.store.mutate('Event', existing.namespace, existing.name, (e) => {
          e.count = Number(e.count ?? 1) + 1;
          e.lastTimestamp = now;
        });
        if (updated) return;
        this.byKey.delete(key);
      }
      const nano = BigInt(Date.now()) * 1_000_000n + BigInt(this.seq++ % 1_000_000);
      const name = `${involved.metadata.name}.${nano.toString(16)}`;
      this.store.create('Event', {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace },
        involvedObject: {
          apiVersion: involved.apiVersion,
          kind: involved.kind,
          name: involved.metadata.name,
          namespace: ns(involved),
          uid: String(involved.metadata.uid ?? ''),
          resourceVersion: String(involved.metadata.resourceVersion ?? ''),
        },
        reason,
        message,
        type,
        source: { component: this.component },
        reportingComponent: this.component,
        reportingInstance: '',
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      });
      this.written.push({ namespace, name, key });
      this.byKey.set(key, { namespace, name });
      while (this.written.length > this.maxEvents) {
        const old = this.written.shift();
        if (!old) break;
        this.byKey.delete(old.key);
        try {
          this.store.delete('Event', old.namespace, old.name);
        } catch {
          // already gone
        }
      }
    } catch {
      // Events are best effort, as in Kubernetes.
    }
  }
}
