/**
 * Does the lab behave like EKS + LBC + ALB where the product depends on it? Seen through the real clients:
 * kubectl for Kubernetes, the unmodified AWS SDK for ELBv2, plain HTTP through the ALB data plane, and the
 * `lab experiment` verb as a user runs it.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { DescribeTargetHealthCommand, ElasticLoadBalancingV2Client, type TargetHealthDescription } from '@aws-sdk/client-elastic-load-balancing-v2';
import { waitFor } from '../helpers/wait.js';
import { describeTiers, e2eLab, runCliFromSource, testLbc, traffic, type E2eLab } from './helpers.js';

const NEW_IMAGE = 'public.ecr.aws/l6m2t8p7/docker-2048:v2';

interface PodJson {
  metadata: { name: string; deletionTimestamp?: string };
  spec: { readinessGates?: Array<{ conditionType: string }> };
  status: { podIP?: string };
}

function sdk(l: E2eLab): ElasticLoadBalancingV2Client {
  return new ElasticLoadBalancingV2Client({
    region: l.lab.region,
    endpoint: l.lab.aws.elbv2Url,
    credentials: { accessKeyId: 'lab', secretAccessKey: 'lab' },
    maxAttempts: 5,
  });
}

async function targetHealth(client: ElasticLoadBalancingV2Client, arn: string): Promise<TargetHealthDescription[]> {
  return (await client.send(new DescribeTargetHealthCommand({ TargetGroupArn: arn }))).TargetHealthDescriptions ?? [];
}

const keyOf = (d: TargetHealthDescription): string => `${d.Target?.Id}:${d.Target?.Port}`;

async function ok(l: E2eLab, args: string[], timeoutMs = 60_000): Promise<string> {
  const r = await l.kubectl(args, timeoutMs);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

async function pods(l: E2eLab, namespace: string): Promise<PodJson[]> {
  return (JSON.parse(await ok(l, ['get', 'pods', '-n', namespace, '-o', 'json'])) as { items: PodJson[] }).items;
}

async function tgbArn(l: E2eLab, namespace: string): Promise<string> {
  return waitFor(
    async () => {
      const list = JSON.parse(await ok(l, ['get', 'targetgroupbindings', '-n', namespace, '-o', 'json'])) as { items: Array<{ spec: { targetGroupARN?: string } }> };
      return list.items[0]?.spec.targetGroupARN;
    },
    { timeoutMs: 15_000, what: `a TargetGroupBinding in ${namespace}` },
  );
}

/** Namespace, Service and an ip-mode Ingress for `app`, as YAML. */
function routing(ns: string, opts: { gateLabel: boolean; tgAttributes?: string }): string {
  return `apiVersion: v1
kind: Namespace
metadata:
  name: ${ns}
${opts.gateLabel ? '  labels:\n    elbv2.k8s.aws/pod-readiness-gate-inject: enabled\n' : ''}---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: ${ns}}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 80, protocol: TCP}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: ${ns}
  annotations:
    alb.ingress.kubernetes.io/scheme: internet-facing
    alb.ingress.kubernetes.io/target-type: ip
${opts.tgAttributes ? `    alb.ingress.kubernetes.io/target-group-attributes: ${opts.tgAttributes}\n` : ''}spec:
  ingressClassName: alb
  rules:
    - http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
`;
}

function deployment(ns: string, replicas: number, graceSeconds: number, preStopSleepSeconds?: number): string {
  return `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: ${ns}}
spec:
  replicas: ${replicas}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: ${graceSeconds}
      containers:
        - name: web
          image: example.com/web:v1
          ports: [{containerPort: 80}]
          readinessProbe: {httpGet: {path: /, port: 80}, periodSeconds: 2}
${preStopSleepSeconds === undefined ? '' : `          lifecycle: {preStop: {exec: {command: [/bin/sh, -c, "sleep ${preStopSleepSeconds}"]}}}\n`}`;
}

