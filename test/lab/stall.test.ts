import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { after, describe, test } from 'node:test';
import { probeTarget } from '../../src/lab/alb/healthcheck.js';
import { LabNetwork } from '../../src/lab/network.js';
import { responsiveTimeout } from '../../src/runnable-timeout.js';
import { waitFor } from '../helpers/wait.js';
import { podServer, type PodServer } from './alb-helpers.js';

/** Blocks this process's event loop, as a machine too loaded to schedule it does. */
function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy
  }
}

describe('the lab times out health checks and probes on time the process could run', () => {
  const servers: PodServer[] = [];
  after(async () => {
    for (const s of servers) await s.close();
  });

  test('a target that never answers times out after the time, and a cancelled timeout never fires', async () => {
    const started = performance.now();
    let firedAt: number | undefined;
    responsiveTimeout(60, () => (firedAt = performance.now()));
    let cancelledFired = false;
    const cancel = responsiveTimeout(30, () => (cancelledFired = true));
    cancel();
    await waitFor(() => firedAt, { timeoutMs: 5000, what: 'the timeout' });
    assert.ok((firedAt as number) - started >= 60, `fired after ${(firedAt as number) - started} ms`);
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(cancelledFired, false);
  });

  test('a stall of the process does not count: the time still has to pass while it runs', async () => {
    let offset = 0;
    const now = (): number => performance.now() + offset;
    let fired = false;
    const started = performance.now();
    responsiveTimeout(100, () => (fired = true), now);
    offset = 10_000; // the clock jumps by 10 s before the first tick: a stall
    await waitFor(() => fired, { timeoutMs: 5000, what: 'the timeout' });
    // At most two ticks (2 × 20 ms) of the stall are credited; the rest had to pass in running time.
    assert.ok(performance.now() - started >= 60, `fired after ${performance.now() - started} ms of running time`);
  });

  test('an ALB health check of a healthy target passes although the process stalled longer than the timeout', async () => {
    const network = new LabNetwork();
    const pod = await podServer(network, '127.0.203.1');
    servers.push(pod);
    const check = probeTarget(network, '127.0.203.1', pod.port, '/', 250, (c) => c === 200);
    stall(600);
    assert.deepEqual(await check, { ok: true, code: 200 });
  });

  test('an address nothing answers on still times out (Target.Timeout)', async () => {
    const network = new LabNetwork();
    const keepAlive = setTimeout(() => undefined, 5000); // the lab's timers are unref'd; its servers keep it running
    const r = await probeTarget(network, '127.0.203.2', 80, '/', 100, () => true);
    clearTimeout(keepAlive);
    assert.equal(r.ok, false);
    assert.equal(r.ok === false && r.reason, 'Target.Timeout');
  });
});
