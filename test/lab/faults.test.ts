import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { InputError } from '../../src/errors.js';
import { labFault } from '../../src/lab/cli.js';
import { AlbCloud } from '../../src/lab/alb/index.js';
import { awsAccount } from '../../src/lab/aws/index.js';
import { FaultInjector, assertFaultsAvailable, formatFaults, parseFaultSpec } from '../../src/lab/faults.js';
import { startLab, type Lab } from '../../src/lab/index.js';
import { LabNetwork } from '../../src/lab/network.js';
import { LabRandom } from '../../src/lab/random.js';
import { LabClock, timingsFor } from '../../src/lab/timing.js';
import { waitFor } from '../helpers/wait.js';

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('fault specs', () => {
  test('parse: probabilities as fractions or percentages, world-time durations, states, actions, clear', () => {
    assert.deepEqual(parseFaultSpec('elbv2-throttle=20%,kube-5xx=0.05,watch-drop=30s,webhook=down,lbc=restart'), {
      set: { elbv2Throttle: 0.2, kube5xx: 0.05, watchDropSeconds: 30, webhook: 'down' },
      lbcAction: 'restart',
    });
    assert.deepEqual(parseFaultSpec('clear'), { clear: true, set: {} });
    assert.deepEqual(parseFaultSpec('watch-drop=off, elbv2-5xx=1'), { set: { watchDropSeconds: 0, elbv2Errors: 1 } });
  });

  test('bad specs are input errors that name the fault and the fix', () => {
    for (const [spec, what] of [
      ['elbv2-throttle=2', /not a probability/],
      ['kube-5xx=lots', /not a probability/],
      ['watch-drop=soon', /not a duration/],
      ['webhook=maybe', /not up or down/],
      ['lbc=pause', /not stop, start or restart/],
      ['gremlins=1', /unknown fault "gremlins"/],
      ['kube-5xx', /needs a value/],
      ['', /empty fault spec/],
    ] as const) {
      assert.throws(
        () => parseFaultSpec(spec),
        (e: unknown) => e instanceof InputError && what.test(e.message) && /fix: /.test(e.message),
        spec,
      );
    }
  });
});

