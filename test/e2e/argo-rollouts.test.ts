/**
 * Argo Rollouts end to end on the real control plane: the real Argo Rollouts controller runs a canary with ALB
 * traffic routing (setWeight 20 → analysis → setWeight 100); its analysis step is a Job metric whose pod the lab's
 * kubelet runs as `dist/cli.js analyze --rollout …` with an in-cluster service-account token. The Job's exit code
 * is the only signal Argo reads: a good release is promoted, a release answering 500 fails its AnalysisRun, the
 * Rollout aborts and the stable version serves again.
 *
 * Needs the real control plane and the Argo Rollouts controller built (`lab build --control-plane real
 * --argo-rollouts`); skipped with that reason otherwise (and on the embedded tier, which has no Job controller).
 */
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KubeClient, loadKubeConfig } from '../../src/kube/client.js';
import type { JsonObject, KubeObject } from '../../src/manifests/types.js';
import type { TrafficGenerator } from '../../src/lab/traffic/index.js';
import { waitFor } from '../helpers/wait.js';
import { ANALYSIS_STEPS, argoSetup, jobMetric, manifests, NS, rolloutYaml } from './argo-helpers.js';
import { e2eLab, traffic, type E2eLab } from './helpers.js';

const setup = await argoSetup();

const rollout = (image: string, behavior = 'healthy'): string => rolloutYaml(image, ANALYSIS_STEPS, behavior);

const obj = (o: unknown): JsonObject => (o ?? {}) as JsonObject;

