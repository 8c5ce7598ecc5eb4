import type { ObjectStore, StoreEvent } from '../store.js';
import type { LabClock } from '../timing.js';
import { EventRecorder } from './events.js';
import { WorkQueue } from './queue.js';
import { ArrivalOrder, controllerRef, keyOf } from './util.js';

export interface ControllerOptions {
  log?: (msg: string) => void;
  /** Bound on the number of Event objects each controller keeps (default 300). */
  maxEvents?: number;
}

/**
 * What every workload controller shares (upstream's informer + work-queue pattern): a queue of owner keys
 * ("namespace/name"), refilled when an owner changes or an object it controls does; an event recorder; and the order
 * in which owned objects were seen (upstream's tie-break between equal creation times).
 */
export abstract class OwnerController {
  protected readonly queue: WorkQueue;
  protected readonly recorder: EventRecorder;
  protected readonly arrivals = new ArrivalOrder();
  private readonly unwatch: Array<() => void> = [];

  constructor(
    protected readonly store: ObjectStore,
    protected readonly clock: LabClock,
    private readonly kinds: { controller: string; owner: string; owned: string },
    opts: ControllerOptions,
  ) {
    this.queue = new WorkQueue(kinds.controller, clock, (k) => this.sync(k), opts.log);
    this.recorder = new EventRecorder(store, kinds.controller, opts.maxEvents);
  }

  start(): void {
    this.watch(this.kinds.owner, (e) => this.queue.add(keyOf(e.object)));
    this.watch(this.kinds.owned, (e) => this.onOwned(e));
    this.watchMore();
    for (const o of this.store.list(this.kinds.owned).items) this.arrivals.note(o);
    this.requeueAll();
  }

  stop(): void {
    for (const u of this.unwatch.splice(0)) u();
    this.queue.stop();
  }

  protected abstract sync(key: string): void;

  /** Further watches a controller needs (Nodes, grandchildren). */
  protected watchMore(): void {}

  protected watch(kind: string, handler: (e: StoreEvent) => void): void {
    this.unwatch.push(this.store.watch(kind, undefined, undefined, handler));
  }

  protected requeueAll(): void {
    for (const o of this.store.list(this.kinds.owner).items) this.queue.add(keyOf(o));
  }

  private onOwned(e: StoreEvent): void {
    this.arrivals.note(e.object, e.type);
    const ref = controllerRef(e.object);
    if (ref?.kind === this.kinds.owner) this.queue.add(`${e.object.metadata.namespace ?? ''}/${ref.name}`);
  }
}