describe('faults on a running lab (control endpoint, lab fault)', () => {
  let lab: Lab;
  let dir: string;
  const out: string[] = [];
  const io = () => ({ stdout: (s: string) => void out.push(s), stderr: () => undefined, cwd: dir, stopSignal: () => new Promise<string>(() => undefined) });
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'alb-faults-'));
    lab = await startLab({ stateDir: join(dir, 'state'), seed: 9, faults: parseFaultSpec('kube-5xx=1') });
  });
  after(async () => {
    await lab.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('lab.json names the control endpoint and the faults at start (lab up --faults)', async () => {
    const state = JSON.parse(await readFile(join(dir, 'state', 'lab.json'), 'utf8')) as { control: string; faults: string; seed: number };
    assert.match(state.control, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(state.faults, 'kube-5xx=1');
    assert.equal(state.seed, 9);
    const r = await get(`${lab.apiServerUrl}/api/v1/namespaces`);
    assert.equal(r.status, 500, 'kube-5xx=1 fails every request');
    assert.match(r.body, /injected fault/);
  });

  test('kube-5xx, elbv2-throttle and elbv2-5xx change while the lab runs; clear resets them', async () => {
    assert.equal(await labFault({ labDir: 'state', spec: 'kube-5xx=0,elbv2-throttle=100%', format: 'text' }, io()), 0);
    assert.match(out.at(-1)!, /faults in force: elbv2-throttle=1/);
    assert.equal((await get(`${lab.apiServerUrl}/api/v1/namespaces`)).status, 200);
    await assert.rejects(lab.aws.account.elbv2('DescribeLoadBalancers', {}, 'http'), /Rate exceeded/);
    await lab.setFaults(parseFaultSpec('elbv2-throttle=0,elbv2-5xx=1'));
    await assert.rejects(lab.aws.account.elbv2('DescribeLoadBalancers', {}, 'http'), /internal error/i);
    await labFault({ labDir: 'state', spec: 'clear', format: 'json' }, io());
    assert.equal((JSON.parse(out.at(-1)!) as { spec: string }).spec, 'none');
    await lab.aws.account.elbv2('DescribeLoadBalancers', {}, 'http');
  });

  test('the same seed gives the same injected-throttle pattern', async () => {
    const pattern = async (l: Lab): Promise<string> => {
      await l.setFaults(parseFaultSpec('elbv2-throttle=50%'));
      let s = '';
      for (let i = 0; i < 24; i++) s += await l.aws.account.elbv2('DescribeLoadBalancers', {}, 'http').then(() => '.', () => 'T');
      await l.setFaults(parseFaultSpec('clear'));
      return s;
    };
    const labs = [await startLab({ seed: 9 }), await startLab({ seed: 9 }), await startLab({ seed: 10 })];
    try {
      const [a, b, c] = [await pattern(labs[0]!), await pattern(labs[1]!), await pattern(labs[2]!)];
      assert.match(a, /T/);
      assert.match(a, /\./);
      assert.equal(b, a, 'same seed, same pattern');
      assert.notEqual(c, a, 'another seed, another pattern');
    } finally {
      await Promise.all(labs.map((l) => l.stop()));
    }
  });

  test('watch-drop ends open watches now and new ones after the world-time duration', async () => {
    const watchEnded = new Promise<number>((resolve) => {
      const started = Date.now();
      const req = request(`${lab.apiServerUrl}/api/v1/pods?watch=true`, { agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(Date.now() - started));
      });
      req.end();
    });
    await new Promise((r) => setTimeout(r, 100));
    await lab.setFaults(parseFaultSpec('watch-drop=10s'));
    const ms = await watchEnded;
    assert.ok(ms < 5000, `open watch ended after ${ms} ms`);
    const second = await new Promise<number>((resolve) => {
      const started = Date.now();
      request(`${lab.apiServerUrl}/api/v1/pods?watch=true`, { agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(Date.now() - started));
      }).end();
    });
    // 10 s of world time at 20× = 500 ms.
    assert.ok(second >= 400 && second < 5000, `new watch ended after ${second} ms`);
    await lab.setFaults(parseFaultSpec('watch-drop=off'));
  });

  test('webhook=down admits pods without gates; lbc=stop stops the controller and lbc=restart brings a new one', async () => {
    await lab.setFaults(parseFaultSpec('webhook=down'));
    assert.equal(lab.lbc.webhookEnabled, false);
    const first = lab.lbc;
    await lab.setFaults(parseFaultSpec('lbc=stop'));
    assert.equal(lab.faults.lbc, 'stopped');
    assert.equal(formatFaults(lab.faults), 'webhook=down,lbc=stop');
    await lab.setFaults(parseFaultSpec('lbc=restart,webhook=up'));
    assert.equal(lab.faults.lbc, 'running');
    assert.notEqual(lab.lbc, first, 'a new controller');
    assert.equal(lab.lbc.webhookEnabled, true);
    // The restarted controller reconciles: an Ingress gets its ALB.
    lab.store.create('Namespace', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'faults' } });
    lab.store.create('Service', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'faults' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] } });
    lab.store.create('Ingress', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'web', namespace: 'faults', annotations: { 'alb.ingress.kubernetes.io/target-type': 'ip' } },
      spec: { ingressClassName: 'alb', rules: [{ http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }] },
    });
    await waitFor(() => lab.albs().some((a) => a.ingress === 'faults/web'), { timeoutMs: 10_000, what: 'the restarted LBC to create the ALB' });
  });

  test('lab fault without a running lab, or a bad spec: input errors with the fix, nothing sent', async () => {
    await assert.rejects(labFault({ labDir: 'nowhere', spec: 'kube-5xx=1', format: 'text' }, io()), (e: unknown) => e instanceof InputError && /lab up --state-dir nowhere/.test(e.message));
    await assert.rejects(labFault({ labDir: 'state', spec: 'kube-5xx=9', format: 'text' }, io()), (e: unknown) => e instanceof InputError && /not a probability/.test(e.message));
    assert.equal(lab.faults.kube5xx, 0);
  });
});

describe('faults without the embedded API server (the real control plane tier)', () => {
  test('kube-5xx and watch-drop are refused with the tier named, nothing applied; ELBv2, webhook and LBC faults apply', async () => {
    const clock = new LabClock(timingsFor('fast'), new LabRandom(1));
    const alb = new AlbCloud({ clock, region: 'us-east-1', network: new LabNetwork() });
    try {
      const account = awsAccount(alb);
      const calls: string[] = [];
      const injector = new FaultInjector({
        clock,
        account,
        setWebhookEnabled: (v) => calls.push(`webhook ${v}`),
        loseNode: () => [],
        stopLbc: async () => void calls.push('stop'),
        startLbc: () => void calls.push('start'),
      });
      for (const spec of ['kube-5xx=10%', 'watch-drop=30s', 'elbv2-throttle=0.5,kube-5xx=1']) {
        await assert.rejects(injector.apply(parseFaultSpec(spec)), (e: unknown) => e instanceof InputError && /not available on the real control plane tier/.test(e.message) && /--control-plane embedded/.test(e.problems[0]?.fix ?? ''));
      }
      assert.equal(formatFaults(injector.faults), 'none');
      assert.equal(account.getFaults().elbv2?.throttleRate, undefined, 'the refused spec changed nothing');
      assert.throws(() => assertFaultsAvailable(parseFaultSpec('kube-5xx=1'), false), InputError);
      assertFaultsAvailable(parseFaultSpec('kube-5xx=1'), true);

      const f = await injector.apply(parseFaultSpec('elbv2-throttle=20%,elbv2-5xx=0.1,webhook=down,lbc=restart'));
      assert.equal(formatFaults(f), 'elbv2-throttle=0.2,elbv2-5xx=0.1,webhook=down');
      assert.deepEqual(account.getFaults().elbv2, { throttleRate: 0.2, errorRate: 0.1 });
      assert.deepEqual(calls, ['webhook false', 'stop', 'start']);
      assert.equal(formatFaults(await injector.apply(parseFaultSpec('clear'))), 'none');
    } finally {
      await alb.stop();
    }
  });
});

