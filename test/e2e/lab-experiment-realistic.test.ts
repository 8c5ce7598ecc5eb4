import assert from 'node:assert/strict';
import { it } from 'node:test';
import { describeTiers, runCliFromSource, testLbc } from './helpers.js';

/** `lab experiment` under the realistic profile: the "must show" (naive 5xx, safe none), on each tier. */
describeTiers('lab fidelity: `lab experiment --timings realistic` (tails, two ALB nodes, keep-alive pools, IP reuse, CloudWatch lag)', (tier) => {
  it('naive serves 5xx, safe serves none; world figures name the profile and the seed', { timeout: 420_000 }, async () => {
    const lbc = tier === 'real' && testLbc() === 'real' ? ['--lbc', 'real'] : [];
    // 10× rather than 20×: the realistic profile's two nodes and tails load one process; at 20× a loaded CI machine's
    // event-loop stalls become tens of world seconds and the run measures the machine, not the rollout.
    const args = ['lab', 'experiment', '--format', 'json', '--timings', 'realistic', '--seed', '3', '--time-scale', '10', '--control-plane', tier, ...lbc];
    const run = await runCliFromSource(args, 400_000);
    assert.equal(run.code, 0, `lab experiment exited ${run.code}:\n${run.stderr.slice(-3000)}`);
    const result = JSON.parse(run.stdout.trim().split('\n').pop() as string) as { scenarios: Array<{ name: string; non2xx: number; responses: Record<string, number>; world: { timings: string; seed: number; timeScale: number } }> };
    const [naive, safe] = result.scenarios;
    assert.deepEqual([naive?.name, safe?.name], ['naive', 'safe']);
    for (const s of result.scenarios) assert.deepEqual([s.world.timings, s.world.seed, s.world.timeScale], ['realistic', 3, 10]);
    const naive5xx = Object.entries(naive!.responses).filter(([c]) => /^5/.test(c)).reduce((a, [, n]) => a + n, 0);
    assert.ok(naive5xx > 0, `naive: ${JSON.stringify(naive!.responses)}`);
    assert.equal(safe!.non2xx, 0, `safe: ${JSON.stringify(safe!.responses)}`);
  });
});