describe('real tier: Argo Rollouts runs `alb-rollout analyze` as its analysis Job', { skip: 'skip' in setup ? setup.skip : false }, () => {
  let l: E2eLab;
  let kube: KubeClient;
  let load: TrafficGenerator | undefined;

  before(async () => {
    if ('skip' in setup) return;
    l = await e2eLab({ controlPlane: 'real', binary: setup.binary, argoRollouts: setup.argo, timings: { timeScale: 20 } }, 'real');
    kube = new KubeClient(loadKubeConfig({ kubeconfigPath: l.kubeconfig }, {}));
  });
  after(async () => {
    await load?.stop();
    await l?.stop();
  });

  const apply = async (yaml: string, name: string): Promise<void> => {
    const file = join(l.dir, `${name}.yaml`);
    await writeFile(file, yaml);
    const r = await l.kubectl(['apply', '-f', file]);
    assert.equal(r.code, 0, r.stderr);
  };
  const getRollout = async (): Promise<KubeObject | undefined> => kube.get('argoproj.io/v1alpha1', 'Rollout', NS, 'web');
  const status = (ro: KubeObject | undefined): JsonObject => obj(ro?.status);
  const describeRollout = async (): Promise<string> => {
    const ro = await getRollout();
    const runs = (await kube.list('argoproj.io/v1alpha1', 'AnalysisRun', NS)).items.map((r) => `${r.metadata.name}: ${String(obj(r.status).phase)} ${String(obj(r.status).message ?? '')}`);
    const pods = (await kube.list('v1', 'Pod', NS)).items.map((p) => `${p.metadata.name} ${String(obj(p.status).phase)}`);
    const warnings = (await kube.list('v1', 'Event', NS)).items.filter((e) => e.type === 'Warning').slice(-5).map((e) => `${String(e.reason)}: ${String(e.message)}`);
    return `warnings ${JSON.stringify(warnings)}; rollout ${JSON.stringify({ phase: status(ro).phase, message: status(ro).message, step: status(ro).currentStepIndex, abort: status(ro).abort })}; runs ${runs.join(', ')}; pods ${pods.join(', ')}; controller log ${l.lab.real?.argoRolloutsLog}`;
  };
  let seen = '';
  /** waitFor on the cluster, polling every 250 ms; the description of the Rollout is refreshed as it goes. */
  const until = <T>(check: () => Promise<T | undefined | false>, what: string, timeoutMs: number): Promise<T> =>
    waitFor(
      async () => {
        seen = await describeRollout().catch((e: Error) => e.message);
        return check();
      },
      { timeoutMs, what, intervalMs: 250, describe: () => seen },
    );
  /** What the analysis pods printed (the kubelet keeps their output; the lab serves no `kubectl logs`). */
  const analysisLogs = async (): Promise<string[]> => {
    const dir = join(l.lab.real?.dir ?? '', 'pods', 'logs');
    const files = (await readdir(dir).catch(() => [] as string[])).sort();
    return Promise.all(files.map((f) => readFile(join(dir, f), 'utf8')));
  };
  const analysisRuns = async (): Promise<KubeObject[]> => (await kube.list('argoproj.io/v1alpha1', 'AnalysisRun', NS)).items;
  const jobPodExitCodes = async (): Promise<number[]> =>
    (await kube.list('v1', 'Pod', NS)).items
      .filter((p) => p.metadata.labels?.['job-name'] !== undefined)
      .flatMap((p) => ((obj(p.status).containerStatuses ?? []) as JsonObject[]).map((c) => obj(obj(c.state).terminated).exitCode))
      .filter((c): c is number => typeof c === 'number');

  it('first release: the Rollout becomes Healthy behind the ALB; Argo writes the actions annotation', async () => {
    await apply(manifests(), 'base');
    await apply(rollout('example/web:v1'), 'v1');
    await until(async () => status(await getRollout()).phase === 'Healthy', 'Rollout Healthy', 180_000);
    const ing = await kube.get('networking.k8s.io/v1', 'Ingress', NS, 'web');
    assert.match(String(ing?.metadata.annotations?.['alb.ingress.kubernetes.io/actions.web-root']), /"ServiceName":"web-canary"/);
    const url = await until(async () => l.lab.albs()[0]?.url, 'the ALB', 60_000);
    await waitFor(async () => {
      const r = await fetch(`${url}/`).catch(() => undefined);
      return r?.status === 200 && r.headers.get('x-lab-image') === 'example/web:v1';
    }, { timeoutMs: 60_000, what: 'v1 served through the ALB' });
    load = traffic(url, 30);
  });

  it('a good release: the analysis Job exits 0, the AnalysisRun is Successful, the Rollout is promoted to 100%', async () => {
    await apply(rollout('example/web:v2'), 'v2');
    await until(async () => (await analysisRuns()).some((r) => obj(r.status).phase === 'Successful'), 'a Successful AnalysisRun', 240_000);
    await until(async () => {
      const st = status(await getRollout());
      const v2 = (await kube.list('v1', 'Pod', NS)).items.filter((p) => String((obj(p.spec).containers as JsonObject[] | undefined)?.[0]?.image) === 'example/web:v2' && obj(p.status).phase === 'Running');
      return st.phase === 'Healthy' && v2.length === 2;
    }, 'v2 promoted: Rollout Healthy, two v2 pods', 180_000);
    assert.deepEqual(await jobPodExitCodes(), [0], 'the analysis pod exited 0');
    const logs = await analysisLogs();
    assert.equal(logs.length, 1);
    assert.match(logs[0] ?? '', /verdict: PASS \(Rollout shop\/web: canary Service web-canary \(baseline: stable Service web-stable\)\)/);
  });

  it('a release answering 500: the Job exits 1, the AnalysisRun fails, the Rollout aborts and stable (v2) serves again; no 5xx on the stable share', async () => {
    const before = load?.records.length ?? 0;
    await apply(rollout('example/web:v3', 'error-500'), 'v3');
    await until(async () => (await analysisRuns()).some((r) => obj(r.status).phase === 'Failed'), 'a Failed AnalysisRun', 240_000);
    const ro = await until(async () => {
      const r = await getRollout();
      return status(r).abort === true && status(r).phase === 'Degraded' ? r : undefined;
    }, 'the Rollout aborted (Degraded)', 120_000);
    assert.match(String(status(ro).message), /RolloutAborted|aborted/i);
    assert.ok((await jobPodExitCodes()).includes(1), `the failing analysis pod exited 1: ${JSON.stringify(await jobPodExitCodes())}`);
    assert.ok((await analysisLogs()).some((t) => /verdict: FAIL/.test(t) && /probe/.test(t)), 'the analysis says why it failed');
    // The abort puts the canary weight back to 0: every request is served by the stable version again.
    const url = l.lab.albs()[0]!.url;
    await waitFor(async () => {
      for (let i = 0; i < 20; i++) {
        const r = await fetch(`${url}/`);
        if (r.status !== 200 || r.headers.get('x-lab-image') !== 'example/web:v2') return false;
      }
      return true;
    }, { timeoutMs: 60_000, what: 'only v2 (stable) serving after the abort' });
    const during = (load?.records ?? []).slice(before);
    const stable5xx = during.filter((r) => r.status >= 500 && r.version === 'example/web:v2').length;
    const canary5xx = during.filter((r) => r.status >= 500 && r.version === 'example/web:v3').length;
    assert.equal(stable5xx, 0, 'the stable share saw no 5xx');
    assert.ok(canary5xx > 0, 'the canary share did see the 500s the analysis caught');
  });

  it('the exit-code contract through the Job provider: bad input (exit 2) fails the AnalysisRun too', async () => {
    await apply(
      `apiVersion: argoproj.io/v1alpha1
kind: AnalysisRun
metadata: {name: bad-input, namespace: ${NS}}
spec:
  args: [{name: namespace, value: ${NS}}, {name: rollout, value: no-such-rollout}]
${jobMetric('alb-rollout', '5s')}`,
      'bad-input',
    );
    const run = await until(async () => {
      const r = await kube.get('argoproj.io/v1alpha1', 'AnalysisRun', NS, 'bad-input');
      return obj(r?.status).phase === 'Failed' ? r : undefined;
    }, 'the AnalysisRun Failed', 90_000);
    assert.equal(obj(run.status).phase, 'Failed');
    assert.ok((await jobPodExitCodes()).includes(2), `the analysis pod exited 2 (bad input): ${JSON.stringify(await jobPodExitCodes())}`);
    assert.ok((await analysisLogs()).some((t) => /Rollout shop\/no-such-rollout does not exist/.test(t)), 'the pod said what was wrong');
  });

  it('a probe that targets the canary: with a header route active, analyze sends its header, so every probe request reaches the canary alone', async () => {
    const failedBefore = (await analysisRuns()).filter((r) => obj(r.status).phase === 'Failed').length;
    const steps = `        - setWeight: 20
        - setHeaderRoute:
            name: canary-probe
            match: [{headerName: X-Canary, headerValue: {exact: "1"}}]
${ANALYSIS_STEPS.split('\n').slice(1).join('\n')}`;
    await apply(rolloutYaml('example/web:v4', steps, 'error-500', ['canary-probe']), 'v4');
    await until(async () => (await analysisRuns()).filter((r) => obj(r.status).phase === 'Failed').length > failedBefore, 'the header-routed AnalysisRun Failed', 240_000);
    // (Argo removes the header route when it aborts: the analysis log is the record of what the probe sent.)
    const log = (await analysisLogs()).find((t) => /header route canary-probe/.test(t)) ?? '';
    assert.match(log, /the probe sends x-canary: 1 \(header route canary-probe: the canary only\)/);
    assert.match(log, /verdict: FAIL/);
    // At weight 20 through the ALB about four probe requests in five would reach the stable v2 and answer 200: with
    // the header, no probe request reached stable. Every failing window holds the canary's 500s, and at most the
    // ALB's own 503 while the new header rule's target group has no healthy target on a node yet (as on AWS).
    const windows = [...log.matchAll(/probe: failure — (\d+) request\(s\): ([^;\[]+)/g)];
    assert.ok(windows.length > 0, log);
    for (const w of windows) {
      assert.match(w[2] ?? '', /\d+×500/, `a probe window saw the canary's 500s: ${w[0]}`);
      assert.match(w[2] ?? '', /^(\d+×50[03],?\s*)+$/, `a probe window saw only the canary's 500s and the ALB's 503s, no stable answer: ${w[0]}`);
    }
  });
});
