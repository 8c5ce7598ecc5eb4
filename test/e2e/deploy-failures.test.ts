import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import type { JsonObject } from '../../src/manifests/types.js';
import { describeTiers, e2eLab, labArgs, variant, type E2eLab } from './helpers.js';

/**
 * `alb-rollout deploy` when things go wrong (issue "deploy", failure modes): every case ends with a message that
 * says what was expected, what was seen and what to do, with the right exit code (0 ok · 1 failed · 2 invalid
 * input, nothing applied · 3 cluster/AWS unreachable), and none outlives its deadline.
 */

const GATE_LABEL = 'elbv2.k8s.aws/pod-readiness-gate-inject';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout + stderr, for message assertions. */
  out: string;
  seconds: number;
}

interface Report {
  result: string;
  exitCode: number;
  error?: string;
  applied: string[];
  apiCalls: {
    kubernetes: Record<string, number>;
    elbv2: Record<string, number>;
    throttled: { elbv2: number };
    retried: { kubernetes: Record<string, number>; elbv2: Record<string, number> };
  };
}

async function deploy(l: E2eLab, args: string[], killAfterMs = 90_000): Promise<Run> {
  const started = Date.now();
  const r = await l.cli(['deploy', ...args, ...labArgs(l)], { timeoutMs: killAfterMs });
  return { ...r, out: `${r.stdout}\n${r.stderr}`, seconds: (Date.now() - started) / 1000 };
}

/** The safe 2048 example in namespace `ns` (images tagged `ns`), with optional edits; returns its folder. */
async function app(l: E2eLab, ns: string, edit: (file: string, text: string) => string = (_f, t) => t): Promise<string> {
  return variant('2048/safe', l.dir, ns, (file, text) => edit(file, text.replaceAll('game-2048', ns)));
}

const sum = (r: Record<string, number> | undefined): number => Object.values(r ?? {}).reduce((a, b) => a + b, 0);

function replicasOf(l: E2eLab, ns: string, name: string): unknown {
  return (l.lab.store.get('Deployment', ns, name)?.spec as JsonObject | undefined)?.replicas;
}

function objectsIn(l: E2eLab, ns: string): string[] {
  return ['Service', 'Ingress', 'Deployment'].flatMap((k) => l.lab.store.list(k, ns).items.map((o) => `${k} ${o.metadata.name}`));
}

