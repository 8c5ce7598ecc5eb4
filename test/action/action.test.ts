import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { parse } from 'yaml';
import { startLab } from '../../src/lab/index.js';
import { GUARD_FLAGS } from '../../src/guard/index.js';
import { tierOptions, describeTiers, variant } from '../e2e/helpers.js';
import { startFakeGitHub } from './fake-github.js';
import { nodeBinary24, root, runAction } from './run-action.js';

describeTiers('GitHub Action (dist/index.js)', (tier) => {
  it('annotates lint findings on the manifest lines and fails on errors', async () => {
    const r = await runAction({ manifests: 'examples/2048/naive\n', tune: 'check', 'readiness-gates': 'require' });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^::error title=alb-rollout prestop-missing,file=examples\/2048\/naive\/2-deployment\.yaml,line=\d+::/m);
    assert.equal(r.outputs.result, 'failed');
    assert.ok(Number(r.outputs['lint-error-count']) >= 2);
    assert.match(r.summary, /<h2>alb-rollout plan/);
    assert.match(r.summary, /prestop-missing/);
  });

  it('passes the safe manifests and writes the plan as output and job summary', async () => {
    const r = await runAction({ mode: 'plan', manifests: 'examples/2048/safe', namespace: 'default' });
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.outputs.result, 'succeeded');
    const plan = JSON.parse(r.outputs.plan ?? '{}') as { phases: Array<{ name: string }> };
    assert.deepEqual(plan.phases.map((p) => p.name), ['namespaces', 'routing', 'workloads', 'bake']);
    assert.match(r.summary, /<table>/);
    assert.match(r.summary, /Namespace game-2048/);
  });

  it('reports invalid input with exit code 2 and nothing else', async () => {
    const r = await runAction({ manifests: 'examples/2048/safe', tune: 'sometimes' });
    assert.equal(r.code, 2);
    assert.match(r.stdout, /::error title=alb-rollout%3A invalid input::tune "sometimes" is not one of auto, check, off/);
    assert.equal(r.outputs.result, 'failed');
  });

  it('deploys to the lab and writes the outputs and the job summary', async () => {
    const lab = await startLab(await tierOptions(tier));
    const dir = await mkdtemp(join(tmpdir(), 'alb-action-lab-'));
    try {
      const kubeconfig = join(dir, 'kubeconfig');
      await lab.writeKubeconfig(kubeconfig);
      // The Action runs in its own process, like on a runner: only the environment connects it to the lab.
      // The fake GitHub REST API records the Deployment and its statuses (sent through @actions/github).
      const github = await startFakeGitHub();
      const githubEnv = { GITHUB_API_URL: github.url, GITHUB_REPOSITORY: 'acme/shop', GITHUB_SHA: 'abc123' };
      const r = await runAction(
        { manifests: 'examples/2048/safe', kubeconfig, 'time-scale': String(lab.clock.timings.timeScale), bake: '1s', probe: 'off', 'github-token': 'ghs_secret' },
        { ...lab.awsEnv(), ...githubEnv },
      );
      await github.close();
      assert.equal(r.code, 0, r.stdout);
      assert.equal(r.outputs.result, 'succeeded');
      assert.equal(r.outputs.revision, '1');
      assert.equal(r.outputs['previous-revision'], '');
      // The runner masks what ::add-mask:: names; the token appears nowhere else.
      assert.deepEqual(r.stdout.split('\n').filter((line) => line.includes('ghs_secret')), ['::add-mask::ghs_secret']);
      const id = 1000;
      assert.deepEqual(github.log(), ['POST /repos/acme/shop/deployments', `POST /repos/acme/shop/deployments/${id}/statuses`, `POST /repos/acme/shop/deployments/${id}/statuses`]);
      assert.equal(github.calls[0]?.body.ref, 'abc123');
      assert.equal(github.calls[0]?.authorization, 'token ghs_secret');
      assert.deepEqual(github.calls.slice(1).map((c) => c.body.state), ['in_progress', 'success']);
      assert.match(String(github.calls[2]?.body.environment_url), /^http:\/\/k8s-.*\.elb\.amazonaws\.com$/);
      assert.match(r.outputs['load-balancer-hostname'] ?? '', /\.elb\.amazonaws\.com$/);
      assert.match(r.outputs['target-group-arns'] ?? '', /^arn:aws:elasticloadbalancing:[a-z0-9-]+:\d+:targetgroup\//);
      assert.ok(Number(r.outputs['duration-seconds']) > 0);
      assert.match(r.stdout, /^::group::Phase routing/m);
      assert.match(r.summary, /alb-rollout deploy ✅ succeeded/);
      assert.match(r.summary, /Timeline of pods and targets/);
      // The run as a Mermaid gantt GitHub renders: phases, batches, targets registering and draining.
      const mermaid = /```mermaid\ngantt\n([\s\S]*?)```/.exec(r.summary)?.[1] ?? '';
      assert.match(mermaid, /section Phases\n  preflight :done, \d{13}, \d{13}\n/);
      assert.match(mermaid, /\n  workloads :done, \d{13}, \d{13}\n/);
      assert.match(mermaid, /section Batches\n  batch 1 \(\d pods?\)/);
      assert.match(mermaid, /section Targets\n.*initial → healthy/);
      assert.match(r.summary, /healthy/);
      // The guard's section: its verdict, each signal's measurements, what was not measured.
      assert.match(r.summary, /<h3>Guard<\/h3>\s*<p>pass: /);
      assert.match(r.summary, /<tr><td>target-health<\/td><td>\d+<\/td>/);

      // workflow_dispatch rollback: a second release, then mode rollback puts revision 1's template back.
      const v2 = await variant('2048/safe', dir, 'v2');
      const second = await runAction({ manifests: v2, kubeconfig, 'time-scale': String(lab.clock.timings.timeScale), bake: '1s', probe: 'off' }, lab.awsEnv());
      assert.equal(second.code, 0, second.stdout);
      assert.equal(second.outputs.revision, '2');
      assert.match(second.summary, /<li>baseline cloudwatch: /);
      const back = await runAction(
        { mode: 'rollback', namespace: 'game-2048', deployment: 'deployment-2048', kubeconfig, 'time-scale': String(lab.clock.timings.timeScale) },
        lab.awsEnv(),
      );
      assert.equal(back.code, 0, back.stdout);
      assert.equal(back.outputs.result, 'rolled-back');
      assert.equal(back.outputs['previous-revision'], '2');
      assert.equal(back.outputs.revision, '3');
      assert.match(back.summary, /alb-rollout rollback ✅ rolled-back/);

      // Nothing can measure (the probe URL refuses, CloudWatch and target health off): result unverified, the step fails.
      const blindInputs = { manifests: await variant('2048/safe', dir, 'v3'), kubeconfig, 'time-scale': String(lab.clock.timings.timeScale), bake: '1s', 'probe-url': 'http://127.0.0.1:9/', cloudwatch: 'off', 'target-health': 'off' };
      const blind = await runAction(blindInputs, lab.awsEnv());
      assert.equal(blind.code, 1, blind.stdout);
      assert.equal(blind.outputs.result, 'unverified');
      assert.match(blind.stdout, /::error::deploy unverified: the rollout completed and the guard saw no failure, but it could not measure enough/);
      assert.match(blind.summary, /alb-rollout deploy ⚠️ unverified/);
      assert.match(blind.summary, /<h3>Guard<\/h3>\s*<p>inconclusive: /);
      const tolerated = await runAction({ ...blindInputs, manifests: await variant('2048/safe', dir, 'v4'), 'on-inconclusive': 'pass' }, lab.awsEnv());
      assert.equal(tolerated.code, 0, tolerated.stdout);
      assert.equal(tolerated.outputs.result, 'unverified');
      assert.match(tolerated.stdout, /::warning::deploy unverified/);
    } finally {
      await lab.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('runs on Node 24, the runtime GitHub gives it (runs.using: node24), and deploys to the lab', async () => {
    const node24 = await nodeBinary24();
    const version = execFileSync(node24, ['--version'], { encoding: 'utf8' }).trim();
    assert.match(version, /^v24\./);
    const lab = await startLab(await tierOptions(tier));
    const dir = await mkdtemp(join(tmpdir(), 'alb-action-node24-'));
    try {
      const kubeconfig = join(dir, 'kubeconfig');
      await lab.writeKubeconfig(kubeconfig);
      const r = await runAction({ manifests: 'examples/2048/safe', kubeconfig, 'time-scale': String(lab.clock.timings.timeScale), bake: '1s', probe: 'off' }, lab.awsEnv(), node24);
      assert.equal(r.code, 0, r.stdout);
      assert.equal(r.outputs.result, 'succeeded');
      assert.equal(r.outputs.revision, '1');
    } finally {
      await lab.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('documents every input it reads in action.yml', async () => {
    const meta = parse(await readFile(join(root, 'action.yml'), 'utf8')) as { inputs: Record<string, unknown>; runs: { using: string; main: string } };
    assert.equal(meta.runs.using, 'node24');
    assert.equal(meta.runs.main, 'dist/index.js');
    const source = await readFile(join(root, 'src', 'action', 'main.ts'), 'utf8');
    const read = [...source.matchAll(/core\.get(?:Multiline|Boolean)?Input\('([^']+)'/g)].map((m) => m[1] as string);
    for (const name of read) assert.ok(name in meta.inputs, `input ${name} is read but not in action.yml`);
    for (const name of GUARD_FLAGS) assert.ok(name in meta.inputs, `guard input ${name} is read but not in action.yml`);
  });
});
