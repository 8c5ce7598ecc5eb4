import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { deploymentStateFor, startDeploymentStatus } from '../../src/action/deployment-status.js';
import { githubClient, readGitHubRun, type GitHubRun } from '../../src/action/github.js';
import { environmentUrl, hasHttpsListener } from '../../src/action/outputs.js';
import { addedLines, commentMarker, upsertStickyComment } from '../../src/action/pull-request.js';
import { loadManifests } from '../../src/manifests/load.js';
import type { TimelineEntry } from '../../src/report/timeline.js';
import { startFakeGitHub, type FakeGitHub } from './fake-github.js';
import { root, runAction } from './run-action.js';

const RUN: GitHubRun = { apiUrl: '', serverUrl: 'https://github.com', repository: 'acme/shop', owner: 'acme', repo: 'shop', sha: 'abc123', eventName: 'push', workflow: 'plan', job: 'plan' };
const fast = { retryBaseMs: 1 };

describe('GitHub REST calls through @actions/github (fake API on loopback)', () => {
  let gh: FakeGitHub;
  before(async () => {
    gh = await startFakeGitHub();
  });
  after(() => gh.close());

  it('creates a Deployment, sets in_progress, then one final status; 5xx answers are retried', async () => {
    gh.calls.length = 0;
    const run = { ...RUN, apiUrl: gh.url, runUrl: 'https://github.com/acme/shop/actions/runs/7' };
    const warnings: string[] = [];
    gh.failNext(/^POST \/repos\/acme\/shop\/deployments$/, 502, 1);
    gh.failNext(/statuses$/, 503, 2);
    const reporter = await startDeploymentStatus(githubClient('t0k', run, fast), run, 'staging', (m) => warnings.push(m));
    assert.ok(reporter);
    await reporter.finish('failure', 'alb-rollout: rolled-back', 'https://shop.example.com');
    await reporter.finish('success', 'a second final state is ignored');
    const id = reporter.id;
    assert.deepEqual(gh.log(), [
      'POST /repos/acme/shop/deployments',
      'POST /repos/acme/shop/deployments',
      `POST /repos/acme/shop/deployments/${id}/statuses`,
      `POST /repos/acme/shop/deployments/${id}/statuses`,
      `POST /repos/acme/shop/deployments/${id}/statuses`,
      `POST /repos/acme/shop/deployments/${id}/statuses`,
    ]);
    assert.deepEqual(warnings, []);
    assert.equal(gh.calls[1]?.body.environment, 'staging');
    assert.deepEqual(gh.calls.slice(2).map((c) => c.body.state), ['in_progress', 'in_progress', 'in_progress', 'failure']);
    assert.equal(gh.calls[5]?.body.environment_url, 'https://shop.example.com');
    assert.equal(gh.calls[5]?.body.log_url, 'https://github.com/acme/shop/actions/runs/7');
  });

  it('does not retry a 403 and goes on without a Deployment, saying which permission is missing', async () => {
    gh.calls.length = 0;
    const run = { ...RUN, apiUrl: gh.url };
    const warnings: string[] = [];
    gh.failNext(/deployments$/, 403, 1);
    const reporter = await startDeploymentStatus(githubClient('t0k', run, fast), run, 'production', (m) => warnings.push(m));
    assert.equal(reporter, undefined);
    assert.deepEqual(gh.log(), ['POST /repos/acme/shop/deployments']);
    assert.match(warnings[0] ?? '', /HTTP 403.*deployments: write/);
  });

  it('finds the sticky comment by its marker across pages and updates it instead of adding one', async () => {
    gh.calls.length = 0;
    const run = { ...RUN, apiUrl: gh.url };
    const pr = { number: 5, headRepository: 'acme/shop', baseRepository: 'acme/shop', headSha: 'abc', fromFork: false };
    const marker = commentMarker(run);
    gh.comments.set(5, Array.from({ length: 130 }, (_, i) => ({ id: i + 1, body: i === 120 ? `${marker}\nold plan` : `comment ${i}` })));
    const first = await upsertStickyComment(githubClient('t0k', run, fast), run, pr, marker, `${marker}\nnew plan`);
    assert.deepEqual(first, { action: 'updated', id: 121, url: 'https://github.example/acme/shop/pull/5#issuecomment-121' });
    assert.deepEqual(gh.log(), ['GET /repos/acme/shop/issues/5/comments', 'GET /repos/acme/shop/issues/5/comments', 'PATCH /repos/acme/shop/issues/comments/121']);
    assert.equal(gh.comments.get(5)?.length, 130);
    assert.equal(gh.comments.get(5)?.[120]?.body, `${marker}\nnew plan`);
  });

  it('reports a comment it could not write instead of throwing', async () => {
    const run = { ...RUN, apiUrl: gh.url };
    const pr = { number: 6, headRepository: 'acme/shop', baseRepository: 'acme/shop', headSha: 'abc', fromFork: false };
    gh.failNext(/POST .*\/issues\/6\/comments$/, 403, 1);
    const r = await upsertStickyComment(githubClient('t0k', run, fast), run, pr, commentMarker(run), 'x');
    assert.equal(r.action, 'failed');
    assert.match(r.action === 'failed' ? r.reason : '', /HTTP 403/);
  });
});

