import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { buildSignals, createGuard, defaultProbeUrls, describeDecision, parseGuardOptions, realTimers, type Decision } from '../../src/guard/index.js';
import { waitFor } from '../helpers/wait.js';

describe('createGuard', () => {
  test('builds the signals the options turn on; says which could not be built', () => {
    const o = parseGuardOptions({});
    const { signals, skipped } = buildSignals(o, { hostnames: ['k8s-shop-web-0123.us-east-1.elb.amazonaws.com'], targetGroupArns: [], newTargets: () => [] }, { now: Date.now, elbv2: { targetHealth: async () => [] } });
    assert.deepEqual(signals.map((s) => s.kind), ['probe']);
    assert.deepEqual(skipped, ['cloudwatch: no CloudWatch reader', 'target-health: no target group ARN']);
    assert.deepEqual(defaultProbeUrls(['a.example', 'b.example']), ['http://a.example/', 'http://b.example/']);
    const off = buildSignals(parseGuardOptions({ probe: 'off', cloudwatch: 'off', 'target-health': 'off' }), { hostnames: [], targetGroupArns: [], newTargets: () => [] }, { now: Date.now });
    assert.deepEqual(off, { signals: [], skipped: [] });
  });

  test('end to end: a version answering 502 half the time is rolled back once, within about two probe windows', async () => {
    let n = 0;
    const server = createServer((_req, res) => {
      n++;
      const bad = n > 20 && n % 2 === 0;
      res.writeHead(bad ? 502 : 200, { 'x-lab-image': n > 20 ? 'web:v2' : 'web:v1' });
      res.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const failures: Decision[] = [];
    const options = parseGuardOptions({ 'probe-rate': '40', 'probe-window': '250ms', 'min-requests': '5', 'probe-max-duration': '20s', cloudwatch: 'off', 'target-health': 'off' });
    const { guard } = createGuard(options, { hostnames: [host], targetGroupArns: [], newTargets: () => [] }, { now: Date.now, timers: realTimers, onFailure: (d) => void failures.push(d) });
    try {
      guard.start();
      await waitFor(() => failures.length > 0, { timeoutMs: 10_000, what: 'the rollback decision', describe: () => guard.decision().reason });
      const d = await guard.done;
      assert.equal(d.verdict, 'fail');
      assert.equal(d.decidingSignal, 'probe');
      assert.match(describeDecision(d), /guard: ROLL BACK \(probe\).*web:v2: \d+×502/);
      const firstBad = guard.history().findIndex((m) => (m.errors ?? 0) > 0);
      const decidedAt = guard.history().findIndex((m) => m === d.failingWindows!.at(-1));
      assert.ok(decidedAt - firstBad <= 2, `decided ${decidedAt - firstBad} window(s) after the first error`);
    } finally {
      await guard.stop();
      server.closeAllConnections();
      server.close();
    }
    assert.equal(failures.length, 1);
  });
});
