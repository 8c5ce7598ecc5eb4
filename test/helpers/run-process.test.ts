import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runProcess } from '../e2e/helpers.js';

describe('e2e command runner', () => {
  const env = { PATH: process.env.PATH ?? '' };
  const script = "console.log('waiting for targets'); setTimeout(() => console.error('done'), 1500);";

  it('shows a slow command\'s output so far, then live, and still returns all of it', async () => {
    const shown: string[] = [];
    const r = await runProcess(process.execPath, ['-e', script], { env, timeoutMs: 20_000, slowMs: 500, showSlow: (t) => shown.push(t) });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /waiting for targets/);
    const text = shown.join('');
    assert.match(text, /still running after 0.5 s: .*-e/);
    assert.match(text, /its output so far:\nwaiting for targets\n/);
    assert.match(text, /\(live from here\)\n[\s\S]*done\n[\s\S]*ended after the slow mark, exit 0/);
  });

  it('says nothing for a command that ends before the mark', async () => {
    const shown: string[] = [];
    const r = await runProcess(process.execPath, ['-e', "console.log('quick')"], { env, timeoutMs: 20_000, slowMs: 10_000, showSlow: (t) => shown.push(t) });
    assert.equal(r.stdout.trim(), 'quick');
    assert.deepEqual(shown, []);
  });
});
