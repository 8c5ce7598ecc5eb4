import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildRolloutChart } from '../../src/report/chart.js';
import { renderDeployHtml } from '../../src/report/html.js';
import { renderMermaidGantt } from '../../src/report/mermaid.js';
import type { DeployResult } from '../../src/rollout/deploy.js';
import { e2eLab, labArgs, root, variant, type E2eLab } from '../e2e/helpers.js';

/**
 * The HTML report (`deploy --report-html`) and the summary's Mermaid chart, rendered in headless Chromium (Debian's
 * `chromium`, driven by playwright-core): the page renders, shows the phases, logs no console error and fetches
 * nothing; the Mermaid text parses and renders with the Mermaid library GitHub uses.
 */

const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p): p is string => !!p && existsSync(p));
const skip = CHROMIUM ? false : 'chromium is not installed (apt-get install chromium; .ci/run installs it): the HTML report is not rendered in a browser';

/** A run that failed its guard and rolled back, as data (the lab covers the succeeded case). */
function rolledBackRun(): DeployResult {
  const t0 = Date.parse('2026-12-01T10:00:00.000Z');
  const at = (s: number): string => new Date(t0 + s * 1000).toISOString();
  const phase = (name: string, from: number, to: number) => ({ name, startedAt: at(from), endedAt: at(to), durationSeconds: to - from });
  const e = (s: number, kind: DeployResult['timeline'][number]['kind'], message: string, data?: Record<string, string | number | boolean | null>) => ({ at: at(s), t: s, kind, message, ...(data ? { data } : {}) });
  return {
    result: 'rolled-back',
    revision: '3',
    previousRevision: '1',
    durationSeconds: 60,
    phases: [phase('preflight', 0, 1), phase('routing', 1, 5), phase('workloads', 5, 30), phase('rollback', 30, 60)],
    timeline: [
      e(6, 'pod-created', 'pod web-2-a created', { pod: 'web-2-a' }),
      e(7, 'guard', 'guard started: probe', { event: 'started' }),
      e(8, 'target-state', 'target 10.0.0.9:80 initial', { target: '10.0.0.9:80', state: 'initial' }),
      e(12, 'pod-ready', 'pod web-2-a Ready', { pod: 'web-2-a' }),
      e(14, 'target-state', 'target 10.0.0.9:80 healthy', { target: '10.0.0.9:80', state: 'healthy' }),
      e(15, 'target-state', 'target 10.0.0.4:80 draining', { target: '10.0.0.4:80', state: 'draining' }),
      e(25, 'target-state', 'target 10.0.0.4:80 gone (deregistered)', { target: '10.0.0.4:80', state: 'gone' }),
      e(28, 'guard', 'probe: 9 of 10 requests failed <script>alert(1)</script>', { signal: 'probe', verdict: 'failure', windowStart: at(26), windowEnd: at(27) }),
      e(29, 'guard', 'guard failed: probe', { verdict: 'fail', signal: 'probe' }),
      e(31, 'rollback', 'Deployment shop/web: revision 2 → template of revision 1 written', { from: 2, to: 1 }),
      e(59, 'rollback', 'rolled back shop/web', { outcome: 'rolled-back' }),
    ],
    loadBalancerHostnames: ['k8s-shop.elb.amazonaws.com'],
    targetGroupArns: ['arn:aws:elasticloadbalancing:eu-central-1:1:targetgroup/k8s-shop/1'],
    apiCalls: { kubernetes: {}, elbv2: {}, throttled: { elbv2: 0 }, retried: { kubernetes: {}, elbv2: {} } },
    error: 'the guard saw the new version fail',
    failedPhase: 'workloads',
    exitCode: 1,
    applied: [],
  };
}

