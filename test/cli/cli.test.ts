import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli, type CliIo } from '../../src/cli/main.js';

const root = join(import.meta.dirname, '..', '..');

async function cli(args: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = {
    stdout: (s) => (out += s),
    stderr: (s) => (err += s),
    readStdin: async () => stdin,
    cwd: root,
    env: {},
  };
  const code = await runCli(args, io);
  return { code, out, err };
}

interface PlanJson {
  phases: Array<{ name: string; objects: Array<{ kind: string; file: string; line: number }>; waitFor: Array<{ kind: string; description: string }> }>;
  changes: Array<{ field: string; to: string | number }>;
  estimates: Array<{ seconds: number }>;
}

describe('alb-rollout plan', () => {
  it('orders Namespace, then Service and Ingress, a TargetGroupBinding wait, then the Deployment', async () => {
    const r = await cli(['plan', '-f', 'examples/2048/naive', '--format', 'json']);
    assert.equal(r.code, 0, r.err);
    const plan = JSON.parse(r.out) as PlanJson;
    const kinds = plan.phases.flatMap((p) => p.objects.map((o) => o.kind));
    assert.deepEqual(kinds, ['Namespace', 'Service', 'Ingress', 'Deployment']);
    const routing = plan.phases.find((p) => p.name === 'routing');
    assert.ok(routing?.waitFor.some((w) => w.kind === 'target-group-binding'), 'routing waits for the TargetGroupBinding');
    const names = plan.phases.map((p) => p.name);
    assert.ok(names.indexOf('routing') < names.indexOf('workloads'));
    for (const o of plan.phases.flatMap((p) => p.objects)) {
      assert.match(o.file, /^examples\/2048\/naive\/.+\.yaml$/);
      assert.ok(o.line >= 1);
    }
    assert.ok(plan.changes.length > 0, 'tune auto changes the naive timers');
    assert.ok(plan.estimates.length === 1 && (plan.estimates[0]?.seconds ?? 0) > 0);
  });

  it('prints a readable text plan and writes tuned manifests with --output-dir', async () => {
    const out = await mkdtemp(join(tmpdir(), 'alb-plan-'));
    try {
      const r = await cli(['plan', '-f', 'examples/2048/naive', '--output-dir', out]);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /Namespaces/);
      assert.match(r.out, /wait +TargetGroupBinding/);
      assert.match(r.out, /Timer tuning:/);
      const files = await readdir(join(out, 'examples', '2048', 'naive'));
      assert.ok(files.includes('4-ingress.yaml'), `wrote ${files.join(', ')}`);
      const written = await Promise.all(files.map((f) => readFile(join(out, 'examples', '2048', 'naive', f), 'utf8')));
      assert.match(written.join('\n'), /deregistration_delay\.timeout_seconds=\d+/);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });
});

describe('alb-rollout lint', () => {
  it('flags the naive 2048 manifests with file and line and exits 1', async () => {
    const r = await cli(['lint', '-f', 'examples/2048/naive', '--format', 'json']);
    assert.equal(r.code, 1);
    const { findings } = JSON.parse(r.out) as { findings: Array<{ rule: string; severity: string; file: string; line: number }> };
    for (const rule of ['readiness-gate-label', 'prestop-missing', 'deregistration-delay']) {
      const f = findings.find((x) => x.rule === rule);
      assert.ok(f, `expected a ${rule} finding`);
      assert.equal(f.severity, 'error');
      assert.match(f.file, /^examples\/2048\/naive\//);
      assert.ok(f.line > 0);
    }
  });

  it('passes the safe 2048 manifests', async () => {
    const r = await cli(['lint', '-f', 'examples/2048/safe', '--format', 'json']);
    const { findings } = JSON.parse(r.out) as { findings: Array<{ severity: string }> };
    assert.deepEqual(findings.filter((f) => f.severity === 'error'), []);
    assert.equal(r.code, 0);
  });

  it('honours --disable and --severity', async () => {
    const r = await cli(['lint', '-f', 'examples/2048/naive', '--format', 'json', '--disable', 'prestop-missing', '--severity', 'readiness-gate-label=warning']);
    const { findings } = JSON.parse(r.out) as { findings: Array<{ rule: string; severity: string }> };
    assert.ok(!findings.some((f) => f.rule === 'prestop-missing'));
    assert.ok(findings.filter((f) => f.rule === 'readiness-gate-label').every((f) => f.severity === 'warning'));
  });

  it('prints GitHub annotations with --format github', async () => {
    const r = await cli(['lint', '-f', 'examples/2048/naive', '--format', 'github']);
    assert.match(r.out, /^::error file=examples\/2048\/naive\/\d-[a-z]+\.yaml,line=\d+/m);
  });

  it('exits 2 with file:line for a malformed manifest and reads stdin with -f -', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alb-bad-'));
    try {
      await writeFile(join(dir, 'bad.yaml'), 'apiVersion: v1\nkind: Service\nmetadata:\n  name: x\n  labels: [unclosed\n');
      const r = await cli(['lint', '-f', join(dir, 'bad.yaml')]);
      assert.equal(r.code, 2);
      assert.match(r.err, /bad\.yaml:\d+/);
      assert.match(r.err, /nothing was applied/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const stdin = await cli(['lint', '-f', '-', '--format', 'json'], 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n');
    assert.equal(stdin.code, 0, stdin.err);
  });

  it('rejects unknown verbs, flags and values with exit 2', async () => {
    assert.equal((await cli(['frobnicate'])).code, 2);
    const flag = await cli(['lint', '-f', 'examples/2048/safe', '--nope']);
    assert.equal(flag.code, 2);
    assert.match(flag.err, /--help/);
    const tune = await cli(['plan', '-f', 'examples/2048/safe', '--tune', 'sometimes']);
    assert.equal(tune.code, 2);
    assert.match(tune.err, /tune "sometimes" is not one of auto, check, off/);
    const rule = await cli(['lint', '-f', 'examples/2048/safe', '--disable', 'no-such-rule']);
    assert.equal(rule.code, 2);
  });
});