describe('fault node-loss (a target\'s node goes away)', () => {
  let lab: Lab;
  before(async () => {
    lab = await startLab({ seed: 4 });
  });
  after(async () => {
    await lab.stop();
  });

  test('the pod vanishes without preStop or SIGTERM, its target stops answering and turns unhealthy; the pod is deleted and replaced; the ALB serves from healthy targets again', async () => {
    const ns = 'lost';
    lab.store.create('Namespace', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    const labels = { app: 'web' };
    lab.store.create('Deployment', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: ns },
      spec: {
        replicas: 3,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            containers: [
              {
                name: 'web',
                image: 'example/web:1',
                ports: [{ containerPort: 8080 }],
                readinessProbe: { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 2 },
                lifecycle: { preStop: { sleep: { seconds: 30 } } },
              },
            ],
          },
        },
      },
    });
    lab.store.create('Service', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: ns }, spec: { selector: labels, ports: [{ port: 80, targetPort: 8080 }] } });
    lab.store.create('Ingress', {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'web', namespace: ns, annotations: { 'alb.ingress.kubernetes.io/target-type': 'ip', 'alb.ingress.kubernetes.io/healthcheck-path': '/healthz' } },
      spec: { ingressClassName: 'alb', rules: [{ http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }] },
    });
    const healthy = (): Set<string> => {
      const state = new Map<string, string>();
      for (const e of lab.alb.history) if (e.kind === 'state') state.set(e.id, e.state);
      return new Set([...state].filter(([, st]) => st === 'healthy').map(([ip]) => ip));
    };
    await waitFor(() => healthy().size === 3, { timeoutMs: 30_000, what: 'three healthy targets', describe: () => [...healthy()].join(',') });
    const events: Array<{ type: string; pod: string }> = [];
    const off = lab.kubelet.onPodEvent((e) => events.push({ type: e.type, pod: e.pod }));
    try {
      const faults = await lab.setFaults(parseFaultSpec('node-loss=1'));
      assert.equal(faults.lostPods?.length, 1);
      const lostPod = faults.lostPods![0]!;
      const ip = String((lab.store.get('Pod', ns, lostPod.split('/')[1]!)?.status as Record<string, unknown>).podIP);
      assert.equal(lab.kubelet.network.route(ip, 8080).kind, 'blackhole', 'the address is gone with the node: nothing answers');
      assert.equal(formatFaults(faults), 'none', 'a one-shot action, not a standing fault');
      // The ALB's view: health checks to it time out, the target turns unhealthy (until its pod is deleted and it drains).
      await waitFor(() => lab.alb.history.some((e) => e.id === ip && e.kind === 'state' && (e.state === 'unhealthy' || e.state === 'draining')), { timeoutMs: 20_000, what: `target ${ip} unhealthy or draining` });
      await waitFor(() => lab.store.get('Pod', ns, lostPod.split('/')[1]!) === undefined, { timeoutMs: 20_000, what: `pod ${lostPod} deleted` });
      await waitFor(() => healthy().size === 3 && !healthy().has(ip), { timeoutMs: 30_000, what: 'three healthy targets again, without the lost one', describe: () => [...healthy()].join(',') });
      assert.deepEqual(
        events.filter((e) => e.pod === lostPod).map((e) => e.type),
        ['node-lost', 'removed'],
        'no preStop, no SIGTERM: it just vanished',
      );
      const alb = lab.albs().find((a) => a.ingress === `${ns}/web`)!;
      assert.equal((await fetch(alb.url)).status, 200);
    } finally {
      off();
    }
  });

  test('node-loss needs a whole number of pods', () => {
    assert.equal(parseFaultSpec('node-loss=2').nodeLoss, 2);
    for (const bad of ['node-loss=0', 'node-loss=x', 'node-loss=1.5']) assert.throws(() => parseFaultSpec(bad), (e: unknown) => e instanceof InputError && /whole number of pods/.test(e.message));
  });
});
