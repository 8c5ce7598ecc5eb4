/**
 * `alb-rollout lab up` stops every process it started: on SIGTERM (as a service manager or CI stops it) it exits 0
 * and leaves nothing behind; on the real tier a lab killed outright (SIGKILL: no chance to clean up) still leaves no
 * stray control plane, because each component ends itself once its parent is gone. Ctrl-C (SIGINT) is in
 * lab-kubectl.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import type { ControlPlaneTier } from '../../src/lab/index.js';
import { waitFor } from '../helpers/wait.js';
import { describeTiers, root } from './helpers.js';

interface Running {
  proc: ChildProcessWithoutNullStreams;
  stateDir: string;
  out: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** A live process (a zombie nobody reaped yet has ended: it holds no port and runs no code). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Every live process on the machine whose command line names `dir` (the control plane's data, certs and logs are in
 * it), except `lab up` itself.
 */
function processesUsing(dir: string, labPid: number | undefined): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid || Number(entry) === labPid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmdline.includes(dir) && alive(Number(entry))) found.push(`${entry}: ${cmdline.slice(0, 200)}`);
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

describeTiers('lab up stops every process it started', (tier: ControlPlaneTier) => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  const up = async (): Promise<Running> => {
    const dir = await mkdtemp(join(tmpdir(), 'alb-lab-signals-'));
    dirs.push(dir);
    const stateDir = join(dir, 'state');
    const proc = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'lab', 'up', '--state-dir', stateDir, '--control-plane', tier], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir, NODE_NO_WARNINGS: '1' },
    });
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    let done: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      proc.on('exit', (code, signal) => {
        done = { code, signal };
        resolve(done);
      }),
    );
    await waitFor(() => (done ? Promise.reject(new Error(`lab up exited: ${JSON.stringify(done)}\n${out}`)) : /lab is up/.test(out) && existsSync(join(stateDir, 'lab.json'))), {
      timeoutMs: tier === 'real' ? 90_000 : 30_000,
      what: 'lab up to say it is up',
      describe: () => out,
    });
    return { proc, stateDir, out: () => out, exited };
  };

  const controlPlanePids = async (r: Running): Promise<Array<[string, number]>> => {
    const s = JSON.parse(await readFile(join(r.stateDir, 'lab.json'), 'utf8')) as { controlPlane?: { pids: Record<string, number> } };
    return Object.entries(s.controlPlane?.pids ?? {});
  };

  it('SIGTERM: exits 0 within 20 s, and no process it started is left', { timeout: 120_000 }, async () => {
    const r = await up();
    const pids = await controlPlanePids(r);
    if (tier === 'real') assert.deepEqual(pids.map(([n]) => n).sort(), ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler']);
    const running = processesUsing(r.stateDir, r.proc.pid);
    assert.equal(running.length, tier === 'real' ? 4 : 0, running.join('\n'));
    r.proc.kill('SIGTERM');
    const timeout = new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 20_000).unref());
    const result = await Promise.race([r.exited, timeout]);
    assert.notEqual(result, 'timeout', `lab up did not exit within 20 s of SIGTERM:\n${r.out()}`);
    assert.deepEqual(result, { code: 0, signal: null }, r.out());
    assert.match(r.out(), /SIGTERM: stopping the lab…\nlab stopped\n$/);
    for (const [name, pid] of pids) assert.equal(alive(pid), false, `${name} (pid ${pid}) still runs after lab up exited`);
    assert.deepEqual(processesUsing(r.stateDir, undefined), [], 'no process runs on the lab state directory');
  });

  if (tier === 'real') {
    it('SIGKILL of lab up: every control-plane process ends itself (parent gone) within 15 s', { timeout: 120_000 }, async () => {
      const r = await up();
      const pids = await controlPlanePids(r);
      assert.equal(pids.length, 4, JSON.stringify(pids));
      r.proc.kill('SIGKILL');
      await r.exited;
      await waitFor(() => pids.every(([, pid]) => !alive(pid)) || undefined, {
        timeoutMs: 15_000,
        what: 'every control-plane process to end after its parent was killed',
        describe: () => pids.filter(([, pid]) => alive(pid)).map(([n, pid]) => `${n} (pid ${pid})`).join(', '),
      });
      assert.deepEqual(processesUsing(r.stateDir, undefined), [], 'no process runs on the lab state directory');
    });
  }
});