describeTiers('deploy failure modes (one lab, one namespace per case)', (tier) => {
  let l: E2eLab;
  before(async () => {
    l = await e2eLab({}, tier);
  });
  after(async () => {
    await l.stop();
  });

  it('--readiness-gates require with an unlabelled namespace: exit 1, names it and the kubectl label fix, applies nothing; the fix works', { timeout: 60_000 }, async () => {
    const dir = await app(l, 'unlabelled', (f, t) => (f.startsWith('1-') ? t.replace(/\n {2}labels:\n.*pod-readiness-gate-inject: enabled\n?/, '\n') : t));
    assert.doesNotMatch(await readFile(join(dir, '1-namespace.yaml'), 'utf8'), /pod-readiness-gate-inject/);
    const ns = await l.kubectl(['apply', '--server-side', '-f', join(dir, '1-namespace.yaml')]);
    assert.equal(ns.code, 0, ns.stderr);

    const r = await deploy(l, ['-f', dir, '--readiness-gates', 'require', '--rollout-timeout', '60']);
    assert.equal(r.code, 1, r.out);
    assert.match(r.stdout, /namespace unlabelled lacks the label elbv2\.k8s\.aws\/pod-readiness-gate-inject=enabled/);
    assert.match(r.stdout, /kubectl label namespace unlabelled elbv2\.k8s\.aws\/pod-readiness-gate-inject=enabled/);
    assert.match(r.stdout, /applied before the failure: nothing/);
    assert.deepEqual(objectsIn(l, 'unlabelled'), []);
    assert.ok(r.seconds < 20, `took ${r.seconds}s`);

    // Doing what the message says makes the same command pass, and the label stays.
    const label = await l.kubectl(['label', 'namespace', 'unlabelled', `${GATE_LABEL}=enabled`]);
    assert.equal(label.code, 0, label.stderr);
    const again = await deploy(l, ['-f', dir, '--readiness-gates', 'require', '--rollout-timeout', '60']);
    assert.equal(again.code, 0, again.out);
    assert.equal(l.lab.store.get('Namespace', '', 'unlabelled')?.metadata.labels?.[GATE_LABEL], 'enabled');
  });

  it('--readiness-gates inject labels a pre-existing namespace that is not in the manifests', { timeout: 60_000 }, async () => {
    const created = await l.kubectl(['create', 'namespace', 'existing']);
    assert.equal(created.code, 0, created.stderr);
    const dir = await app(l, 'existing');
    await rm(join(dir, '1-namespace.yaml'));
    const r = await deploy(l, ['-f', dir, '--readiness-gates', 'inject', '--rollout-timeout', '60']);
    assert.equal(r.code, 0, r.out);
    assert.match(r.stderr, /labelled namespace existing elbv2\.k8s\.aws\/pod-readiness-gate-inject=enabled/);
    assert.equal(l.lab.store.get('Namespace', '', 'existing')?.metadata.labels?.[GATE_LABEL], 'enabled');
    const pods = l.lab.store.list('Pod', 'existing').items;
    assert.ok(pods.length > 0 && pods.every((p) => JSON.stringify((p.spec as JsonObject | undefined)?.readinessGates ?? []).includes('target-health.elbv2.k8s.aws/')), 'every pod carries the gate');
  });

  it('an Ingress the controller rejects fails fast in the routing phase with the FailedBuildModel message (exit 1)', { timeout: 60_000 }, async () => {
    // instance targets need a NodePort/LoadBalancer Service (LBC #4103); the lint rule that would stop this earlier is disabled.
    const dir = await app(l, 'rejected', (_f, t) => t.replace('target-type: ip', 'target-type: instance'));
    const r = await deploy(l, ['-f', dir, '--disable', 'target-type-ip', '--routing-timeout', '60', '--rollout-timeout', '60']);
    assert.equal(r.code, 1, r.out);
    assert.match(r.stdout, /failed in phase routing/);
    assert.match(r.stdout, /FailedBuildModel — Failed build model due to ingress: rejected\/ingress-2048: TargetGroup port is empty\. When using Instance targets, your service be must of type 'NodePort' or 'LoadBalancer'/);
    assert.match(r.stdout, /kubectl describe ingress -n rejected ingress-2048/);
    assert.equal(l.lab.store.list('Deployment', 'rejected').items.length, 0, 'no workload applied after a failed routing phase');
    assert.ok(r.seconds < 15, `took ${r.seconds}s with a 60s routing timeout`);
  });

  it('a bad kubeconfig (missing file, unreachable server) exits 3 naming it and the fix; nothing applied', { timeout: 60_000 }, async () => {
    const dir = await app(l, 'unreachable');
    const missing = join(l.dir, 'no-such-kubeconfig');
    const a = await l.cli(['deploy', '-f', dir, '--kubeconfig', missing], { timeoutMs: 30_000 });
    assert.equal(a.code, 3, `${a.stdout}\n${a.stderr}`);
    assert.match(a.stderr, new RegExp(`cannot load kubeconfig ${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    assert.match(a.stderr, /Fix: pass --kubeconfig PATH, set KUBECONFIG/);

    const text = await readFile(l.kubeconfig, 'utf8');
    const bad = join(l.dir, 'unreachable-kubeconfig');
    // The embedded server speaks plain HTTP, the real one HTTPS: keep the scheme (and TLS settings) of the lab's kubeconfig.
    const scheme = tier === 'real' ? 'https' : 'http';
    await writeFile(bad, text.replace(/server: \S+/, `server: ${scheme}://127.0.0.1:1`));
    const started = Date.now();
    const b = await l.cli(['deploy', '-f', dir, '--kubeconfig', bad, '--time-scale', '20'], { timeoutMs: 30_000 });
    const seconds = (Date.now() - started) / 1000;
    assert.equal(b.code, 3, `${b.stdout}\n${b.stderr}`);
    assert.match(b.stdout, new RegExp(`cannot reach the Kubernetes API server ${scheme}://127\\.0\\.0\\.1:1`));
    assert.match(b.stdout, new RegExp(`from kubeconfig ${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    assert.match(b.stdout, /ECONNREFUSED/);
    assert.match(b.stdout, /Fix: check that the cluster is up/);
    assert.match(b.stdout, /applied before the failure: nothing/);
    assert.equal(l.lab.store.get('Namespace', '', 'unreachable'), undefined);
    assert.ok(seconds < 15, `took ${seconds}s`);

    if (tier === 'real') {
      // A plain http:// server next to the real tier's CA data: a configuration error named before any request.
      const http = join(l.dir, 'http-kubeconfig');
      await writeFile(http, text.replace(/server: \S+/, 'server: http://127.0.0.1:1'));
      const c = await l.cli(['deploy', '-f', dir, '--kubeconfig', http], { timeoutMs: 30_000 });
      assert.equal(c.code, 2, `${c.stdout}\n${c.stderr}`);
      assert.match(c.stderr, /is plain http:\/\/ but the cluster entry does not set insecure-skip-tls-verify/);
      assert.doesNotMatch(c.stderr, /\n\s+at /, 'no stack trace');
    }
  });

  it('a server-side apply conflict exits 1 with the --force-conflicts fix; with the flag it succeeds', { timeout: 60_000 }, async () => {
    const dir = await app(l, 'conflict');
    const ns = await l.kubectl(['apply', '--server-side', '-f', join(dir, '1-namespace.yaml')]);
    assert.equal(ns.code, 0, ns.stderr);
    const other = join(l.dir, 'conflict-other.yaml');
    await writeFile(other, (await readFile(join(dir, '4-deployment.yaml'), 'utf8')).replace('replicas: 5', 'replicas: 2'));
    const owned = await l.kubectl(['apply', '--server-side', '--field-manager', 'other', '-f', other]);
    assert.equal(owned.code, 0, owned.stderr);

    const r = await deploy(l, ['-f', dir, '--rollout-timeout', '60']);
    assert.equal(r.code, 1, r.out);
    assert.match(r.stdout, /4-deployment\.yaml:\d+ Deployment conflict\/deployment-2048: another field manager owns fields/);
    assert.match(r.stdout, /conflict with "other": \.spec\.replicas/);
    assert.match(r.stdout, /re-run with --force-conflicts/);
    assert.match(r.stdout, /applied before the failure: nothing/);
    assert.equal(replicasOf(l, 'conflict', 'deployment-2048'), 2);

    const forced = await deploy(l, ['-f', dir, '--force-conflicts', '--rollout-timeout', '60']);
    assert.equal(forced.code, 0, forced.out);
    assert.equal(replicasOf(l, 'conflict', 'deployment-2048'), 5);
  });

  it('--dry-run creates nothing; a manifest the API server rejects exits 2 with file:line', { timeout: 60_000 }, async () => {
    const fresh = await app(l, 'dry');
    const r = await deploy(l, ['-f', fresh, '--dry-run']);
    assert.equal(r.code, 0, r.out);
    assert.equal(l.lab.store.get('Namespace', '', 'dry'), undefined);
    assert.deepEqual(objectsIn(l, 'dry'), []);
    // Objects in a namespace that does not exist yet cannot be validated by a dry-run: it says so.
    assert.match(r.stderr, /3 object\(s\) in namespace\(s\) dry were not validated by the API server/);

    // In an existing namespace everything is validated; a Deployment whose selector does not match its template is invalid.
    const nsCreated = await l.kubectl(['create', 'namespace', 'invalid']);
    assert.equal(nsCreated.code, 0, nsCreated.stderr);
    const dir = await app(l, 'invalid', (f, t) => (f.startsWith('4-') ? t.replace(/( {4}matchLabels:\n {6}app\.kubernetes\.io\/name: app-2048\n)/, '$1      tier: web\n') : t));
    const text = await readFile(join(dir, '4-deployment.yaml'), 'utf8');
    assert.match(text, /tier: web/);
    const bad = await deploy(l, ['-f', dir, '--dry-run']);
    assert.equal(bad.code, 2, bad.out);
    const m = /4-deployment\.yaml:(\d+) Deployment invalid\/deployment-2048: the API server rejects it: .*`selector` does not match template `labels`/.exec(bad.stdout);
    assert.ok(m, bad.stdout);
    const lines = text.split('\n');
    const template = lines.findIndex((x) => x.startsWith('  template:')) + 1;
    const podSpec = lines.findIndex((x, i) => i >= template && x.startsWith('    spec:')) + 1;
    const at = Number(m[1]);
    assert.ok(at > template && at < podSpec, `line ${at} is inside template.metadata (lines ${template}–${podSpec})`);
    assert.match(bad.stdout, /nothing was applied/);
    assert.deepEqual(objectsIn(l, 'invalid'), []);
    // The same manifests without --dry-run stop at the same point.
    const real = await deploy(l, ['-f', dir]);
    assert.equal(real.code, 2, real.out);
    assert.deepEqual(objectsIn(l, 'invalid'), []);
  });

  it('a rollout that never becomes healthy: crash-looping pods (or ProgressDeadlineExceeded) are named with why (exit 1)', { timeout: 60_000 }, async () => {
    const dir = await app(l, 'crash', (f, t) =>
      f.startsWith('4-')
        ? t.replace('progressDeadlineSeconds: 600', 'progressDeadlineSeconds: 60').replace('        - name: app-2048\n', '        - name: app-2048\n          env:\n            - name: LAB_BEHAVIOR\n              value: crash\n')
        : t,
    );
    const r = await deploy(l, ['-f', dir, '--rollout-timeout', '120']);
    assert.equal(r.code, 1, r.out);
    assert.match(r.stdout, /failed in phase workloads/);
    // Whichever comes first: the crash-loop check (a few restarts) or Kubernetes' progress deadline (60 s simulated).
    assert.match(r.stdout, /crash-loop \(CrashLoopBackOff after \d\+ restarts\)|ProgressDeadlineExceeded[^\n]*progressDeadlineSeconds=60s/);
    assert.match(r.stdout, /Nothing to roll back to \(first install\)/);
    assert.match(r.stdout, /new pod\(s\) not ready — container app-2048 (CrashLoopBackOff|Error|RunContainerError)[^\n]*: deployment-2048-[a-z0-9]+-[a-z0-9]+ \(/);
    assert.match(r.stdout, /kubectl logs -n crash deployment-2048-\S+ --previous/);
    assert.match(r.stdout, /kubectl rollout undo deployment\/deployment-2048 -n crash/);
    assert.ok(r.seconds < 30, `took ${r.seconds}s (progress deadline 3 s real, rollout timeout 120 s)`);
  });

  it('targets that stay unhealthy: the rollout timeout names the targets and the AWS reason code (exit 1)', { timeout: 60_000 }, async () => {
    // The readinessProbe passes, but the ALB health check only accepts 204: every target is Target.ResponseCodeMismatch.
    const dir = await app(l, 'unhealthy', (f, t) => (f.startsWith('3-') ? t.replace('healthcheck-path: /\n', 'healthcheck-path: /\n    alb.ingress.kubernetes.io/success-codes: "204"\n') : t));
    const reportFile = join(l.dir, 'unhealthy.json');
    const r = await deploy(l, ['-f', dir, '--rollout-timeout', '6', '--report', reportFile]);
    assert.equal(r.code, 1, r.out);
    assert.match(r.stdout, /rolling out Deployment unhealthy\/deployment-2048: expected to be done within 6s/);
    assert.match(r.stdout, /5 target\(s\) unhealthy \(Target\.ResponseCodeMismatch: Health checks failed with these codes: \[200\]\): ((127\.\d+|198\.1[89])\.\d+\.\d+:80(, )?){5}/);
    assert.match(r.stdout, /success codes 204/);
    assert.match(r.stdout, /aws elbv2 describe-target-health --target-group-arn arn:aws:elasticloadbalancing:/);
    // Progress lines said what was pending, and for how long.
    assert.match(r.stderr, /… rolling out Deployment unhealthy\/deployment-2048 \(\d+s\): .*unhealthy \(Target\.ResponseCodeMismatch/);
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report;
    assert.equal(report.result, 'failed');
    assert.equal(report.exitCode, 1);
    assert.ok(r.seconds < 20, `took ${r.seconds}s with a 6 s rollout timeout`);
  });
});

describeTiers('deploy with the readiness-gate webhook down', (tier) => {
  let l: E2eLab;
  before(async () => {
    l = await e2eLab({ webhookEnabled: false }, tier);
  });
  after(async () => {
    await l.stop();
  });

  it('stops as soon as a new pod lacks the gate, long before the rollout timeout (exit 1)', { timeout: 60_000 }, async () => {
    const r = await deploy(l, ['-f', 'examples/2048/safe', '--rollout-timeout', '120']);
    assert.equal(r.code, 1, r.out);
    assert.match(r.stdout, /failed in phase workloads/);
    assert.match(r.stdout, /new pod game-2048\/deployment-2048-\S+ was created without it: the AWS Load Balancer Controller's pod webhook \(mpod\.elbv2\.k8s\.aws\) did not run/);
    assert.match(r.stdout, /kubectl rollout restart deployment\/deployment-2048 -n game-2048/);
    assert.ok(r.seconds < 20, `took ${r.seconds}s with a 120 s rollout timeout`);
  });
}, { emulatedLbcOnly: "it turns the emulation's webhook off (the real controller's webhook is its own process)" });

describeTiers('deploy during an ELBv2 throttling storm (40 % of calls, the controller included)', (tier) => {
  let l: E2eLab;
  before(async () => {
    l = await e2eLab({ awsFaults: { elbv2: { throttleRate: 0.4 } } }, tier);
  });
  after(async () => {
    await l.stop();
  });

  it('still succeeds with backoff, and reports how many calls were throttled', { timeout: 90_000 }, async (t) => {
    const install = await deploy(l, ['-f', 'examples/2048/safe', '--rollout-timeout', '60', '--routing-timeout', '60']);
    assert.equal(install.code, 0, install.out);
    const v2 = await variant('2048/safe', l.dir, 'v2');
    const reportFile = join(l.dir, 'throttled.json');
    const update = await deploy(l, ['-f', v2, '--rollout-timeout', '60', '--report', reportFile]);
    assert.equal(update.code, 0, update.out);
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report;
    const attempts = sum(report.apiCalls.elbv2);
    assert.ok(report.apiCalls.throttled.elbv2 > 0, `no throttled call reported (${attempts} ELBv2 attempts)`);
    assert.ok(report.apiCalls.throttled.elbv2 < attempts, 'some calls got through');
    assert.match(update.stdout, /\d+ ELBv2 call\(s\) throttled and retried with backoff/);
    // The controller shares the account and was throttled too.
    const lab = l.lab.aws.calls;
    assert.ok(Object.keys(lab.throttled).length > 0, JSON.stringify(lab.throttled));
    t.diagnostic(`update: ${report.apiCalls.throttled.elbv2} of ${attempts} ELBv2 attempts throttled (${JSON.stringify(report.apiCalls.retried.elbv2)}); ${install.seconds}s + ${update.seconds}s; lab account throttled ${JSON.stringify(lab.throttled)}`);
    assert.ok(install.seconds + update.seconds < 75, `took ${install.seconds}s + ${update.seconds}s`);
  });
});

describeTiers('deploy while the Kubernetes API server fails 15 % of requests and drops watches', (tier) => {
  let l: E2eLab;
  let compactor: NodeJS.Timeout | undefined;
  before(async () => {
    l = await e2eLab({ apiFaults: { errorRate: 0.15, dropWatchAfterMs: 700 } }, tier);
  });
  after(async () => {
    clearInterval(compactor);
    await l.stop();
  });

  it('retries, reconnects and re-lists (410 Gone), and still succeeds', { timeout: 90_000 }, async (t) => {
    const install = await deploy(l, ['-f', 'examples/2048/safe', '--rollout-timeout', '60', '--routing-timeout', '60']);
    assert.equal(install.code, 0, install.out);
    // Compact the event log often: a watch that reconnects from its last resourceVersion gets 410 Gone and must re-list.
    compactor = setInterval(() => l.lab.objectStore?.compact(), 300);
    compactor.unref();
    const v2 = await variant('2048/safe', l.dir, 'v2');
    const reportFile = join(l.dir, 'api-faults.json');
    const update = await deploy(l, ['-f', v2, '--rollout-timeout', '60', '--report', reportFile]);
    clearInterval(compactor);
    assert.equal(update.code, 0, update.out);
    const report = JSON.parse(await readFile(reportFile, 'utf8')) as Report;
    const k = report.apiCalls.kubernetes;
    assert.ok(sum(report.apiCalls.retried.kubernetes) > 0, `no retried request: ${JSON.stringify(report.apiCalls)}`);
    // 7 informers (routing 3, workloads 4) open one watch each; more means dropped watches were re-opened.
    assert.ok((k.watch ?? 0) > 7, `watches: ${k.watch}`);
    // Besides the informers' first lists (7) and the workload's pod list (1): re-lists after 410 Gone.
    const lists = (k.list ?? 0) - (report.apiCalls.retried.kubernetes.list ?? 0);
    assert.ok(lists > 8, `successful lists: ${lists} (${JSON.stringify(k)})`);
    assert.match(update.stdout, /Kubernetes request\(s\) retried after 429\/5xx\/reset/);
    t.diagnostic(`update: calls ${JSON.stringify(k)}, retried ${JSON.stringify(report.apiCalls.retried.kubernetes)}; ${install.seconds}s + ${update.seconds}s`);
    assert.ok(install.seconds + update.seconds < 75, `took ${install.seconds}s + ${update.seconds}s`);
  });
}, { embeddedOnly: 'API error rates, dropped watches and compaction are injected by the embedded API server' });
