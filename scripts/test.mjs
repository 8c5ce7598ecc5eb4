// Runs every test: typecheck, the check-dist rule, then node's test runner over test/**/*.test.ts.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function findTests(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out.sort();
}

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const only = process.argv.slice(2);
if (only.length === 0) {
  console.log('# typecheck (tsc --noEmit)');
  run('npx', ['--no-install', 'tsc', '-p', 'tsconfig.json']);
}
const files = only.length ? only : findTests('test');
run(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=240000', ...files],
  { NODE_NO_WARNINGS: '1', AWS_EC2_METADATA_DISABLED: 'true' },
);
