import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputError } from '../../src/errors.js';
import { parseDeployOptions, parseDuration } from '../../src/options.js';

describe('one duration grammar', () => {
  it('parses plain seconds, units and compound durations', () => {
    assert.equal(parseDuration('90'), 90_000);
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('2h'), 7_200_000);
    assert.equal(parseDuration('soon'), undefined);
    assert.equal(parseDuration('10 m'), undefined);
  });

  it('deploy timeouts use it: whole seconds, rounded up; zero and words are input errors naming the fix', () => {
    const o = parseDeployOptions({ routingTimeout: '1m30s', rolloutTimeout: '1500ms' });
    assert.equal(o.routingTimeoutSeconds, 90);
    assert.equal(o.rolloutTimeoutSeconds, 2);
    for (const bad of ['0', 'soon']) {
      assert.throws(
        () => parseDeployOptions({ rolloutTimeout: bad }),
        (err: unknown) => err instanceof InputError && /rollout-timeout "\w+" is not a duration/.test(err.message + err.problems.map((p) => p.message).join()) && err.problems.some((p) => /1m30s/.test(p.fix)),
      );
    }
  });
});
