import { describeGitHubError, requestOptions, type GitHubClient, type GitHubRun, type PullRequestInfo } from './github.js';

/**
 * `mode: plan` on a pull request: one sticky comment per workflow job (found again by a hidden marker, created once,
 * then updated) and the lines the pull request changes (annotations go there).
 */

/** Comments read while looking for the sticky one (100 per page). */
const MAX_COMMENT_PAGES = 30;
/** Files of a pull request the API lists (3,000 at most on GitHub's side too). */
const MAX_FILE_PAGES = 30;

export function commentMarker(run: Pick<GitHubRun, 'workflow' | 'job'>): string {
  const key = `${run.workflow}/${run.job}`.replace(/--+/g, '-').replace(/[<>]/g, '');
  return `<!-- alb-rollout plan: ${key} -->`;
}

export type CommentOutcome = { action: 'created' | 'updated'; id: number; url?: string } | { action: 'failed'; reason: string };

export async function upsertStickyComment(octokit: GitHubClient, run: GitHubRun, pr: PullRequestInfo, marker: string, body: string): Promise<CommentOutcome> {
  try {
    let existing: number | undefined;
    let pages = 0;
    for await (const page of octokit.paginate.iterator(octokit.rest.issues.listComments, { owner: run.owner, repo: run.repo, issue_number: pr.number, per_page: 100, ...requestOptions() })) {
      const hit = page.data.find((c) => typeof c.body === 'string' && c.body.startsWith(marker));
      if (hit) {
        existing = hit.id;
        break;
      }
      if (++pages >= MAX_COMMENT_PAGES) break;
    }
    if (existing !== undefined) {
      const r = await octokit.rest.issues.updateComment({ owner: run.owner, repo: run.repo, comment_id: existing, body, ...requestOptions() });
      return { action: 'updated', id: existing, ...(r.data.html_url ? { url: r.data.html_url } : {}) };
    }
    const r = await octokit.rest.issues.createComment({ owner: run.owner, repo: run.repo, issue_number: pr.number, body, ...requestOptions() });
    return { action: 'created', id: r.data.id, ...(r.data.html_url ? { url: r.data.html_url } : {}) };
  } catch (err) {
    return { action: 'failed', reason: describeGitHubError(err) };
  }
}

/** file → the new-side line numbers the pull request adds or changes; undefined when the API cannot tell. */
export async function changedLines(octokit: GitHubClient, run: GitHubRun, pr: PullRequestInfo): Promise<Map<string, Set<number>> | undefined> {
  try {
    const out = new Map<string, Set<number>>();
    let pages = 0;
    for await (const page of octokit.paginate.iterator(octokit.rest.pulls.listFiles, { owner: run.owner, repo: run.repo, pull_number: pr.number, per_page: 100, ...requestOptions() })) {
      for (const f of page.data) if (f.patch !== undefined) out.set(f.filename, addedLines(f.patch));
      if (++pages >= MAX_FILE_PAGES) break;
    }
    return out;
  } catch {
    return undefined;
  }
}

/** The new-side line numbers of `+` lines in a unified diff. */
export function addedLines(patch: string): Set<number> {
  const lines = new Set<number>();
  let next = 0;
  for (const l of patch.split('\n')) {
    const hunk = /^@@ -\d+(?:,\d+)? \+(\d+)(?:,\d+)? @@/.exec(l);
    if (hunk) next = Number(hunk[1]);
    else if (l.startsWith('+')) lines.add(next++);
    else if (l.startsWith(' ') || l === '') next++;
  }
  return lines;
}

/** Is file:line among the changed lines (paths compared relative to the repository root)? */
export function isChanged(changed: Map<string, Set<number>>, file: string, line: number): boolean {
  return changed.get(file.replace(/^\.\//, ''))?.has(line) ?? false;
}
