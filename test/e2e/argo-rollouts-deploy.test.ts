/**
 * `alb-rollout deploy` of an Argo Rollout on the real control plane with the real Argo Rollouts controller: deploy
 * waits on the Rollout's own status (canary steps, weights, pauses) and on its pods' targets in the canary and stable
 * target groups. A good canary of setWeight steps ends succeeded when Healthy; a canary with `pause: {}` ends with
 * result paused at that step (exit 0, how to promote); a release whose analysis fails makes Argo abort, and deploy
 * fails (exit 1) with Argo's message; a canary that crash-loops makes deploy fail first and abort the Rollout;
 * with --argo-pauses wait, deploy waits through the pause until it is promoted.
 *
 * Needs the real control plane and the Argo Rollouts controller built (`lab build --control-plane real
 * --argo-rollouts`); skipped with that reason otherwise. The embedded tier has no Argo controller: the checks are
 * unit-tested over Rollout status snapshots (test/plan/argo-rollout.test.ts).
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KubeClient, loadKubeConfig } from '../../src/kube/client.js';
import type { JsonObject } from '../../src/manifests/types.js';
import { ANALYSIS_STEPS, argoSetup, manifests, NS, rolloutYaml } from './argo-helpers.js';
import { waitFor } from '../helpers/wait.js';
import { e2eLab, labArgs, type E2eLab } from './helpers.js';

const setup = await argoSetup();

const rollout = rolloutYaml;

const WEIGHTS = '        - setWeight: 20\n        - setWeight: 60\n        - setWeight: 100\n';
const PAUSE = '        - setWeight: 20\n        - pause: {}\n        - setWeight: 100\n';
const obj = (o: unknown): JsonObject => (o ?? {}) as JsonObject;

describe('real tier: `alb-rollout deploy` waits on an Argo Rollout', { skip: 'skip' in setup ? setup.skip : false }, () => {
  let l: E2eLab;
  let kube: KubeClient;

  before(async () => {
    if ('skip' in setup) return;
    l = await e2eLab({ controlPlane: 'real', binary: setup.binary, argoRollouts: setup.argo, timings: { timeScale: 20 } }, 'real');
    kube = new KubeClient(loadKubeConfig({ kubeconfigPath: l.kubeconfig }, {}));
  });
  after(async () => {
    await l?.stop();
  });

  const status = async (): Promise<JsonObject> => obj((await kube.get('argoproj.io/v1alpha1', 'Rollout', NS, 'web'))?.status);
  /** `alb-rollout deploy` of the base objects and this Rollout; the run's JSON report with it. */
  const deploy = async (name: string, rolloutYaml: string, extra: string[] = []): Promise<{ code: number; out: string; report: JsonObject }> => {
    const file = join(l.dir, `${name}.yaml`);
    await writeFile(file, `${manifests()}---\n${rolloutYaml}`);
    const reportFile = join(l.dir, `${name}-report.json`);
    const r = await l.cli(['deploy', '-f', file, '--report', reportFile, '--rollout-timeout', '3m', ...extra, ...labArgs(l)], { timeoutMs: 230_000 });
    const report = JSON.parse(await readFile(reportFile, 'utf8').catch(() => '{}')) as JsonObject;
    return { code: r.code, out: `${r.stdout}\n${r.stderr}`, report };
  };
  const argoNotes = (report: JsonObject): string[] =>
    ((report.timeline ?? []) as JsonObject[]).filter((e) => e.kind === 'argo-rollout').map((e) => String(e.message));

  it('first install: deploy applies the set, waits until the Rollout is Healthy with its pods healthy in the canary and stable target groups', async () => {
    const r = await deploy('v1', rollout('example/web:v1', WEIGHTS));
    assert.equal(r.code, 0, r.out);
    assert.equal(r.report.result, 'succeeded', r.out);
    assert.match(r.out, /Rollout shop\/web Healthy: 2 pod\(s\) of \S+ serving, every new target healthy in k8s-\S+, k8s-\S+, no target draining/);
    assert.equal((await status()).phase, 'Healthy');
  });

  it('(a) a good canary of setWeight steps with no pause: deploy follows the steps and ends succeeded when Healthy', async () => {
    const r = await deploy('v2', rollout('example/web:v2', WEIGHTS));
    assert.equal(r.code, 0, r.out);
    assert.equal(r.report.result, 'succeeded', r.out);
    const st = await status();
    assert.equal(st.phase, 'Healthy');
    assert.equal(st.stableRS, st.currentPodHash, 'fully promoted when deploy returned');
    // The long wait's progress: the steps it passed, as the timeline recorded them.
    const notes = argoNotes(r.report).join('\n');
    assert.match(notes, /step [123]\/3 \(setWeight: (20|60|100)\)/, notes);
    const pods = (await kube.list('v1', 'Pod', NS, { labelSelector: `rollouts-pod-template-hash=${String(st.currentPodHash)}` })).items;
    assert.ok(pods.length >= 2 && pods.every((p) => ((obj(p.spec).containers ?? []) as JsonObject[])[0]?.image === 'example/web:v2'), 'the stable pods are v2');
  });

  it('(b) a canary with a `pause: {}` step: deploy ends with result paused at that step, exit 0, saying how to promote', async () => {
    const r = await deploy('v3', rollout('example/web:v3', PAUSE));
    assert.equal(r.code, 0, r.out);
    assert.equal(r.report.result, 'paused', r.out);
    assert.match(String(r.report.paused), /Rollout shop\/web is Paused at step 2\/3 \(pause\) \(CanaryPauseStep\), its 1 new pod\(s\) healthy in the target group\(s\) of web-canary/);
    assert.match(String(r.report.paused), /kubectl argo rollouts promote web -n shop/);
    assert.match(r.out, /result: paused/);
    const st = await status();
    assert.equal(st.phase, 'Paused');
    assert.equal(st.currentStepIndex, 1);
  });

  it('(c) a release whose analysis fails: Argo aborts, the Rollout is Degraded, deploy fails with exit 1 and Argo\'s message', async () => {
    const r = await deploy('v4', rollout('example/web:v4', ANALYSIS_STEPS, 'error-500'));
    assert.equal(r.code, 1, r.out);
    assert.equal(r.report.result, 'failed', r.out);
    const error = String(r.report.error);
    assert.match(error, /expected Rollout shop\/web to become Healthy, but Argo Rollouts reports Degraded: RolloutAborted: /);
    assert.match(error, /Argo aborted the update: traffic is back on the stable ReplicaSet/);
    assert.match(error, /aborted by Argo; nothing for alb-rollout to undo/);
    assert.match(error, /kubectl argo rollouts undo web -n shop/);
    const st = await status();
    assert.equal(st.abort, true);
    assert.equal(st.phase, 'Degraded');
  });

  it('(d) a canary whose pods crash-loop: deploy fails (exit 1) before Argo\'s progress deadline and aborts the Rollout as `kubectl argo rollouts abort` does', async () => {
    const r = await deploy('v5', rollout('example/web:v5', PAUSE, 'crash'));
    assert.equal(r.code, 1, r.out);
    const error = String(r.report.error);
    assert.match(error, /expected the new pods of Rollout shop\/web to start, but 1 crash-loop/);
    assert.match(error, /Rollout shop\/web: aborted \(status\.abort=true, as `kubectl argo rollouts abort web -n shop` does\): Argo sends all traffic back to the stable ReplicaSet/);
    assert.equal((await status()).abort, true, 'the abort reached the Rollout');
  });

  it('(e) --argo-pauses wait: deploy waits through `pause: {}` until someone promotes, then ends succeeded when Healthy', async () => {
    const run = deploy('v6', rollout('example/web:v6', PAUSE), ['--argo-pauses', 'wait']);
    // Promote as `kubectl argo rollouts promote` does at a canary pause step: clear the pause conditions (status subresource).
    await waitFor(async () => {
      const st = await status();
      return st.phase === 'Paused' && st.currentStepIndex === 1 && Array.isArray(st.pauseConditions) && st.pauseConditions.length > 0;
    }, { timeoutMs: 120_000, what: 'the new release Paused at step 2/3', intervalMs: 250 });
    await kube.patch('argoproj.io/v1alpha1', 'Rollout', NS, 'web', { status: { pauseConditions: null } }, 'merge', 'status');
    const r = await run;
    assert.equal(r.code, 0, r.out);
    assert.equal(r.report.result, 'succeeded', r.out);
    const notes = argoNotes(r.report).join('\n');
    assert.match(notes, /Rollout shop\/web Paused: step 2\/3 \(pause\)/, notes);
    const st = await status();
    assert.equal(st.phase, 'Healthy');
    assert.equal(st.stableRS, st.currentPodHash);
  });
});
