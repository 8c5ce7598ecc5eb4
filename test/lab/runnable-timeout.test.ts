import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runnableTimeout } from '../../src/lab/runnable-timeout.js';

/** The lab's check timeouts count only time the process could run (checker and target share one event loop). */
describe('runnableTimeout', () => {
  // Its timers are unref'd (a check never keeps the lab alive): the test keeps the process running.
  let keep: NodeJS.Timeout;
  before(() => {
    keep = setInterval(() => undefined, 1000);
  });
  after(() => clearInterval(keep));

  test('fires after the time when the loop is free', async () => {
    const started = Date.now();
    await new Promise<void>((resolve) => runnableTimeout(60, resolve));
    assert.ok(Date.now() - started >= 55, `fired after ${Date.now() - started} ms`);
  });

  test('a blocked event loop does not use up the timeout: an answer ready after the stall wins', async () => {
    let fired = false;
    const t = runnableTimeout(100, () => (fired = true), 10);
    const answered = new Promise<void>((resolve) => setTimeout(resolve, 5));
    const until = Date.now() + 300; // the loop is blocked for three timeouts' worth of wall time
    while (Date.now() < until) {
      // busy
    }
    await answered;
    assert.equal(fired, false, 'the stall counted as one late tick, not 300 ms');
    t.clear();
  });
});