function pod(ns: string, name: string): string {
  return `apiVersion: v1
kind: Pod
metadata: {name: ${name}, namespace: ${ns}, labels: {app: web}}
spec:
  containers:
    - name: web
      image: example.com/web:v1
      ports: [{containerPort: 80}]
`;
}

async function apply(l: E2eLab, name: string, yaml: string): Promise<void> {
  const file = join(l.dir, `${name}.yaml`);
  await writeFile(file, yaml);
  await ok(l, ['apply', '--server-side', '-f', file]);
}

describeTiers('lab fidelity: target states through the real AWS SDK during a kubectl rollout', (tier) => {
  let l: E2eLab;
  let client: ElasticLoadBalancingV2Client;
  before(async () => {
    l = await e2eLab({}, tier);
    client = sdk(l);
  });
  after(async () => {
    client.destroy();
    await l.stop();
  });

  it('new targets go initial → healthy, old ones draining → gone', async () => {
    await ok(l, ['apply', '--server-side', '-f', 'examples/2048/safe']);
    await ok(l, ['rollout', 'status', 'deployment/deployment-2048', '-n', 'game-2048', '--timeout=60s'], 70_000);
    const arn = await tgbArn(l, 'game-2048');
    const oldIps = new Set((await pods(l, 'game-2048')).filter((p) => !p.metadata.deletionTimestamp).map((p) => p.status.podIP as string));
    assert.equal(oldIps.size, 5);
    await waitFor(async () => {
      const th = await targetHealth(client, arn);
      return th.length === 5 && th.every((d) => d.TargetHealth?.State === 'healthy' && oldIps.has(d.Target?.Id ?? ''));
    }, { timeoutMs: 20_000, what: 'the 5 first pods healthy in the target group' });

    // Poll DescribeTargetHealth as fast as it answers; record each target's sequence of states.
    const seqs = new Map<string, string[]>();
    const reasons = new Map<string, Set<string>>();
    let polling = true;
    let polls = 0;
    const poller = (async () => {
      while (polling) {
        const th = await targetHealth(client, arn);
        polls++;
        const seen = new Set<string>();
        for (const d of th) {
          const k = keyOf(d);
          seen.add(k);
          const s = seqs.get(k) ?? [];
          const state = d.TargetHealth?.State ?? '?';
          if (s[s.length - 1] !== state) s.push(state);
          seqs.set(k, s);
          const r = reasons.get(state) ?? new Set<string>();
          r.add(d.TargetHealth?.Reason ?? '');
          reasons.set(state, r);
        }
        for (const [k, s] of seqs) if (!seen.has(k) && s[s.length - 1] !== 'gone') s.push('gone');
        await new Promise((r) => setTimeout(r, 15));
      }
    })();
    try {
      await ok(l, ['set', 'image', 'deployment/deployment-2048', '-n', 'game-2048', `app-2048=${NEW_IMAGE}`]);
      await ok(l, ['rollout', 'status', 'deployment/deployment-2048', '-n', 'game-2048', '--timeout=90s'], 100_000);
      await waitFor(
        () => [...oldIps].every((ip) => seqs.get(`${ip}:80`)?.at(-1) === 'gone') || undefined,
        { timeoutMs: 30_000, what: 'every old target to leave the target group', describe: () => JSON.stringify(Object.fromEntries(seqs)) },
      );
    } finally {
      polling = false;
      await poller;
    }
    const newIps = (await pods(l, 'game-2048')).filter((p) => !p.metadata.deletionTimestamp).map((p) => p.status.podIP as string);
    assert.equal(newIps.length, 5);
    const all = JSON.stringify(Object.fromEntries(seqs));
    assert.ok(polls > 20, `only ${polls} polls`);
    for (const ip of newIps) {
      assert.ok(!oldIps.has(ip), `new pod reuses old IP ${ip}`);
      assert.deepEqual(seqs.get(`${ip}:80`), ['initial', 'healthy'], `new target ${ip}: ${all}`);
    }
    for (const ip of oldIps) assert.deepEqual(seqs.get(`${ip}:80`), ['healthy', 'draining', 'gone'], `old target ${ip}: ${all}`);
    for (const r of reasons.get('initial') ?? []) assert.ok(['Elb.RegistrationInProgress', 'Elb.InitialHealthChecking'].includes(r), `initial reason ${r}`);
    assert.deepEqual([...(reasons.get('draining') ?? [])], ['Target.DeregistrationInProgress']);
  });
});

