/**
 * What a run observed, as data. The rollout records entries; the report layer renders them for the log,
 * the job summary and `--report FILE.json`.
 */

export type TimelineKind =
  | 'phase-start'
  | 'phase-end'
  | 'applied'
  | 'namespace-labelled'
  | 'load-balancer'
  | 'target-group-binding'
  | 'revision'
  | 'pod-created'
  | 'pod-ready'
  | 'pod-gate'
  | 'pod-deleted'
  | 'target-state'
  | 'attribute-verified'
  | 'guard'
  | 'rollback'
  | 'argo-rollout'
  | 'warning'
  | 'error';

export interface TimelineEntry {
  /** ISO time. */
  at: string;
  /** Seconds since the run started. */
  t: number;
  kind: TimelineKind;
  message: string;
  /** Structured details: pod, target, state, reason… */
  data?: Record<string, string | number | boolean | null>;
}

export interface PhaseRecord {
  name: string;
  startedAt: string;
  endedAt?: string;
  durationSeconds?: number;
}

export class Timeline {
  readonly entries: TimelineEntry[] = [];
  readonly phases: PhaseRecord[] = [];
  private readonly startedMs: number;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly onEntry?: (e: TimelineEntry) => void,
  ) {
    this.startedMs = now();
  }

  get startedAt(): string {
    return new Date(this.startedMs).toISOString();
  }

  elapsedSeconds(): number {
    return Math.round((this.now() - this.startedMs) / 100) / 10;
  }

  add(kind: TimelineKind, message: string, data?: TimelineEntry['data']): TimelineEntry {
    const ms = this.now();
    const entry: TimelineEntry = {
      at: new Date(ms).toISOString(),
      t: Math.round((ms - this.startedMs) / 100) / 10,
      kind,
      message,
      ...(data ? { data } : {}),
    };
    this.entries.push(entry);
    this.onEntry?.(entry);
    return entry;
  }

  startPhase(name: string): void {
    this.endOpenPhase();
    this.phases.push({ name, startedAt: new Date(this.now()).toISOString() });
    this.add('phase-start', `phase ${name}`);
  }

  endOpenPhase(): void {
    const open = this.phases.at(-1);
    if (open && !open.endedAt) {
      const end = this.now();
      open.endedAt = new Date(end).toISOString();
      open.durationSeconds = Math.round((end - Date.parse(open.startedAt)) / 100) / 10;
      this.add('phase-end', `phase ${open.name} done in ${open.durationSeconds}s`);
    }
  }
}
