import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decideElb5xx } from '../../src/guard/sharing.js';

const alone = { groupNames: [], otherIngresses: [], otherBindings: [] };

describe('decideElb5xx: the load balancer-wide HTTPCode_ELB_5XX_Count only when the load balancer is not shared', () => {
  test('auto on a load balancer of this release alone: counted, and said so', () => {
    const d = decideElb5xx('auto', alone);
    assert.equal(d.include, true);
    assert.match(d.why, /HTTPCode_Target_5XX_Count and RequestCount of this release's target groups \+ the load balancer's HTTPCode_ELB_5XX_Count \(it serves only this release\)/);
  });
  test('auto with an IngressGroup, another Ingress or another TargetGroupBinding on it: target groups only, naming who shares it', () => {
    for (const facts of [
      { ...alone, groupNames: ['shop'] },
      { ...alone, otherIngresses: ['other/web'] },
      { ...alone, otherBindings: ['legacy/tgb-1'] },
    ]) {
      const d = decideElb5xx('auto', facts);
      assert.equal(d.include, false, JSON.stringify(facts));
      assert.match(d.why, /target groups only: the load balancer is shared \((IngressGroup shop|Ingress other\/web|TargetGroupBinding legacy\/tgb-1)\)/);
    }
  });
  test('on and off override; unknown sharing counts the ELB 5xx but says it could not tell', () => {
    assert.equal(decideElb5xx('on', { ...alone, groupNames: ['shop'] }).include, true);
    assert.equal(decideElb5xx('off', alone).include, false);
    const d = decideElb5xx('auto', { ...alone, unknown: 'forbidden' });
    assert.equal(d.include, true);
    assert.match(d.why, /could not tell whether it is shared: forbidden; use --cloudwatch-elb-5xx off/);
  });
});
