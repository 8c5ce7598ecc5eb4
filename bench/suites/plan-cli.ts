/**
 * `alb-rollout plan` end to end through the bundled CLI (dist/cli.js) in a fresh process, on generated sets of
 * 5,050 and 50,050 objects: throughput (wall clock, and per CPU second, which a shared machine disturbs less),
 * peak memory of one invocation, and the ratios between the sizes (1.0 = linear), measured in the same run.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateManifestTree } from '../generate.js';
import { report, type BenchResult } from '../types.js';

const root = join(import.meta.dirname, '..', '..');

function planOnce(dir: string): { seconds: number; cpuSeconds: number; peakMb: number } {
  const started = process.hrtime.bigint();
  const r = spawnSync(process.execPath, ['--import', join(root, 'bench', 'rss-on-exit.mjs'), join(root, 'dist', 'cli.js'), 'plan', '-f', dir, '--format', 'json'], {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    timeout: 10 * 60 * 1000,
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.status !== 0) throw new Error(`plan failed (exit ${r.status}): ${String(r.output[2] ?? '')}`);
  const [peakMb, cpuSeconds] = String(r.output[3] ?? '').trim().split(' ').map(Number) as [number, number];
  return { seconds, cpuSeconds, peakMb };
}

const dir = await mkdtemp(join(tmpdir(), 'alb-rollout-bench-cli-'));
try {
  const results: BenchResult[] = [];
  const measured: Array<{ objects: number; seconds: number; cpuSeconds: number; peakMb: number }> = [];
  for (const apps of [1250, 12500]) {
    const sub = await mkdtemp(join(dir, `apps-${apps}-`));
    const objects = await generateManifestTree(sub, apps);
    const m = planOnce(sub);
    measured.push({ objects, ...m });
    const label = objects.toLocaleString('en-US');
    results.push(
      { name: `plan via CLI throughput (${label} objects)`, value: Math.round(objects / m.seconds), unit: 'objects/s', target: '>= 5000' },
      { name: `plan via CLI throughput per CPU second (${label} objects)`, value: Math.round(objects / m.cpuSeconds), unit: 'objects/s', target: 'informational' },
      { name: `plan via CLI peak memory (${label} objects)`, value: m.peakMb, unit: 'MB', target: objects > 10_000 ? '< 600' : 'informational' },
    );
  }
  const [small, large] = measured as [(typeof measured)[0], (typeof measured)[0]];
  results.push({
    name: 'plan via CLI time ratio per object, 50,050 vs 5,050 (1.0 = linear)',
    value: Math.round((large.seconds / large.objects / (small.seconds / small.objects)) * 100) / 100,
    unit: 'ratio',
    target: '<= 1.2',
  });
  results.push({
    name: 'plan via CLI CPU time ratio per object, 50,050 vs 5,050 (1.0 = linear)',
    value: Math.round((large.cpuSeconds / large.objects / (small.cpuSeconds / small.objects)) * 100) / 100,
    unit: 'ratio',
    target: '<= 1.2',
  });
  report(results);
} finally {
  await rm(dir, { recursive: true, force: true });
}