describeTiers('lab fidelity: gates, kills without preStop, deregistration delay vs grace period', (tier) => {
  let l: E2eLab;
  let client: ElasticLoadBalancingV2Client;
  before(async () => {
    l = await e2eLab({}, tier);
    client = sdk(l);
  });
  after(async () => {
    client.destroy();
    await l.stop();
  });

  it('injects no gate when the namespace is unlabelled, even with the TargetGroupBinding in place', async () => {
    await apply(l, 'plain-routing', routing('plain', { gateLabel: false }));
    await tgbArn(l, 'plain');
    await apply(l, 'plain-pod', pod('plain', 'after-tgb'));
    const [p] = await pods(l, 'plain');
    assert.equal(p?.metadata.name, 'after-tgb');
    assert.equal(p?.spec.readinessGates, undefined);
  });

  it('injects no gate into a pod created before the Ingress reconciled; one created after gets it', async () => {
    // Labelled namespace, Service and pod first; the Ingress (→ TargetGroupBinding) only afterwards.
    const all = routing('late', { gateLabel: true }).split('---\n');
    await apply(l, 'late-ns-svc', `${all[0]}---\n${all[1]}`);
    await apply(l, 'late-early-pod', pod('late', 'before-tgb'));
    await apply(l, 'late-ingress', all[2] as string);
    await tgbArn(l, 'late');
    await apply(l, 'late-late-pod', pod('late', 'after-tgb'));
    const byName = new Map((await pods(l, 'late')).map((p) => [p.metadata.name, p]));
    assert.equal(byName.get('before-tgb')?.spec.readinessGates, undefined, 'no gate: the TargetGroupBinding did not exist at pod creation');
    assert.match(byName.get('after-tgb')?.spec.readinessGates?.[0]?.conditionType ?? '', /^target-health\.elbv2\.k8s\.aws\/k8s-late-web-[0-9a-f]{10}$/);
    // Gates are added at CREATE only: the early pod stays ungated.
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await pods(l, 'late')).find((p) => p.metadata.name === 'before-tgb')?.spec.readinessGates, undefined);
  });

  it('a pod deleted without preStop under traffic yields 502 (connection refused) while its target is still routed', async () => {
    // No preStop, no gate label: the naive setup. The process exits at SIGTERM; until the pod's sandbox is torn
    // down its IP refuses connections (502), then it is a blackhole (504) until the deregistration reaches the ALB.
    await apply(l, 'kill-routing', routing('kill', { gateLabel: false }));
    await apply(l, 'kill-deploy', deployment('kill', 2, 30));
    await ok(l, ['rollout', 'status', 'deployment/web', '-n', 'kill', '--timeout=60s'], 70_000);
    const arn = await tgbArn(l, 'kill');
    await waitFor(async () => {
      const th = await targetHealth(client, arn);
      return th.length === 2 && th.every((d) => d.TargetHealth?.State === 'healthy');
    }, { timeoutMs: 20_000, what: 'both targets healthy' });
    const url = await waitFor(() => l.lab.albs().find((a) => a.ingress === 'kill/web')?.url, { timeoutMs: 10_000, what: 'the kill/web ALB' });
    // The data plane learns health a propagation delay after DescribeTargetHealth shows it: wait for both to answer.
    await waitFor(
      async () => {
        const answered = new Set<string>();
        for (let i = 0; i < 10; i++) {
          const res = await fetch(url);
          await res.arrayBuffer();
          if (res.status !== 200) return undefined;
          answered.add(res.headers.get('x-lab-target') ?? '');
        }
        return answered.size === 2 || undefined;
      },
      { timeoutMs: 15_000, what: 'both targets to answer through the ALB' },
    );
    const load = traffic(url, 100);
    try {
      await waitFor(() => load.records.length >= 50 || undefined, { timeoutMs: 10_000, what: 'traffic to start' });
      assert.deepEqual(load.records.filter((r) => r.status !== 200), [], 'all 200 before the deletion');
      const victim = (await pods(l, 'kill'))[0] as PodJson;
      const ip = victim.status.podIP as string;
      const deletedAt = Date.now();
      await ok(l, ['delete', 'pod', victim.metadata.name, '-n', 'kill', '--wait=false']);
      await waitFor(async () => !(await targetHealth(client, arn)).some((d) => d.Target?.Id === ip) || undefined, {
        timeoutMs: 30_000,
        what: 'the deleted pod\'s target to leave the target group',
      });
      // Let the requests sent into the window finish (504 comes after the 10 s connect timeout, i.e. 0.5 s here).
      const sentBy = load.records.length;
      await waitFor(() => load.records.length >= sentBy + 60 || undefined, { timeoutMs: 10_000, what: 'more requests' });
      const summary = await load.stop();
      const failed = load.records.filter((r) => r.status !== 200);
      assert.ok(failed.every((r) => r.at >= deletedAt - 50), 'failures only after the deletion');
      assert.ok((summary.responses['502'] ?? 0) >= 1, `expected 502 (connection refused by the exited process), saw ${JSON.stringify(summary.responses)}`);
      const fivexx = Object.entries(summary.responses).filter(([c]) => /^5/.test(c)).reduce((a, [, n]) => a + n, 0);
      assert.equal(fivexx, summary.non2xx, `only ALB 5xx expected: ${JSON.stringify(summary.responses)}`);
    } finally {
      await load.stop();
    }
  });

  it('a deregistration delay longer than the grace period leaves the target draining after its pod is gone', async () => {
    // delay 60 s > grace 10 s (preStop sleep 5 s): the LBC deregisters during the preStop, the pod is gone ~10 s
    // later, the target group shows it draining for the rest of the 60 s.
    await apply(l, 'drain-routing', routing('drain', { gateLabel: false, tgAttributes: 'deregistration_delay.timeout_seconds=60' }));
    await apply(l, 'drain-deploy', deployment('drain', 2, 10, 5));
    await ok(l, ['rollout', 'status', 'deployment/web', '-n', 'drain', '--timeout=60s'], 70_000);
    const arn = await tgbArn(l, 'drain');
    await waitFor(async () => {
      const th = await targetHealth(client, arn);
      return th.length === 2 && th.every((d) => d.TargetHealth?.State === 'healthy');
    }, { timeoutMs: 20_000, what: 'both targets healthy' });
    const victim = (await pods(l, 'drain'))[0] as PodJson;
    const ip = victim.status.podIP as string;
    const deletedAt = Date.now();
    await ok(l, ['delete', 'pod', victim.metadata.name, '-n', 'drain', '--wait=false']);
    await waitFor(async () => (await ok(l, ['get', 'pod', victim.metadata.name, '-n', 'drain', '--ignore-not-found'])).trim() === '' || undefined, {
      timeoutMs: 15_000,
      what: 'the pod object to be removed',
    });
    const goneAfter = l.lab.clock.simulatedSeconds(Date.now() - deletedAt);
    const afterGone = (await targetHealth(client, arn)).find((d) => d.Target?.Id === ip);
    assert.equal(afterGone?.TargetHealth?.State, 'draining', `the target outlives its pod (gone after ~${goneAfter.toFixed(1)} simulated s): ${JSON.stringify(afterGone)}`);
    assert.equal(afterGone?.TargetHealth?.Reason, 'Target.DeregistrationInProgress');
    await waitFor(async () => !(await targetHealth(client, arn)).some((d) => d.Target?.Id === ip) || undefined, {
      timeoutMs: 15_000,
      what: 'the drained target to leave after the deregistration delay',
    });
    const leftAfter = l.lab.clock.simulatedSeconds(Date.now() - deletedAt);
    assert.ok(leftAfter >= 55, `the target left ${leftAfter.toFixed(1)} simulated s after the deletion; expected the 60 s delay`);
  });
});

