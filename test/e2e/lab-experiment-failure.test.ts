/**
 * Pods whose server cannot start, seen by the user: `alb-rollout deploy` names the listen error, the restarts and
 * the pods; `alb-rollout lab experiment` ends with one clear message and exit code 1, no stack trace. The pods
 * fail as they would on a node: two containers of one pod listen on the same port (EADDRINUSE).
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { writeRelease } from '../../src/lab/variants.js';
import { describeTiers, e2eLab, labArgs, root, runCliFromSource, variant, type E2eLab } from './helpers.js';

const SIDECAR_ON_PORT_80 = `        - name: sidecar
          image: example/sidecar:v1
          ports:
            - containerPort: 80
`;

describeTiers('lab experiment: pods that cannot start', (tier) => {
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
    const run = await runCliFromSource(['lab', 'experiment', '--scenario', 'naive', '--examples', dir, '--control-plane', tier], 80_000);
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

describeTiers('deploy: pods that cannot start', (tier) => {
  let l: E2eLab;
  before(async () => {
    l = await e2eLab({}, tier);
  });
  after(async () => {
    await l.stop();
  });

  // The lab's virtual pod IPs: loopback on the embedded tier, 198.18.0.0/15 on the real one (a real API server
  // refuses loopback endpoints).
  const podIp = tier === 'real' ? '198\\.1[89]\\.' : '127\\.';
  it('a container whose server cannot start (listen error) is reported with the error, restarts and the pods (exit 1)', { timeout: 60_000 }, async () => {
    // Two containers of one pod on port 80: the second cannot bind (EADDRINUSE), as on a real node.
    const dir = await variant('2048/safe', l.dir, 'nolisten', (f, t) =>
      f.startsWith('4-')
        ? t.replace('progressDeadlineSeconds: 600', 'progressDeadlineSeconds: 60').replace('      containers:\n', '      containers:\n        - name: sidecar\n          image: example/sidecar:v1\n          ports:\n            - containerPort: 80\n          readinessProbe: {tcpSocket: {port: 80}, periodSeconds: 2}\n          lifecycle: {preStop: {sleep: {seconds: 40}}}\n')
        : t,
    );
    const r = await l.cli(['deploy', '-f', dir, '--rollout-timeout', '120', ...labArgs(l)], { timeoutMs: 90_000 });
    assert.equal(r.code, 1, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /failed in phase workloads/);
    assert.match(
      r.stdout,
      new RegExp(
        `new pod\\(s\\) not ready — container (sidecar|app-2048) CrashLoopBackOff, \\d+ restart\\(s\\), last exit code 1 \\(Error\\) "listen tcp :80: bind: address already in use \\(another container of this pod already listens on port 80\\)"[^\\n]*: deployment-2048-[a-z0-9]+-[a-z0-9]+ \\(${podIp}`,
      ),
    );
    assert.doesNotMatch(`${r.stdout}\n${r.stderr}`, /^\s+at /m, 'no stack trace');
  });
});
