import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildRolloutChart, MAX_BARS_PER_SECTION, type ChartInput } from '../../src/report/chart.js';
import { renderMermaidGantt } from '../../src/report/mermaid.js';
import type { TimelineEntry } from '../../src/report/timeline.js';

const t0 = Date.parse('2026-12-01T10:00:00.000Z');
const at = (s: number): string => new Date(t0 + s * 1000).toISOString();
const e = (s: number, kind: TimelineEntry['kind'], data: TimelineEntry['data']): TimelineEntry => ({ at: at(s), t: s, kind, message: kind, data });

function run(timeline: TimelineEntry[], result = 'succeeded'): ChartInput {
  return { result, phases: [{ name: 'workloads', startedAt: at(0), endedAt: at(40), durationSeconds: 40 }, { name: 'bake', startedAt: at(40) }], timeline };
}

describe('rollout chart', () => {
  it('groups new pods into batches that end when all of their pods are Ready', () => {
    const chart = buildRolloutChart(
      run([
        e(1, 'pod-created', { pod: 'a' }),
        e(1.2, 'pod-created', { pod: 'b' }),
        e(5, 'pod-ready', { pod: 'a' }),
        e(6, 'pod-ready', { pod: 'b' }),
        e(7, 'pod-created', { pod: 'c' }),
        e(9, 'pod-deleted', { pod: 'old' }),
      ]),
    );
    const batches = chart.sections.find((s) => s.name === 'Batches')?.bars;
    assert.deepEqual(batches?.map((b) => [b.label, (b.startMs - t0) / 1000, (b.endMs - t0) / 1000, b.kind]), [
      ['batch 1 (2 pods)', 1, 6, 'batch'],
      ['batch 2 (1 pod, not Ready)', 7, 40, 'failed'],
    ]);
    // An open phase runs to the end of what was seen; the last phase of a failed run is marked failed.
    assert.deepEqual(chart.sections[0]?.bars.map((b) => [b.label, b.kind, b.open ?? false]), [['workloads', 'phase', false], ['bake', 'phase', true]]);
    assert.equal(buildRolloutChart(run([], 'failed')).sections[0]?.bars[1]?.kind, 'failed');
  });

  it('draws each target initial → healthy and draining → gone, and says which never finished', () => {
    const chart = buildRolloutChart(
      run([
        e(2, 'target-state', { target: '10.0.0.1:80', state: 'initial' }),
        e(8, 'target-state', { target: '10.0.0.1:80', state: 'healthy' }),
        e(9, 'target-state', { target: '10.0.0.2:80', state: 'draining' }),
        e(19, 'target-state', { target: '10.0.0.2:80', state: 'gone' }),
        e(20, 'target-state', { target: '10.0.0.3:80', state: 'draining' }),
        e(21, 'target-state', { target: '10.0.0.4:80', state: 'initial' }),
      ]),
    );
    assert.deepEqual(chart.sections.find((s) => s.name === 'Targets')?.bars.map((b) => `${b.label} ${(b.startMs - t0) / 1000}-${(b.endMs - t0) / 1000}`), [
      '10.0.0.1:80 initial → healthy 2-8',
      '10.0.0.2:80 draining → gone 9-19',
      '10.0.0.3:80 draining (still at the end) 20-40',
      '10.0.0.4:80 initial (not healthy by the end) 21-40',
    ]);
  });

  it('counts what it leaves out, and the Mermaid text keeps labels plain', () => {
    const many = Array.from({ length: MAX_BARS_PER_SECTION + 5 }, (_, i) => [
      e(1, 'target-state', { target: `10.0.1.${i}:80`, state: 'initial' }),
      e(2, 'target-state', { target: `10.0.1.${i}:80`, state: 'healthy' }),
    ]).flat();
    const chart = buildRolloutChart(run(many));
    const targets = chart.sections.find((s) => s.name === 'Targets');
    assert.equal(targets?.bars.length, MAX_BARS_PER_SECTION);
    assert.equal(targets?.omitted, 5);
    const text = renderMermaidGantt(chart);
    assert.match(text, /^```mermaid\ngantt\n  title alb-rollout: succeeded\n  dateFormat x\n/);
    assert.match(text, /\n  10\.0\.1\.0∶80 initial → healthy :done, \d{13}, \d{13}\n/);
    assert.match(text, /\n  5 more \(see the JSON report\) :\d{13}, \d{13}\n/);
    assert.match(text, /\n  bake … :done, \d{13}, \d{13}\n/);
  });
});