describe('pull-request helpers', () => {
  it('reads the changed lines of a unified diff (new-side numbers of + lines)', () => {
    assert.deepEqual([...addedLines('@@ -1,3 +1,4 @@\n a\n-b\n+B\n+C\n c\n@@ -10,2 +11,2 @@\n x\n+y')], [2, 3, 12]);
  });

  it('reads the pull request from the event payload; a head repository that differs is a fork', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'alb-gh-event-'));
    try {
      const path = join(dir, 'event.json');
      await writeFile(path, JSON.stringify(prEvent(9, 'someone/shop')));
      const run = await readGitHubRun({ GITHUB_REPOSITORY: 'acme/shop', GITHUB_EVENT_NAME: 'pull_request', GITHUB_EVENT_PATH: path, GITHUB_RUN_ID: '3' });
      assert.deepEqual(run?.pullRequest, { number: 9, headRepository: 'someone/shop', baseRepository: 'acme/shop', headSha: 'feedbeef', fromFork: true });
      assert.equal(run?.runUrl, 'https://github.com/acme/shop/actions/runs/3');
      assert.equal((await readGitHubRun({ GITHUB_REPOSITORY: 'acme/shop', GITHUB_EVENT_NAME: 'push', GITHUB_EVENT_PATH: path }))?.pullRequest, undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('deployment state and environment URL', () => {
  it('maps every result to a final state; unverified that exits 0 (on-inconclusive pass) stands as success', () => {
    assert.equal(deploymentStateFor('succeeded', 0), 'success');
    assert.equal(deploymentStateFor('failed', 1), 'failure');
    assert.equal(deploymentStateFor('rolled-back', 1), 'failure');
    assert.equal(deploymentStateFor('unverified', 1), 'error');
    assert.equal(deploymentStateFor('unverified', 0), 'success');
  });

  it('uses https:// when the Ingress has an HTTPS listener', async () => {
    assert.equal(hasHttpsListener({ 'alb.ingress.kubernetes.io/listen-ports': '[{"HTTP": 80}, {"HTTPS": 443}]' }), true);
    assert.equal(hasHttpsListener({ 'alb.ingress.kubernetes.io/listen-ports': '[{"HTTP": 80}]', 'alb.ingress.kubernetes.io/certificate-arn': 'arn:x' }), false);
    assert.equal(hasHttpsListener({ 'alb.ingress.kubernetes.io/certificate-arn': 'arn:aws:acm:eu-central-1:1:certificate/x' }), true);
    assert.equal(hasHttpsListener({}), false);
    const set = await loadManifests({ paths: ['examples/2048/safe'], defaultNamespace: 'default', baseDir: root });
    const ing = set.objects.find((o) => o.ref.kind === 'Ingress');
    assert.ok(ing);
    const lb: TimelineEntry = { at: '', t: 0, kind: 'load-balancer', message: '', data: { ingress: `${ing.ref.namespace}/${ing.ref.name}`, hostname: 'k8s-x.elb.amazonaws.com' } };
    assert.equal(environmentUrl([lb], set.objects), 'http://k8s-x.elb.amazonaws.com');
    ing.object.metadata.annotations = { ...ing.object.metadata.annotations, 'alb.ingress.kubernetes.io/listen-ports': '[{"HTTPS":443}]' };
    assert.equal(environmentUrl([lb], set.objects), 'https://k8s-x.elb.amazonaws.com');
    assert.equal(environmentUrl([], set.objects), undefined);
  });
});

function prEvent(number: number, head: string): Record<string, unknown> {
  return { action: 'synchronize', number, pull_request: { number, head: { sha: 'feedbeef', repo: { full_name: head } }, base: { sha: 'base', repo: { full_name: 'acme/shop' } } } };
}

describe('mode plan on pull_request, run as GitHub runs it (dist/index.js)', () => {
  let gh: FakeGitHub;
  let dir: string;
  before(async () => {
    gh = await startFakeGitHub();
    dir = await mkdtemp(join(tmpdir(), 'alb-gh-pr-'));
  });
  after(async () => {
    await gh.close();
    await rm(dir, { recursive: true, force: true });
  });

  const env = async (head: string): Promise<Record<string, string>> => {
    const path = join(dir, `event-${head.replace('/', '_')}.json`);
    await writeFile(path, JSON.stringify(prEvent(12, head)));
    return { GITHUB_API_URL: gh.url, GITHUB_REPOSITORY: 'acme/shop', GITHUB_SHA: 'merge123', GITHUB_EVENT_NAME: 'pull_request', GITHUB_EVENT_PATH: path, GITHUB_WORKFLOW: 'plan', GITHUB_JOB: 'plan', GITHUB_RUN_ID: '77' };
  };
  const inputs = { mode: 'plan', manifests: 'examples/2048/naive', 'readiness-gates': 'require', tune: 'check', 'github-token': 'ghs_pr' };

  it('creates one sticky comment, then updates the same one; annotations only on the changed lines', async () => {
    // The pull request changes line 22 of the Deployment (where prestop-missing points), nothing else.
    gh.files.set(12, [{ filename: 'examples/2048/naive/2-deployment.yaml', patch: '@@ -21,2 +21,2 @@\n         - containerPort: 80\n-        old\n+        new' }]);
    const e = await env('acme/shop');
    const first = await runAction({ ...inputs, 'fail-on': 'none' }, e);
    assert.equal(first.code, 0, first.stdout);
    assert.deepEqual(gh.log(), ['GET /repos/acme/shop/pulls/12/files', 'GET /repos/acme/shop/issues/12/comments', 'POST /repos/acme/shop/issues/12/comments']);
    const comments = gh.comments.get(12) ?? [];
    assert.equal(comments.length, 1);
    const body = comments[0]?.body ?? '';
    assert.ok(body.startsWith('<!-- alb-rollout plan: plan/plan -->'), body.slice(0, 80));
    assert.match(body, /### alb-rollout plan ✅/);
    assert.match(body, /\| error \| `prestop-missing` \| `examples\/2048\/naive\/2-deployment\.yaml:22` \|/);
    assert.match(body, /```diff\n@@ examples\/2048\/naive\/2-deployment\.yaml:22 Deployment game-2048\/deployment-2048 @@\n- spec\.template\.spec\.containers\[0\]\.lifecycle\.preStop\.sleep\.seconds: \(unset\)\n\+ .*: 40/);
    assert.match(body, /_2 of these are on lines this pull request does not change/);
    assert.match(body, /`feedbeef`/);
    const annotations = first.stdout.split('\n').filter((l) => /^::(error|warning|notice) /.test(l));
    assert.deepEqual(
      annotations.map((l) => /title=([^,]+),file=([^,]+),line=(\d+)/.exec(l)?.slice(1).join(' ')),
      ['alb-rollout prestop-missing examples/2048/naive/2-deployment.yaml 22', 'alb-rollout tuning examples/2048/naive/2-deployment.yaml 22'],
    );
    assert.match(first.summary, /posted as a comment on pull request #12/);

    gh.calls.length = 0;
    const second = await runAction(inputs, e);
    assert.equal(second.code, 1, second.stdout);
    const id = comments[0]?.id;
    assert.deepEqual(gh.log(), ['GET /repos/acme/shop/pulls/12/files', 'GET /repos/acme/shop/issues/12/comments', `PATCH /repos/acme/shop/issues/comments/${id}`]);
    assert.equal(gh.comments.get(12)?.length, 1);
    assert.match(gh.comments.get(12)?.[0]?.body ?? '', /### alb-rollout plan ❌/);
    assert.match(second.summary, /updated as a comment on pull request #12/);
    assert.ok(gh.calls.every((c) => c.authorization === 'token ghs_pr'));
  });

  it('from a fork: no comment, every finding annotated, and the summary says why', async () => {
    gh.calls.length = 0;
    const r = await runAction({ ...inputs, 'fail-on': 'none', 'github-token': '' }, await env('someone/shop'));
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(gh.log(), []);
    assert.match(r.summary, /comes from a fork \(someone\/shop\).*job summary only/);
    assert.equal(r.stdout.split('\n').filter((l) => l.startsWith('::error ')).length, 3);
  });

  it('without a token: the job summary only, and it says how to get the comment', async () => {
    gh.calls.length = 0;
    const r = await runAction({ ...inputs, 'fail-on': 'none', 'github-token': '' }, await env('acme/shop'));
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(gh.log(), []);
    assert.match(r.summary, /No github-token input: the plan is in this job summary only/);
  });

  it('a deploy that stops on an exception still ends its Deployment in a final state', async () => {
    gh.calls.length = 0;
    const r = await runAction({ manifests: 'examples/2048/safe', kubeconfig: join(dir, 'missing-kubeconfig'), 'github-token': 'ghs_x' }, { GITHUB_API_URL: gh.url, GITHUB_REPOSITORY: 'acme/shop', GITHUB_SHA: 'abc' });
    assert.notEqual(r.code, 0);
    assert.equal(r.outputs.result, 'failed');
    assert.equal(gh.log()[0], 'POST /repos/acme/shop/deployments');
    assert.deepEqual(gh.calls.slice(1).map((c) => c.body.state), ['in_progress', 'error']);
    assert.match(String(gh.calls[2]?.body.description), /^alb-rollout stopped before a result: .*missing-kubeconfig/);
  });
});
