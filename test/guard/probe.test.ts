import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, before, describe, test } from 'node:test';
import { evaluate, DEFAULT_POLICY, type Thresholds } from '../../src/guard/policy.js';
import { Probe, probeOnce } from '../../src/guard/probe.js';
import type { Measurement } from '../../src/guard/signal.js';

/** Local servers on 127.0.0.1 only; every socket is destroyed when the suite ends. */
interface Local {
  url: string;
  hits: number;
  seen: IncomingMessage[];
  close(): Promise<void>;
}

async function serve(handler: (req: IncomingMessage, res: ServerResponse, n: number) => void): Promise<Local> {
  const sockets = new Set<Socket>();
  const local: Local = { url: '', hits: 0, seen: [], close: async () => undefined };
  const server: Server = createServer((req, res) => {
    local.hits++;
    local.seen.push(req);
    handler(req, res, local.hits);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref();
  local.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`;
  local.close = () =>
    new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return local;
}

const thresholds: Thresholds = { maxErrorRate: 0.05, maxErrors: 1, minRequests: 3 };

async function runProbe(p: Probe, signal = new AbortController().signal): Promise<Measurement[]> {
  const out: Measurement[] = [];
  await p.run((m) => out.push(m), signal);
  return out;
}

describe('probe against local servers', () => {
  let healthy: Local;
  let degrading: Local;
  let resetting: Local;
  let hanging: Local;
  before(async () => {
    healthy = await serve((_req, res) => {
      res.writeHead(200, { 'x-lab-image': 'app:v1', 'x-app-version': '1.0' });
      res.end('ok');
    });
    degrading = await serve((_req, res, n) => {
      res.writeHead(n > 10 ? 500 : 200, { 'x-lab-image': n > 10 ? 'app:v2' : 'app:v1' });
      res.end(n > 10 ? 'boom' : 'ok');
    });
    resetting = await serve((req) => req.socket.destroy());
    hanging = await serve(() => undefined);
  });
  after(async () => {
    await Promise.all([healthy, degrading, resetting, hanging].map((s) => s.close()));
  });

  test('healthy: every request answered 200, one new connection each, the version counted, bounded by maxRequests', async () => {
    const p = new Probe({ urls: [healthy.url], ratePerSecond: 50, maxRequests: 20, maxDurationMs: 10_000, requestTimeoutMs: 2000, windowMs: 200, thresholds, headers: { host: 'app.example.com' } });
    const ms = await runProbe(p);
    const t = p.totals();
    assert.equal(t.started, 20);
    assert.equal(t.completed, 20);
    assert.equal(t.errors, 0);
    assert.deepEqual(t.byStatus, { '200': 20 });
    assert.deepEqual(t.byVersion, { 'app:v1': 20 });
    assert.equal(healthy.hits, 20);
    assert.ok(healthy.seen.every((r) => r.headers.host === 'app.example.com' && r.headers.connection === 'close'), 'configured headers sent, connection: close');
    assert.equal(ms.reduce((a, m) => a + (m.requests ?? 0), 0), 20, 'every outcome is in exactly one window');
    assert.ok(ms.every((m) => m.verdict !== 'failure' && m.signal === 'probe'));
    assert.ok(ms.some((m) => m.verdict === 'success' && Number(m.details?.['version.app:v1']) > 0));
    // Windows are contiguous and ordered.
    for (let i = 1; i < ms.length; i++) assert.equal(ms[i]!.window.start, ms[i - 1]!.window.end);
  });

  test('500s after 10 requests: failing windows name the version, the policy fails within two windows of errors', async () => {
    const p = new Probe({ urls: [degrading.url], ratePerSecond: 50, maxRequests: 40, maxDurationMs: 10_000, requestTimeoutMs: 2000, windowMs: 200, thresholds });
    const ms = await runProbe(p);
    assert.equal(p.totals().errors, 30);
    assert.equal(p.totals().byStatus['500'], 30);
    const failing = ms.filter((m) => m.verdict === 'failure');
    assert.ok(failing.length >= 2, `failing windows: ${ms.map((m) => `${m.verdict}:${m.errors}/${m.requests}`).join(' ')}`);
    assert.match(failing[0]!.evidence, /errors by version: app:v2: \d+×500/);
    const d = evaluate(ms, { ...DEFAULT_POLICY, signals: { ...DEFAULT_POLICY.signals, probe: { ...DEFAULT_POLICY.signals.probe, ...thresholds } } }, Date.now());
    assert.equal(d.verdict, 'fail', d.reason);
    assert.equal(d.decidingSignal, 'probe');
    const firstError = p.samples()[0]!;
    assert.equal(d.firstErrorAt, new Date(firstError.endedAt).toISOString());
    assert.equal(p.samples().length, 30);
  });

  test('connection resets count as errors (not setup problems)', async () => {
    const p = new Probe({ urls: [resetting.url], ratePerSecond: 50, maxRequests: 10, maxDurationMs: 10_000, requestTimeoutMs: 2000, windowMs: 200, thresholds });
    const ms = await runProbe(p);
    assert.equal(p.totals().connectionErrors, 10);
    assert.equal(p.totals().errors, 10);
    assert.ok(ms.some((m) => m.verdict === 'failure' && Number(m.details?.connectionErrors) > 0));
    assert.match(p.samples()[0]!.code ?? '', /ECONNRESET|socket hang up/);
  });

  test('a server that never answers: per-request timeouts, each counted as an error', async () => {
    const p = new Probe({ urls: [hanging.url], ratePerSecond: 20, maxRequests: 4, maxDurationMs: 10_000, requestTimeoutMs: 150, windowMs: 100, thresholds: { ...thresholds, minRequests: 1 } });
    const ms = await runProbe(p);
    assert.equal(p.totals().timeouts, 4);
    assert.ok(ms.some((m) => m.verdict === 'failure' && Number(m.details?.timeouts) > 0));
  });

  test('time this process could not run is not a timeout: a stalled event loop reads the answer that arrived meanwhile', async () => {
    const stop = new AbortController();
    const pending = probeOnce(new URL(healthy.url), { requestTimeoutMs: 100 }, Date.now, stop.signal);
    // Block the event loop well past the timeout, as a runner too loaded to schedule the process does.
    const until = performance.now() + 400;
    while (performance.now() < until) {
      // busy
    }
    const out = await pending;
    assert.equal(out?.kind, 'response', JSON.stringify(out));
    assert.equal(out?.status, 200);
  });

  test('bounded in time: maxDurationMs stops a fast probe long before maxRequests', async () => {
    const started = Date.now();
    const p = new Probe({ urls: [healthy.url], ratePerSecond: 40, maxRequests: 1_000_000, maxDurationMs: 300, requestTimeoutMs: 2000, windowMs: 100, thresholds });
    await runProbe(p);
    const t = p.totals();
    assert.ok(t.started <= 14, `started ${t.started} requests in 300 ms at 40/s`);
    assert.ok(Date.now() - started < 3000);
  });

  test('abort stops at once; requests in flight are not counted', async () => {
    const ac = new AbortController();
    const p = new Probe({ urls: [hanging.url], ratePerSecond: 20, maxRequests: 1000, maxDurationMs: 60_000, requestTimeoutMs: 30_000, windowMs: 100, thresholds });
    const run = runProbe(p, ac.signal);
    const waitStart = Date.now();
    while (p.totals().started < 3 && Date.now() - waitStart < 5000) await new Promise((r) => setTimeout(r, 10));
    ac.abort();
    const ms = await run;
    assert.ok(p.totals().started >= 3);
    assert.equal(p.totals().completed, 0);
    assert.ok(ms.every((m) => m.requests === 0 && m.verdict === 'inconclusive'));
  });

  test('several URLs round robin; a configured version header is read when x-lab-image is absent', async () => {
    const custom = await serve((_req, res) => {
      res.writeHead(200, { 'x-app-version': '2.0' });
      res.end('ok');
    });
    try {
      const p = new Probe({ urls: [healthy.url, custom.url], ratePerSecond: 50, maxRequests: 6, maxDurationMs: 5000, requestTimeoutMs: 2000, windowMs: 200, thresholds, versionHeader: 'X-App-Version' });
      await runProbe(p);
      assert.deepEqual(p.totals().byVersion, { 'app:v1': 3, '2.0': 3 });
      assert.equal(custom.hits, 3);
    } finally {
      await custom.close();
    }
  });

  test('redirects and auth challenges are not measuring the app: not counted, said so; the Host header per URL is sent', async () => {
    const auth = await serve((_req, res, n) => {
      res.writeHead(n % 2 === 0 ? 302 : 401, { location: 'https://login.example.com/' });
      res.end();
    });
    try {
      const p = new Probe({ urls: [auth.url], perUrl: [{ host: 'shop.example.com' }], ratePerSecond: 20, maxRequests: 10, maxDurationMs: 5000, requestTimeoutMs: 1000, windowMs: 1000, thresholds });
      const ms = await runProbe(p);
      assert.ok(ms.length > 0);
      for (const m of ms) {
        assert.equal(m.requests, 0, m.evidence);
        assert.notEqual(m.verdict, 'success');
      }
      assert.match(ms.map((m) => m.evidence).join('\n'), /answer\(s\) (302\/401|401\/302) from the ALB's redirect\/auth rules — not measuring the app/);
      assert.ok(auth.seen.every((r) => r.headers.host === 'shop.example.com'));
    } finally {
      await auth.close();
    }
  });

  test('only http(s) URLs; bounds are required', () => {
    assert.throws(() => new Probe({ urls: ['file:///etc/passwd'], ratePerSecond: 1, maxRequests: 1, maxDurationMs: 1, requestTimeoutMs: 1, thresholds }), /not an http\(s\) URL/);
    assert.throws(() => new Probe({ urls: [], ratePerSecond: 1, maxRequests: 1, maxDurationMs: 1, requestTimeoutMs: 1, thresholds }), /no URL/);
    assert.throws(() => new Probe({ urls: ['http://127.0.0.1:1/'], ratePerSecond: 1, maxRequests: 0, maxDurationMs: 1, requestTimeoutMs: 1, thresholds }), /maxRequests/);
  });
});
