/**
 * Plan + lint + tune on a generated set of 5,050 objects (1,250 apps): throughput over repeated runs in this
 * process, and the peak memory of one cold run in a fresh process (what one CLI invocation costs).
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RULES } from '../../src/lint/index.js';
import { parseOptions } from '../../src/options.js';
import { preflight } from '../../src/preflight/index.js';
import { generateManifestTree } from '../generate.js';
import { peakRssMb, report } from '../types.js';

const optionsFor = (dir: string) => parseOptions({ manifests: [dir], baseDir: dir, tune: 'auto' }, { tune: 'auto' }, RULES.map((r) => r.id));

if (process.argv[2] === '--one-run') {
  // Child mode: one cold preflight, then the peak RSS on stdout.
  await preflight(optionsFor(process.argv[3] as string), {});
  process.stdout.write(`${peakRssMb()}\n`);
} else {
  const dir = await mkdtemp(join(tmpdir(), 'alb-rollout-bench-'));
  try {
    const objects = await generateManifestTree(dir);
    const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--one-run', dir], { encoding: 'utf8' });
    const coldPeakMb = Number(child.stdout.trim().split('\n').pop());
    const options = optionsFor(dir);
    await preflight(options, {}); // warm-up
    const runs = 3;
    const started = process.hrtime.bigint();
    let findings = 0;
    for (let r = 0; r < runs; r++) findings = (await preflight(options, {})).lint.findings.length;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9 / runs;
    report([
      { name: 'plan+lint+tune throughput (5,050 objects)', value: Math.round(objects / seconds), unit: 'objects/s', target: '>= 5000' },
      { name: 'plan+lint+tune wall time (5,050 objects)', value: Math.round(seconds * 1000), unit: 'ms', target: '<= 1010' },
      { name: 'plan+lint+tune peak memory, one run (5,050 objects)', value: coldPeakMb, unit: 'MB', target: '< 200' },
      { name: 'plan+lint findings on the generated set', value: findings, unit: 'findings', target: 'informational' },
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
