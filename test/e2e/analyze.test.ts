import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { awsClock } from '../../src/aws/clock.js';
import { CloudWatchReader } from '../../src/aws/cloudwatch.js';
import { Elbv2Reader } from '../../src/aws/elbv2.js';
import { runAnalyze } from '../../src/guard/analyze.js';
import { parseGuardOptions } from '../../src/guard/index.js';
import { KubeClient, loadKubeConfig } from '../../src/kube/client.js';
import { startLab, type Lab } from '../../src/lab/index.js';
import { parseOptions } from '../../src/options.js';
import { preflight } from '../../src/preflight/index.js';
import { silentLogger } from '../../src/report/log.js';
import { runDeploy } from '../../src/rollout/deploy.js';
import { waitFor } from '../helpers/wait.js';
import { tierOptions, describeTiers, e2eLab, labArgs, root, variant, type E2eLab } from './helpers.js';

describeTiers('analyze against the lab', (tier) => {
  let lab: Lab;
  let dir: string;
  let kube: KubeClient;
  let elbv2: Elbv2Reader;
  let cloudwatch: CloudWatchReader;

  before(async () => {
    lab = await startLab(await tierOptions(tier));
    dir = await mkdtemp(join(tmpdir(), 'alb-analyze-'));
    const kubeconfig = join(dir, 'kubeconfig');
    await lab.writeKubeconfig(kubeconfig);
    kube = new KubeClient(loadKubeConfig({ kubeconfigPath: kubeconfig }, {}));
    elbv2 = new Elbv2Reader({ region: lab.region, endpoint: lab.aws.elbv2Url, credentials: { accessKeyId: 'lab', secretAccessKey: 'lab' }, minRetryDelayMs: 20, maxRetryDelayMs: 200 });
    cloudwatch = new CloudWatchReader(
      { region: lab.region, endpoint: lab.aws.cloudwatchUrl, credentials: { accessKeyId: 'lab', secretAccessKey: 'lab' } },
      { now: () => lab.alb.simulatedNow() },
    );
  });
  after(async () => {
    elbv2.destroy();
    cloudwatch.destroy();
    await lab.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function deploy(manifests: string): Promise<void> {
    const pre = await preflight(parseOptions({ manifests: [manifests], baseDir: root, tune: 'auto' }, { tune: 'auto' }, []), {});
    const r = await runDeploy(
      pre,
      { dryRun: false, forceConflicts: true, readinessGates: 'inject', timeouts: { routingSeconds: 60, rolloutSeconds: 120 }, timeScale: lab.clock.timings.timeScale },
      { kube, elbv2, log: silentLogger, now: Date.now },
    );
    assert.equal(r.result, 'succeeded', r.error);
  }

  function analyze(windowMs: number) {
    const clock = awsClock(lab.clock.timings.timeScale, lab.alb.epoch.originMs);
    return runAnalyze(
      {
        target: { namespace: 'game-2048', ingress: 'ingress-2048' },
        windowMs,
        guard: parseGuardOptions({ 'probe-rate': '20', 'cloudwatch-settle': '0', 'cloudwatch-period': '60', 'target-health-interval': '500ms' }),
      },
      { kube, elbv2, cloudwatch, clock, log: silentLogger, probeUrlFor: async (h) => lab.albs().find((a) => a.hostname === h)?.url },
    );
  }

  it('passes on a healthy app', async () => {
    await deploy(join(root, 'examples/2048/safe'));
    const r = await analyze(3000);
    assert.equal(r.verdict, 'pass', r.reasons.join('\n'));
    assert.equal(r.targetGroups.length, 1);
    assert.equal(r.targetGroups[0]?.readyEndpoints.length, 5);
    assert.ok(r.measurements.some((m) => m.signal === 'probe' && (m.requests ?? 0) > 0), 'the probe measured');
  });

  it('fails when the app answers 5xx', async () => {
    const broken = await variant('2048/safe', dir, 'broken', (f, t) =>
      f.includes('deployment') ? t.replace(/(\s+)ports:/, '$1env: [{name: LAB_BEHAVIOR, value: error-500}]$1ports:').replace(/path: \/$/m, 'path: /healthz') : t.replace('healthcheck-path: /', 'healthcheck-path: /healthz'),
    );
    await deploy(broken);
    const r = await analyze(4000);
    assert.equal(r.verdict, 'fail');
    assert.match(r.reasons.join('\n'), /probe|5xx|error/i);
  });
});

describeTiers('alb-rollout analyze (CLI) exit codes', (tier) => {
  let l: E2eLab;
  before(async () => {
    l = await e2eLab({}, tier);
    const r = await l.cli(['deploy', '-f', 'examples/2048/safe', ...labArgs(l), '--guard', 'off']);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  });
  after(async () => {
    await l.stop();
  });

  const analyzeArgs = (extra: string[] = []): string[] => ['analyze', '-n', 'game-2048', '--ingress', 'ingress-2048', '--window', '2s', '--cloudwatch-settle', '0', ...extra];

  it('passes (exit 0) on the healthy app, with JSON evidence', async () => {
    const r = await l.cli([...analyzeArgs(['--format', 'json']), '--lab', join(l.dir, 'state')]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    const out = JSON.parse(r.stdout) as { verdict: string; targetGroups: Array<{ readyEndpoints: string[] }> };
    assert.equal(out.verdict, 'pass');
    assert.equal(out.targetGroups[0]?.readyEndpoints.length, 5);
  });

  it('fails (exit 1) when the targets are unhealthy, naming them and the AWS reason', async () => {
    // The ALB health check now only accepts 204: every target turns Target.ResponseCodeMismatch.
    const ing = l.lab.store.mustGet('Ingress', 'game-2048', 'ingress-2048');
    ing.metadata.annotations = { ...(ing.metadata.annotations ?? {}), 'alb.ingress.kubernetes.io/success-codes': '204' };
    l.lab.store.update('Ingress', ing);
    const arn = String((l.lab.store.list('TargetGroupBinding', 'game-2048').items[0]?.spec as { targetGroupARN?: string }).targetGroupARN);
    await waitFor(async () => (await l.lab.alb.describeTargetHealth({ TargetGroupArn: arn })).TargetHealthDescriptions?.every((d) => d.TargetHealth?.State === 'unhealthy') || undefined, {
      timeoutMs: 30_000,
      what: 'every target to turn unhealthy',
    });
    const r = await l.cli([...analyzeArgs(['--probe', 'off']), '--lab', join(l.dir, 'state')]);
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /verdict: FAIL/);
    assert.match(r.stdout, /unhealthy \(Target\.ResponseCodeMismatch/);
  });

  it('exits 3 with what to check when Kubernetes or AWS cannot be reached', async () => {
    const kube = await l.cli([...analyzeArgs(), '--kubeconfig', join(l.dir, 'no-such-kubeconfig')]);
    assert.equal(kube.code, 3, kube.stderr);
    assert.match(kube.stderr, /kubeconfig/);
    // AWS: a dead ELBv2 endpoint (nothing listens on port 1).
    const aws = await l.cli([...analyzeArgs(), '--kubeconfig', l.kubeconfig, '--region', 'us-east-1'], {
      env: { AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2: 'http://127.0.0.1:1', AWS_ENDPOINT_URL_CLOUDWATCH: 'http://127.0.0.1:1', AWS_ACCESS_KEY_ID: 'x', AWS_SECRET_ACCESS_KEY: 'x' },
      timeoutMs: 60_000,
    });
    assert.equal(aws.code, 3, `${aws.stdout}\n${aws.stderr}`);
    assert.match(aws.stderr, /cannot reach ELBv2/);
  });
});
