import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { VERSION } from '../src/version.js';

const root = join(import.meta.dirname, '..');

describe('dist/', () => {
  it('is what `npm run bundle` builds from src/ (check-dist)', async () => {
    const out = await mkdtemp(join(tmpdir(), 'alb-dist-'));
    try {
      execFileSync(process.execPath, ['scripts/bundle.mjs', '--outdir', out], { cwd: root, stdio: 'pipe' });
      for (const file of ['index.js', 'cli.js', 'lab-netns-bridge.js']) {
        const fresh = await readFile(join(out, file), 'utf8');
        const committed = await readFile(join(root, 'dist', file), 'utf8').catch(() => '');
        assert.ok(fresh === committed, `dist/${file} is out of date with src/: run \`npm run bundle\` and commit dist/`);
      }
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it('runs the bundled CLI as the package bin', async () => {
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
    assert.equal(pkg.bin['alb-rollout'], 'dist/cli.js');
    assert.equal(pkg.version, VERSION, 'src/version.ts matches package.json');
    const out = execFileSync(process.execPath, ['dist/cli.js', '--version'], { cwd: root, encoding: 'utf8' });
    assert.equal(out.trim(), VERSION);
  });
});
