import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Guard, type Timers } from '../../src/guard/guard.js';
import { DEFAULT_POLICY, judgeWindow, type Decision } from '../../src/guard/policy.js';
import type { Emit, Measurement, Signal, SignalKind } from '../../src/guard/signal.js';

/** A signal the test drives: `push` emits; run ends on abort. */
class FakeSignal implements Signal {
  private emit: Emit | undefined;
  aborted = false;
  constructor(
    readonly name: string,
    readonly kind: SignalKind,
    private readonly fail?: string,
  ) {}
  run(emit: Emit, signal: AbortSignal): Promise<void> {
    if (this.fail) return Promise.reject(new Error(this.fail));
    this.emit = emit;
    return new Promise((resolve) =>
      signal.addEventListener('abort', () => {
        this.aborted = true;
        resolve();
      }),
    );
  }
  push(m: Measurement): void {
    assert.ok(this.emit, 'signal started');
    this.emit(m);
  }
}

class FakeClock implements Timers {
  t = Date.parse('2026-05-01T10:00:00Z');
  private timers = new Map<number, { at: number; fn: () => void }>();
  private next = 1;
  now = (): number => this.t;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = this.next++;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  };
  clearTimeout = (h: unknown): void => {
    this.timers.delete(h as number);
  };
  advance(ms: number): void {
    this.t += ms;
    for (const [id, x] of [...this.timers]) {
      if (x.at <= this.t) {
        this.timers.delete(id);
        x.fn();
      }
    }
  }
  get pending(): number {
    return this.timers.size;
  }
}

function probeWindow(clock: FakeClock, requests: number, errors: number, source = 'probe'): Measurement {
  const j = judgeWindow({ requests, errors }, DEFAULT_POLICY.signals.probe);
  const m: Measurement = {
    signal: 'probe',
    source,
    at: new Date(clock.t).toISOString(),
    window: { start: new Date(clock.t - 1000).toISOString(), end: new Date(clock.t).toISOString() },
    value: errors / requests,
    requests,
    errors,
    verdict: j.verdict,
    evidence: j.reason,
    ...(errors ? { firstErrorAt: new Date(clock.t - 900).toISOString() } : {}),
  };
  clock.advance(1000);
  return m;
}

describe('Guard', () => {
  test('calls onFailure exactly once at the first fail decision, keeps measuring, stop() returns the decision', async () => {
    const clock = new FakeClock();
    const probe = new FakeSignal('probe', 'probe');
    const failures: Decision[] = [];
    const seen: string[] = [];
    const guard = new Guard([probe], DEFAULT_POLICY, { now: clock.now, timers: clock, onFailure: (d) => void failures.push(d), onMeasurement: (_m, d) => seen.push(d.verdict) });
    guard.start();
    probe.push(probeWindow(clock, 10, 0));
    probe.push(probeWindow(clock, 10, 6));
    assert.equal(failures.length, 0);
    probe.push(probeWindow(clock, 10, 7));
    probe.push(probeWindow(clock, 10, 8));
    probe.push(probeWindow(clock, 10, 0));
    assert.equal(failures.length, 1);
    assert.deepEqual(seen, ['pending', 'pending', 'fail', 'fail', 'fail']);
    const done = await guard.done;
    assert.equal(done.verdict, 'fail');
    assert.equal(done.decidingSignal, 'probe');
    assert.equal(probe.aborted, false, 'signals keep running through the rollback');
    const final = await guard.stop();
    assert.equal(final, done);
    assert.equal(probe.aborted, true);
    assert.equal(guard.history().length, 5);
  });

  test('bake: pass when the bake window ends quietly; the timer is injected and cleared', async () => {
    const clock = new FakeClock();
    const probe = new FakeSignal('probe', 'probe');
    let failures = 0;
    const guard = new Guard([probe], { ...DEFAULT_POLICY, bakeSeconds: 30 }, { now: clock.now, timers: clock, onFailure: () => void failures++ });
    guard.start();
    probe.push(probeWindow(clock, 10, 0));
    guard.startBake();
    assert.equal(guard.decision().verdict, 'pending');
    for (let i = 0; i < 29; i++) probe.push(probeWindow(clock, 10, i % 7 === 0 ? 1 : 0));
    assert.equal(guard.decision().verdict, 'pending');
    clock.advance(1000);
    const d = await guard.done;
    assert.equal(d.verdict, 'pass', d.reason);
    assert.equal(failures, 0);
    assert.equal(clock.pending, 0);
    await guard.stop();
  });

  test('bake without enough measurements: waits the grace period, then inconclusive (never pass)', async () => {
    const clock = new FakeClock();
    const probe = new FakeSignal('probe', 'probe');
    const guard = new Guard([probe], { ...DEFAULT_POLICY, bakeSeconds: 30, measureGraceSeconds: 10 }, { now: clock.now, timers: clock, onFailure: () => assert.fail('no rollback') });
    guard.start();
    probe.push(probeWindow(clock, 10, 0));
    guard.startBake();
    clock.advance(30_000);
    assert.equal(guard.decision().verdict, 'pending', 'the grace period waits for more measurements');
    clock.advance(10_000);
    const d = await guard.done;
    assert.equal(d.verdict, 'inconclusive', d.reason);
    assert.match(d.reason, /probe: 1 of 3 judged probe window/);
    assert.equal(clock.pending, 0);
    await guard.stop();
  });

  test('stopOnFailure aborts every signal; a signal that throws and an onFailure that throws are recorded', async () => {
    const clock = new FakeClock();
    const probe = new FakeSignal('probe', 'probe');
    const health = new FakeSignal('target-health', 'target-health');
    const broken = new FakeSignal('cloudwatch', 'cloudwatch', 'bad wiring');
    const guard = new Guard([probe, health, broken], DEFAULT_POLICY, {
      now: clock.now,
      timers: clock,
      stopOnFailure: true,
      onFailure: () => {
        throw new Error('patch refused');
      },
    });
    guard.start();
    health.push({ signal: 'target-health', source: 'target-health', at: new Date(clock.t).toISOString(), window: { start: new Date(clock.t - 5000).toISOString(), end: new Date(clock.t).toISOString() }, value: 1, verdict: 'failure', evidence: '10.0.0.7:8080 unhealthy (Target.ResponseCodeMismatch)' });
    const d = await guard.stop();
    assert.equal(d.verdict, 'fail');
    assert.equal(d.decidingKind, 'target-health');
    assert.equal(probe.aborted, true);
    assert.deepEqual(guard.problems.sort(), ["rollback after the guard's decision failed: patch refused", 'signal cloudwatch stopped: bad wiring']);
  });

  test('stop() before any decision settles on pending with the tally', async () => {
    const clock = new FakeClock();
    const probe = new FakeSignal('probe', 'probe');
    const guard = new Guard([probe], DEFAULT_POLICY, { now: clock.now, timers: clock, onFailure: () => undefined });
    guard.start();
    probe.push(probeWindow(clock, 10, 0));
    const d = await guard.stop();
    assert.equal(d.verdict, 'pending');
    assert.match(d.reason, /probe: 1 window\(s\) \(1 ok/);
    assert.equal((await guard.done).verdict, 'pending');
  });
});
