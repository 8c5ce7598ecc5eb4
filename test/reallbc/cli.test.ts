import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseLbc } from '../../src/lab/cli.js';
import { assertFaultsAvailable, parseFaultSpec } from '../../src/lab/faults.js';

const root = join(import.meta.dirname, '..', '..');

function cli(args: string[], env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args], { cwd: root, encoding: 'utf8', env: { PATH: process.env.PATH ?? '', NODE_NO_WARNINGS: '1', ...env }, timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('--lbc real on the CLI', () => {
  it('parses emulated (default) and real; real needs the real control plane; anything else is named', () => {
    assert.equal(parseLbc(undefined, 'embedded'), 'emulated');
    assert.equal(parseLbc('emulated', 'real'), 'emulated');
    assert.equal(parseLbc('real', 'real'), 'real');
    assert.throws(() => parseLbc('real', 'embedded'), /--lbc real needs --control-plane real/);
    assert.throws(() => parseLbc('fake', 'real'), /--lbc "fake" is not emulated or real/);
  });

  it('webhook and lbc faults are refused with the real controller (nothing changed); AWS faults are not', () => {
    assert.throws(() => assertFaultsAvailable(parseFaultSpec('webhook=down'), false, true), /not available with --lbc real/);
    assert.throws(() => assertFaultsAvailable(parseFaultSpec('lbc=restart'), false, true), /not available with --lbc real/);
    assert.doesNotThrow(() => assertFaultsAvailable(parseFaultSpec('elbv2-throttle=20%,clear'), false, true));
  });

  it('lab up --lbc real without --control-plane real: an input error, nothing started', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alb-lbc-cli-'));
    try {
      const r = cli(['lab', 'up', '--lbc', 'real', '--state-dir', join(dir, 'state')], { HOME: dir, XDG_CACHE_HOME: dir });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /--lbc real needs --control-plane real .*\n\s+fix: add --control-plane real/);
      assert.equal(existsSync(join(dir, 'state')), false, 'nothing written');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('lab build --lbc real --check builds nothing: exit 2 naming `lab build --lbc real` when not cached', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alb-lbc-cli-'));
    try {
      const r = cli(['lab', 'build', '--lbc', 'real', '--check'], { HOME: dir, XDG_CACHE_HOME: dir });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /the AWS Load Balancer Controller \(v\S+\) is not built: .* does not exist\n {2}fix: run `npx alb-rollout lab build --lbc real` first/);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      assert.equal(existsSync(join(dir, 'alb-rollout', 'lbc')), false, 'nothing built');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  const cpCache = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'alb-rollout', 'controlplane');
  it(
    'lab up --control-plane real --lbc real when the controller is not built: exit 2 naming `lab build --lbc real`, nothing started',
    { skip: existsSync(cpCache) ? undefined : `needs the real control plane cached in ${cpCache}` },
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'alb-lbc-cli-'));
      try {
        await mkdir(join(dir, 'alb-rollout'), { recursive: true });
        await symlink(cpCache, join(dir, 'alb-rollout', 'controlplane'));
        const r = cli(['lab', 'up', '--control-plane', 'real', '--lbc', 'real', '--state-dir', join(dir, 'state')], { HOME: process.env.HOME ?? dir, XDG_CACHE_HOME: dir });
        assert.equal(r.status, 2, r.stderr);
        assert.match(r.stderr, /the AWS Load Balancer Controller \(v\S+\) is not built: .*\n {2}fix: run `npx alb-rollout lab build --lbc real` first/);
        assert.equal(existsSync(join(dir, 'state')), false, 'nothing started');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
  );
});
