import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { generateManifestTree } from '../../bench/generate.js';
import { RULES } from '../../src/lint/index.js';
import { parseOptions } from '../../src/options.js';
import { preflight } from '../../src/preflight/index.js';
import { renderPlanJson, writePlanJson } from '../../src/report/plan.js';

describe('plan JSON', () => {
  it('is written in pieces that make exactly JSON.stringify of the plan', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alb-plan-json-'));
    try {
      await generateManifestTree(dir, 250);
      const options = parseOptions({ manifests: [dir], baseDir: dir, tune: 'auto' }, { tune: 'auto' }, RULES.map((r) => r.id));
      const { plan } = await preflight(options, {});
      const { phases, steps, changes, estimates, mustExist, timers } = plan;
      const whole = `${JSON.stringify({ phases, steps, changes, estimates, mustExist, timers })}\n`;
      const chunks: string[] = [];
      writePlanJson(plan, (c) => chunks.push(c));
      assert.ok(chunks.length > 1, 'one piece only: the set is too small to show the split');
      assert.equal(chunks.join(''), whole);
      assert.equal(renderPlanJson(plan), whole);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
