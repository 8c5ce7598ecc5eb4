/**
 * `alb-rollout lab experiment` when the pods cannot start: one clear message and exit code 1, no stack trace.
 * The pods fail as they would on a node: two containers of one pod listen on the same port (EADDRINUSE).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { writeRelease } from '../../src/lab/variants.js';
import { root, runCliFromSource } from './helpers.js';

const SIDECAR_ON_PORT_80 = `        - name: sidecar
          image: example/sidecar:v1
          ports:
            - containerPort: 80
`;

describe('lab experiment: pods that cannot start', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('stops with the pods, the reason and the listen error (exit 1, no stack trace)', { timeout: 90_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alb-experiment-fail-'));
    dirs.push(dir);
    await writeRelease(join(root, 'examples', '2048', 'naive'), join(dir, 'naive'), 'latest', (file, text) =>
      /deployment/.test(file) ? `${text.trimEnd()}\n${SIDECAR_ON_PORT_80}` : text,
    );
    const run = await runCliFromSource(['lab', 'experiment', '--scenario', 'naive', '--examples', dir], 80_000);
    assert.equal(run.code, 1, `exit code: ${run.code}\n${run.stderr.slice(-3000)}`);
    const errors = run.stderr.split('\n').filter((l) => l.startsWith('error:'));
    assert.equal(errors.length, 1, `one error message:\n${run.stderr.slice(-3000)}`);
    assert.match(errors[0]!, /^error: lab experiment stopped: naive: waited for the ALB to serve 200, but pods cannot start \(CrashLoopBackOff\):$/);
    assert.match(run.stderr, /\d pod\(s\) in game-2048 \(deployment-2048-[a-z0-9]+-[a-z0-9]+[^)]*\): container (sidecar|app-2048) CrashLoopBackOff, \d+ restart\(s\); last exit code 1 \(Error\): listen tcp :80: bind: address already in use \(another container of this pod already listens on port 80\)/);
    assert.match(run.stderr, /fix: /);
    assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack trace');
    assert.equal(run.stdout, '', 'no table for a scenario that did not run');
  });
});
