/**
 * `npm run bench [-- --format json] [-- --only NAME]`: runs every benchmark suite, each in its own child process
 * (so peak memory belongs to one suite), and prints {"benchmarks":[{"name","value","unit","target"}]}.
 * Values are measured, not asserted: compare ratios within one run on a shared, noisy machine.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './types.js';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const format = args.includes('--format') ? args[args.indexOf('--format') + 1] : 'text';
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;

const suites = readdirSync(join(here, 'suites'))
  .filter((f) => f.endsWith('.ts'))
  .filter((f) => !only || f.startsWith(only))
  .sort();

const results: BenchResult[] = [];
let failed = false;
for (const suite of suites) {
  if (format !== 'json') process.stderr.write(`# ${suite}\n`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--expose-gc', join(here, 'suites', suite)], {
    encoding: 'utf8',
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
    maxBuffer: 64 * 1024 * 1024,
    timeout: 75 * 60 * 1000, // the real control plane's cold build (opt-in) takes up to 30 min
  });
  if (r.status !== 0) {
    failed = true;
    process.stderr.write(`bench suite ${suite} failed (exit ${r.status}):\n${r.stderr}\n`);
    continue;
  }
  const last = r.stdout.trim().split('\n').pop() ?? '[]';
  results.push(...(JSON.parse(last) as BenchResult[]));
}

if (format === 'json') {
  process.stdout.write(`${JSON.stringify({ benchmarks: results })}\n`);
} else {
  for (const b of results) {
    process.stdout.write(`${b.name.padEnd(48)} ${String(b.value).padStart(12)} ${b.unit.padEnd(10)} target ${b.target}\n`);
  }
}
process.exitCode = failed ? 1 : 0;