describeTiers('lab fidelity: `alb-rollout lab experiment --format json`', (tier) => {
  it('naive serves 5xx, safe serves none, ≥ 1000 requests each, in < 3 minutes', async () => {
    const started = Date.now();
    const lbc = tier === 'real' && testLbc() === 'real' ? ['--lbc', 'real'] : [];
    const run = await runCliFromSource(['lab', 'experiment', '--format', 'json', '--control-plane', tier, ...lbc], 180_000);
    const seconds = (Date.now() - started) / 1000;
    assert.equal(run.code, 0, `lab experiment exited ${run.code}:\n${run.stderr.slice(-3000)}`);
    assert.ok(seconds < 180, `took ${seconds}s`);
    const result = JSON.parse(run.stdout.trim().split('\n').pop() as string) as { scenarios: Array<Record<string, unknown>> };
    assert.deepEqual(Object.keys(result), ['scenarios']);
    assert.deepEqual(result.scenarios.map((s) => s.name), ['naive', 'safe']);
    for (const s of result.scenarios) {
      for (const k of ['name', 'requests', 'responses', 'non2xx', 'longestErrorWindowSeconds', 'rolloutSeconds', 'timeline']) assert.ok(k in s, `scenario ${String(s.name)} has ${k}`);
      assert.equal(typeof s.requests, 'number');
      assert.equal(typeof s.non2xx, 'number');
      assert.equal(typeof s.longestErrorWindowSeconds, 'number');
      assert.equal(typeof s.rolloutSeconds, 'number');
      assert.ok(Array.isArray(s.timeline) && s.timeline.length > 0);
      for (const e of s.timeline as Array<Record<string, unknown>>) assert.ok(typeof e.t === 'number' && typeof e.realT === 'number' && typeof e.event === 'string');
      // World time (what AWS would take): real × 20; the default 50 requests per real second are 2.5 per world second.
      const w = s.world as { timeScale: number; timings: string; rolloutSeconds: number; longestErrorWindowSeconds: number; requestsPerSecond: number };
      assert.deepEqual([w.timeScale, w.timings, w.requestsPerSecond], [20, 'fast', 2.5]);
      assert.ok(Math.abs(w.rolloutSeconds - (s.rolloutSeconds as number) * 20) <= 1, JSON.stringify(w));
      assert.ok(Math.abs(w.longestErrorWindowSeconds - (s.longestErrorWindowSeconds as number) * 20) <= 1, JSON.stringify(w));
      assert.ok((s.requests as number) >= 1000, `${String(s.name)}: ${String(s.requests)} requests`);
      const responses = s.responses as Record<string, number>;
      assert.equal(Object.values(responses).reduce((a, n) => a + n, 0), s.requests);
    }
    const [naive, safe] = result.scenarios as [Record<string, unknown>, Record<string, unknown>];
    const naive5xx = Object.entries(naive.responses as Record<string, number>).filter(([c]) => /^5/.test(c)).reduce((a, [, n]) => a + n, 0);
    assert.ok(naive5xx > 0, `naive: ${JSON.stringify(naive.responses)}`);
    assert.equal(safe.non2xx, 0, `safe: ${JSON.stringify(safe.responses)}`);
  });
});