describe('the HTML report and the Mermaid chart in Chromium', { skip }, () => {
  let browser: Browser;
  let l: E2eLab;
  before(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM as string, args: ['--no-sandbox', '--disable-gpu'] });
    l = await e2eLab();
  });
  after(async () => {
    await browser?.close();
    await l?.stop();
  });

  /** Opens a file: page, failing on console errors, page errors and any request that is not the page itself. */
  async function open(file: string): Promise<{ page: Page; problems: string[] }> {
    const page = await browser.newPage();
    const problems: string[] = [];
    const self = pathToFileURL(file).toString();
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('request', (r) => {
      if (r.url() !== self) problems.push(`request: ${r.url()}`);
    });
    await page.goto(self);
    await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });
    return { page, problems };
  }

  it('deploy --report-html writes a page that renders the rollout: phases, batches, targets, guard', async () => {
    // The probe is off: this test is about the picture, and the guard still watches (target health, CloudWatch).
    const install = await l.cli(['deploy', '-f', 'examples/2048/safe', '--probe', 'off', ...labArgs(l)]);
    assert.equal(install.code, 0, install.stderr);
    const v2 = await variant('2048/safe', l.dir, 'v2');
    const file = join(l.dir, 'report.html');
    const update = await l.cli(['deploy', '-f', v2, '--probe', 'off', '--report-html', file, ...labArgs(l)]);
    assert.equal(update.code, 0, update.stderr);
    const { page, problems } = await open(file);
    try {
      assert.equal(await page.textContent('#result'), 'succeeded');
      const sections = await page.$$eval('#rollout-chart text.section', (ts) => ts.map((t) => t.textContent));
      assert.deepEqual(sections, ['Phases', 'Batches', 'Targets', 'Guard']);
      const phases = await page.$$eval('#rollout-chart g[data-kind="phase"] text', (ts) => ts.map((t) => t.textContent));
      assert.deepEqual(phases, ['preflight', 'namespaces', 'routing', 'workloads', 'bake']);
      const bars = await page.$$eval('#rollout-chart rect', (rs) => rs.map((r) => (r as unknown as { getBBox(): { width: number } }).getBBox().width));
      assert.ok(bars.length >= 8 && bars.every((w) => w >= 2), `bars: ${JSON.stringify(bars)}`);
      const targets = await page.$$eval('#rollout-chart g[data-kind^="target"] text', (ts) => ts.map((t) => t.textContent ?? ''));
      assert.ok(targets.some((t) => t.endsWith('initial → healthy')), JSON.stringify(targets));
      assert.ok(targets.some((t) => t.endsWith('draining → gone')), JSON.stringify(targets));
      assert.deepEqual(await page.$$eval('#phases td:first-child', (tds) => tds.map((t) => t.textContent)), ['preflight', 'namespaces', 'routing', 'workloads', 'bake']);
      // The inline script works: the filter narrows the timeline.
      const all = await page.$$eval('#timeline tr[data-kind]', (rs) => rs.length);
      await page.fill('#filter', 'phase bake');
      const shown = await page.$$eval('#timeline tr[data-kind]', (rs) => rs.filter((r) => (r as unknown as { style: { display: string } }).style.display !== 'none').length);
      assert.ok(all > 10 && shown >= 1 && shown < all, `${shown} of ${all} rows shown`);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });

  it('shows a rollback and a failing guard window, and escapes what the run saw', async () => {
    const file = join(l.dir, 'rolled-back.html');
    await writeFile(file, renderDeployHtml(rolledBackRun()));
    const { page, problems } = await open(file);
    try {
      assert.equal(await page.textContent('#result'), 'rolled-back');
      assert.deepEqual(await page.$$eval('#rollout-chart text.section', (ts) => ts.map((t) => t.textContent)), ['Phases', 'Batches', 'Targets', 'Guard', 'Rollback']);
      assert.deepEqual(await page.$$eval('#rollout-chart g[data-kind="rollback"] text', (ts) => ts.map((t) => t.textContent)), ['rollback', 'rollback (rolled-back)']);
      assert.equal(await page.$$eval('#rollout-chart g[data-kind="guard-failure"]', (gs) => gs.length), 2);
      assert.equal(await page.$$eval('script', (s) => s.length), 1);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });

  it('the Mermaid gantt of the job summary parses and renders with Mermaid', async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(err.message));
    try {
      await page.setContent('<!doctype html><html><body><div id="out"></div></body></html>');
      await page.addScriptTag({ content: await readFile(join(root, 'node_modules', 'mermaid', 'dist', 'mermaid.min.js'), 'utf8') });
      const text = renderMermaidGantt(buildRolloutChart(rolledBackRun())).replace(/^```mermaid\n|```\n$/g, '');
      const svg = await page.evaluate(async (src) => {
        const m = (globalThis as unknown as { mermaid: { initialize(o: object): void; parse(t: string): Promise<unknown>; render(id: string, t: string): Promise<{ svg: string }> } }).mermaid;
        m.initialize({ startOnLoad: false });
        await m.parse(src);
        return (await m.render('chart', src)).svg;
      }, text);
      for (const label of ['alb-rollout: rolled-back', 'workloads', 'rollback (rolled-back)', '10.0.0.4∶80 draining → gone', 'probe failing window', 'Rollback']) assert.ok(svg.includes(label), `the rendered gantt lacks "${label}"`);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
    }
  });
});
