import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { AlbCloud } from '../../src/lab/alb/index.js';
import { awsAccount } from '../../src/lab/aws/index.js';
import { LabRandom } from '../../src/lab/random.js';
import { FAST_TIMINGS, LabClock, REALISTIC_TIMINGS, sampleDeregistrationPath, timingsFor, type LabTimings } from '../../src/lab/timing.js';
import { parseSeed, parseTimingProfile } from '../../src/lab/cli.js';
import { InputError } from '../../src/errors.js';
import { waitFor } from '../helpers/wait.js';
import { LabNetwork } from '../../src/lab/network.js';
import { albWithTargetGroup, podServer, type PodServer } from './alb-helpers.js';
import { ALB_NODES, NODE_DEREGISTRATION_SECONDS, NODE_REGISTRATION_SECONDS, POD_START_SECONDS, batchSpread } from '../../src/plan/tail.js';
import { DEREGISTER_CALL_P99_SECONDS, DEREGISTRATION_PATH_P99_SECONDS, PROPAGATION_P99_SECONDS } from '../../src/tune/timers.js';

const network = new LabNetwork();

describe('lab PRNG', () => {
  test('the same seed and label give the same numbers; forks are independent of each other', () => {
    const a = new LabRandom(7).fork('x');
    const b = new LabRandom(7).fork('x');
    const seqA = Array.from({ length: 5 }, () => a.float());
    assert.deepEqual(
      Array.from({ length: 5 }, () => b.float()),
      seqA,
    );
    // Drawing from another fork does not shift this one.
    const root = new LabRandom(7);
    const y = root.fork('y');
    for (let i = 0; i < 100; i++) y.float();
    const x = root.fork('x');
    assert.deepEqual(
      Array.from({ length: 5 }, () => x.float()),
      seqA,
    );
    assert.notDeepEqual(
      Array.from({ length: 5 }, () => new LabRandom(8).fork('x').float()),
      seqA,
    );
  });

  test('a delay distribution has its median and p99, clamped to [min, max]; a constant draws nothing', () => {
    const r = new LabRandom(3);
    const d = { median: 10, p99: 30 };
    const n = 20_000;
    const draws = Array.from({ length: n }, () => r.delay(d));
    const below = draws.filter((v) => v < 10).length / n;
    const above = draws.filter((v) => v > 30).length / n;
    assert.ok(Math.abs(below - 0.5) < 0.02, `fraction below the median: ${below}`);
    assert.ok(Math.abs(above - 0.01) < 0.004, `fraction above p99: ${above}`);
    const clamped = Array.from({ length: 2000 }, () => r.delay({ median: 10, p99: 30, min: 5, max: 20 }));
    assert.ok(clamped.every((v) => v >= 5 && v <= 20));
    const c = new LabRandom(3);
    assert.equal(c.delay(4), 4);
    assert.equal(c.float(), new LabRandom(3).float(), 'a constant delay consumed no number');
  });

  test('nothing in src/lab calls Math.random', () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const f of readdirSync(dir)) {
        const p = join(dir, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts') && /Math\.random\s*\(/.test(readFileSync(p, 'utf8'))) offenders.push(p);
      }
    };
    walk(join(import.meta.dirname, '..', '..', 'src', 'lab'));
    assert.deepEqual(offenders, []);
  });

  test('names, uids and ARNs come from the seed: node:crypto randomness only for keys, tokens and request ids', async () => {
    const allowed = new Set(['controlplane/certs.ts', 'controlplane/processes.ts', 'aws/wire.ts', 'lbc/util.ts']);
    const offenders: string[] = [];
    const root = join(import.meta.dirname, '..', '..', 'src', 'lab');
    const walk = (dir: string): void => {
      for (const f of readdirSync(dir)) {
        const p = join(dir, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (p.endsWith('.ts') && /\b(randomUUID|randomBytes|randomInt)\b/.test(readFileSync(p, 'utf8')) && !allowed.has(p.slice(root.length + 1))) offenders.push(p);
      }
    };
    walk(root);
    assert.deepEqual(offenders, []);

    const { ObjectStore } = await import('../../src/lab/store.js');
    const uids = (seed: number): string[] => {
      const store = new ObjectStore({ uids: new LabRandom(seed, 'store/uids') });
      return ['a', 'b'].map((name) => String(store.create('ConfigMap', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' } }).metadata.uid));
    };
    assert.deepEqual(uids(7), uids(7));
    assert.notDeepEqual(uids(7), uids(8));
    assert.match(uids(7)[0]!, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const arns = async (seed: number): Promise<string> => {
      const clock = new LabClock(timingsFor('fast'), new LabRandom(seed));
      const cloud = new AlbCloud({ clock, region: 'us-east-1', network: new LabNetwork() });
      try {
        return (await cloud.createTargetGroup({ Name: 'tg-a', Protocol: 'HTTP', Port: 80, VpcId: 'vpc-0a1b2c3d4e5f60718', TargetType: 'ip' })).TargetGroups?.[0]?.TargetGroupArn ?? '';
      } finally {
        await cloud.stop();
      }
    };
    assert.equal(await arns(3), await arns(3));
    assert.notEqual(await arns(3), await arns(4));
  });
});

describe('timing profiles', () => {
  test('fast keeps constants; realistic has distributions, two ALB nodes, a random first check and CloudWatch lag', () => {
    const fast = timingsFor('fast');
    assert.equal(fast.timeScale, 20);
    assert.equal(fast.albPropagationSeconds, 5);
    assert.equal(fast.albNodes, undefined);
    const real = timingsFor('realistic', { timeScale: 50 });
    assert.equal(real.timeScale, 50);
    assert.equal(real.albNodes, 2);
    assert.equal(real.albFirstHealthCheck, 'random');
    assert.equal(typeof real.albPropagationSeconds, 'object');
    const clock = new LabClock(REALISTIC_TIMINGS, new LabRandom(1));
    const draws = Array.from({ length: 200 }, () => clock.delay('albDeregistrationSeconds'));
    assert.ok(new Set(draws).size > 150, 'realistic delays vary');
    assert.ok(Math.max(...draws) <= 30 && Math.min(...draws) >= 2);
    assert.equal(new LabClock(FAST_TIMINGS).delay('albDeregistrationSeconds'), 5, 'fast: deregistration falls back to the propagation constant');
    assert.equal(new LabClock(FAST_TIMINGS).delay('cloudwatchLagSeconds'), 0);
  });

  test('--timings and --seed parse, and bad values are input errors naming the fix', () => {
    assert.equal(parseTimingProfile(undefined), 'fast');
    assert.equal(parseTimingProfile('realistic'), 'realistic');
    assert.throws(() => parseTimingProfile('slow'), (e: unknown) => e instanceof InputError && /--timings fast/.test(e.message + JSON.stringify(e)));
    assert.equal(parseSeed(undefined), 1);
    assert.equal(parseSeed('42'), 42);
    assert.throws(() => parseSeed('-1'), InputError);
    assert.throws(() => parseSeed('x'), InputError);
  });
});

describe('ALB with two nodes (realistic registration, health checks and deregistration)', () => {
  const servers: PodServer[] = [];
  const albs: AlbCloud[] = [];
  after(async () => {
    await Promise.all(albs.map((a) => a.stop()));
    await Promise.all(servers.map((s) => s.close()));
  });

  const timings: LabTimings = {
    ...FAST_TIMINGS,
    timeScale: 100,
    albNodes: 2,
    albFirstHealthCheck: 'random',
    albPropagationSeconds: { median: 10, p99: 30, min: 3, max: 60 },
    albDeregistrationSeconds: { median: 6, p99: 25, min: 2, max: 45 },
    albHealthRoutingSeconds: 0.5,
  };

  test('each node gets the registration at its own time and checks on its own schedule; healthy once every node passed', async () => {
    const checks: number[] = [];
    const pod = await podServer(network, '127.0.200.71', (req, res) => {
      if (req.headers['user-agent'] === 'ELB-HealthChecker/2.0') checks.push(Date.now());
      res.writeHead(200);
      res.end('ok');
    });
    servers.push(pod);
    const alb = new AlbCloud({ clock: new LabClock(timings, new LabRandom(11)), region: 'us-east-1', network });
    albs.push(alb);
    const { tgArn } = await albWithTargetGroup(alb, { name: 'k8s-default-nodes-0123456789' });
    const account = awsAccount(alb);
    await account.elbv2('ModifyTargetGroupAttributes', { TargetGroupArn: tgArn, Attributes: [{ Key: 'deregistration_delay.timeout_seconds', Value: '60' }] });
    const registeredAt = Date.now();
    await account.elbv2('RegisterTargets', { TargetGroupArn: tgArn, Targets: [{ Id: pod.ip, Port: pod.port }] });
    await waitFor(() => alb.history.some((e) => e.tgArn === tgArn && e.kind === 'state' && e.state === 'healthy'), { timeoutMs: 10_000, what: 'healthy' });
    const mine = alb.history.filter((e) => e.tgArn === tgArn);
    const added = mine.filter((e) => e.kind === 'data-plane' && e.state === 'added');
    assert.deepEqual(added.map((e) => e.node).sort(), [0, 1], 'both nodes got the registration');
    assert.notEqual(added[0]!.at, added[1]!.at, 'at different times');
    const healthyAt = mine.find((e) => e.kind === 'state' && e.state === 'healthy')!.at;
    assert.ok(healthyAt >= Math.max(...added.map((e) => e.at)), 'healthy only after the registration reached every node');
    assert.ok(checks.length >= 2, `a check from each node (saw ${checks.length})`);
    assert.ok(checks[0]! - registeredAt >= 30 - 5, 'the first health check is not at the instant of registration (min propagation 3 s = 30 ms real)');

    await account.elbv2('DeregisterTargets', { TargetGroupArn: tgArn, Targets: [{ Id: pod.ip, Port: pod.port }] });
    await waitFor(() => alb.targetRecord(tgArn, pod.ip, pod.port)?.drainCompletedAt !== undefined, { timeoutMs: 10_000, what: 'drain complete' });
    const removed = alb.history.filter((e) => e.tgArn === tgArn && e.kind === 'data-plane' && e.state === 'removed');
    assert.deepEqual(removed.map((e) => e.node).sort(), [0, 1]);
    const drainAt = alb.history.find((e) => e.tgArn === tgArn && e.kind === 'drain-complete')!.at;
    assert.ok(drainAt >= Math.max(...removed.map((e) => e.at)), 'drain completes after the last node stopped routing');
  });

  test('the realistic deregistration path has the p99 documented in docs/lab-timings.md (about 25 s)', () => {
    const c = new LabClock(REALISTIC_TIMINGS, new LabRandom(1));
    const xs = Array.from({ length: 20_000 }, () => sampleDeregistrationPath(c)).sort((a, b) => a - b);
    const p99 = xs[Math.floor(xs.length * 0.99)]!;
    assert.ok(p99 > 22 && p99 < 28, `p99 ${p99}`);
  });

  test("the tuner's tail figures (src/tune/timers.ts) are this profile's p99s", () => {
    const c = new LabClock(REALISTIC_TIMINGS, new LabRandom(2));
    const n = 50_000;
    const call: number[] = [];
    const slowest: number[] = [];
    for (let i = 0; i < n; i++) {
      call.push(c.delay('endpointsSeconds') + c.delay('lbcReconcileSeconds') + c.delay('awsApiLatencySeconds'));
      slowest.push(Math.max(...Array.from({ length: REALISTIC_TIMINGS.albNodes ?? 1 }, () => c.delay('albDeregistrationSeconds'))));
    }
    const p99 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.99)]!;
    const path = call.map((x, i) => x + slowest[i]!);
    // Each figure within 1.5 s of the measured p99 (and never below it by more than the sampling noise).
    for (const [what, measured, figure] of [
      ['path', p99(path), DEREGISTRATION_PATH_P99_SECONDS],
      ['until DeregisterTargets', p99(call), DEREGISTER_CALL_P99_SECONDS],
      ['slowest node', p99(slowest), PROPAGATION_P99_SECONDS],
    ] as const) {
      assert.ok(Math.abs(measured - figure) <= 1.5, `${what}: measured p99 ${measured.toFixed(1)} s, the tuner assumes ${figure} s`);
    }
  });

  test("the plan estimate's batch spread (src/plan/tail.ts) assumes this profile and matches its draws", () => {
    assert.deepEqual(POD_START_SECONDS, REALISTIC_TIMINGS.containerStartSeconds);
    assert.deepEqual(NODE_REGISTRATION_SECONDS, REALISTIC_TIMINGS.albPropagationSeconds);
    assert.deepEqual(NODE_DEREGISTRATION_SECONDS, REALISTIC_TIMINGS.albDeregistrationSeconds);
    assert.equal(ALB_NODES, REALISTIC_TIMINGS.albNodes);
    // One pod: its start, then the later node's registration and first check (a uniform point of a 15 s interval).
    const c = new LabClock(REALISTIC_TIMINGS, new LabRandom(3));
    const checks = c.stream('checks');
    const pod = (): number =>
      c.delay('containerStartSeconds') + Math.max(...Array.from({ length: ALB_NODES }, () => c.delay('albPropagationSeconds') + checks.uniform(0, 15)));
    // An old target leaving the later node: a deregistration draw per node.
    const dereg = (): number => Math.max(...Array.from({ length: ALB_NODES }, () => c.delay('albDeregistrationSeconds')));
    const runs = 4000;
    for (const n of [4, 12]) {
      let slowest = 0;
      let lastOff = 0;
      let all = 0;
      let allDereg = 0;
      for (let r = 0; r < runs; r++) {
        const xs = Array.from({ length: n }, pod);
        const ds = Array.from({ length: n }, dereg);
        slowest += Math.max(...xs);
        lastOff += Math.max(...xs.map((x, i) => x + ds[i]!));
        all += xs.reduce((a, x) => a + x, 0);
        allDereg += ds.reduce((a, x) => a + x, 0);
      }
      const mean = all / (runs * n);
      const b = batchSpread(n, 15);
      const measured = slowest / runs - mean;
      assert.ok(Math.abs(measured - b.slowestSeconds) < 0.6, `slowest of ${n}: drawn ${measured.toFixed(2)} s over the mean, the estimate assumes ${b.slowestSeconds.toFixed(2)} s`);
      const measuredOff = lastOff / runs - mean - allDereg / (runs * n);
      assert.ok(Math.abs(measuredOff - b.lastDrainSeconds(0)) < 0.6, `last of ${n} off the ALB: drawn ${measuredOff.toFixed(2)} s, the estimate assumes ${b.lastDrainSeconds(0).toFixed(2)} s`);
    }
  });

  test('the same seed gives the same per-node propagation draws', async () => {
    const draw = (seed: number): number[] => {
      const c = new LabClock(timings, new LabRandom(seed));
      return [c.delay('albPropagationSeconds'), c.delay('albPropagationSeconds'), c.delay('albDeregistrationSeconds')];
    };
    assert.deepEqual(draw(5), draw(5));
    assert.notDeepEqual(draw(5), draw(6));
  });
});

describe('CloudWatch publication lag (realistic)', () => {
  test('a minute is readable only lag seconds after it ends (one draw per minute); minutes without traffic have no point', async () => {
    const { getMetricData } = await import('../../src/lab/aws/index.js');
    // Time scale 1 and a fixed origin: simulated time is real time, so "now" can be passed explicitly.
    const clock = new LabClock({ ...FAST_TIMINGS, cloudwatchLagSeconds: { median: 90, p99: 170, min: 60, max: 180 } }, new LabRandom(4));
    const alb = new AlbCloud({ clock, region: 'us-east-1', network });
    const lb = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/k8s-lag-0a1b2c3d4e/50dc6c495c0c9188';
    const minute = Math.floor(alb.simulatedNow() / 60_000) * 60 - 600; // ten minutes ago, in seconds
    for (const m of [minute, minute + 120]) alb.metrics.record({ lbArn: lb, status: 200, origin: 'target' }, alb.epoch.realMs(m * 1000 + 5000));
    const dims = { LoadBalancer: 'app/k8s-lag-0a1b2c3d4e/50dc6c495c0c9188' };
    const at = (nowSec: number): number[] => alb.metrics.minutes('RequestCount', dims, minute, minute + 600, nowSec).map(([t]) => t);
    assert.deepEqual(at(minute + 60 + 59), [], 'not within a minute of the minute ending');
    assert.deepEqual(at(minute + 60 + 180), [minute], 'always within three minutes');
    const firstVisible = [...Array(121).keys()].map((s) => minute + 60 + 60 + s).find((now) => at(now).length > 0)!;
    assert.ok(firstVisible > minute + 120 && firstVisible <= minute + 240);
    assert.deepEqual(at(minute + 600), [minute, minute + 120], 'the minute in between had no traffic: no point');
    // Through GetMetricData (what the SDK sees) at "now" = ten minutes later: both minutes published.
    const out = getMetricData(alb, {
      StartTime: minute,
      EndTime: minute + 600,
      MetricDataQueries: [{ Id: 'r', MetricStat: { Metric: { Namespace: 'AWS/ApplicationELB', MetricName: 'RequestCount', Dimensions: [{ Name: 'LoadBalancer', Value: dims.LoadBalancer }] }, Period: 60, Stat: 'Sum' } }],
    });
    assert.equal(out.MetricDataResults?.[0]?.Values?.length, 2);
    await alb.stop();
  });

  test('the fast profile has no lag: the current minute is readable at once', () => {
    const alb = new AlbCloud({ clock: new LabClock(FAST_TIMINGS), region: 'us-east-1', network });
    const lb = 'arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/k8s-nolag-0a1b2c3d4e/50dc6c495c0c9188';
    alb.metrics.record({ lbArn: lb, status: 200, origin: 'target' });
    const now = alb.simulatedNow() / 1000;
    assert.equal(alb.metrics.minutes('RequestCount', { LoadBalancer: 'app/k8s-nolag-0a1b2c3d4e/50dc6c495c0c9188' }, now - 120, now + 60).length, 1);
    void alb.stop();
  });
});

describe('LBC work queue workers', () => {
  test('at most lbcWorkers reconciles run at once; the others wait in arrival order and all run', async () => {
    const { WorkQueue } = await import('../../src/lab/lbc/util.js');
    const clock = new LabClock({ ...FAST_TIMINGS, timeScale: 100, lbcWorkers: 2 });
    let running = 0;
    let peak = 0;
    const order: string[] = [];
    const q = new WorkQueue(clock, async (key) => {
      running++;
      peak = Math.max(peak, running);
      order.push(key);
      await new Promise((r) => setTimeout(r, 30));
      running--;
    });
    for (const k of ['a', 'b', 'c', 'd', 'e']) q.enqueue(k, 0);
    await waitFor(() => order.length === 5 && running === 0, { timeoutMs: 5000, what: 'all five reconciles' });
    assert.equal(peak, 2);
    assert.deepEqual(order, ['a', 'b', 'c', 'd', 'e']);
    await q.stop();
  });
});
