import { readFile } from 'node:fs/promises';
import { getOctokit } from '@actions/github';
import { retry } from '@octokit/plugin-retry';

/**
 * The GitHub side of a run, read once from the runner's environment (passed in, never read from globals), and the
 * Octokit client (`@actions/github`, with `@octokit/plugin-retry`: 5xx and network errors are retried with backoff).
 */

export interface PullRequestInfo {
  number: number;
  /** owner/name of the head repository (null when the fork was deleted). */
  headRepository: string | null;
  baseRepository: string;
  headSha: string;
  /** The head is another repository: its GITHUB_TOKEN is read-only, a comment cannot be written. */
  fromFork: boolean;
}

export interface GitHubRun {
  apiUrl: string;
  serverUrl: string;
  /** owner/name */
  repository: string;
  owner: string;
  repo: string;
  sha: string;
  eventName: string;
  runUrl?: string;
  /** Workflow and job, to keep one sticky comment per job that posts plans. */
  workflow: string;
  job: string;
  pullRequest?: PullRequestInfo;
}

export type GitHubClient = ReturnType<typeof getOctokit>;

/** undefined when GITHUB_REPOSITORY is not set (not on a runner). */
export async function readGitHubRun(env: Record<string, string | undefined>): Promise<GitHubRun | undefined> {
  const repository = env.GITHUB_REPOSITORY;
  if (!repository || !repository.includes('/')) return undefined;
  const [owner = '', repo = ''] = repository.split('/');
  const serverUrl = (env.GITHUB_SERVER_URL || 'https://github.com').replace(/\/$/, '');
  const eventName = env.GITHUB_EVENT_NAME ?? '';
  const pullRequest = eventName.startsWith('pull_request') && env.GITHUB_EVENT_PATH ? await readPullRequest(env.GITHUB_EVENT_PATH) : undefined;
  return {
    apiUrl: (env.GITHUB_API_URL || 'https://api.github.com').replace(/\/$/, ''),
    serverUrl,
    repository,
    owner,
    repo,
    sha: env.GITHUB_SHA ?? '',
    eventName,
    ...(env.GITHUB_RUN_ID ? { runUrl: `${serverUrl}/${repository}/actions/runs/${env.GITHUB_RUN_ID}` } : {}),
    workflow: env.GITHUB_WORKFLOW ?? '',
    job: env.GITHUB_JOB ?? '',
    ...(pullRequest ? { pullRequest } : {}),
  };
}

interface PullRequestPayload {
  pull_request?: { number?: unknown; head?: { sha?: unknown; repo?: { full_name?: unknown } | null }; base?: { repo?: { full_name?: unknown } } };
}

async function readPullRequest(path: string): Promise<PullRequestInfo | undefined> {
  let payload: PullRequestPayload;
  try {
    payload = JSON.parse(await readFile(path, 'utf8')) as PullRequestPayload;
  } catch {
    return undefined;
  }
  const pr = payload.pull_request;
  if (!pr || typeof pr.number !== 'number') return undefined;
  const head = typeof pr.head?.repo?.full_name === 'string' ? pr.head.repo.full_name : null;
  const base = typeof pr.base?.repo?.full_name === 'string' ? pr.base.repo.full_name : '';
  return { number: pr.number, headRepository: head, baseRepository: base, headSha: typeof pr.head?.sha === 'string' ? pr.head.sha : '', fromFork: head !== base };
}

export interface ClientOptions {
  /** Base of the retry backoff (plugin-retry waits retryCount² × this); tests shorten it. */
  retryBaseMs?: number;
  retries?: number;
}

export function githubClient(token: string, run: Pick<GitHubRun, 'apiUrl'>, options: ClientOptions = {}): GitHubClient {
  return getOctokit(
    token,
    {
      baseUrl: run.apiUrl,
      userAgent: 'alb-rollout',
      retry: { retries: options.retries ?? 3, retryAfterBaseValue: options.retryBaseMs ?? 1000 },
      log: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
    },
    retry,
  );
}

/** Per-request deadline: a hung API must not hold the deploy's final status hostage. */
export const REQUEST_TIMEOUT_MS = 20_000;
export const requestOptions = (): { request: { signal: AbortSignal } } => ({ request: { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) } });

/** An Octokit error as one line for the log: status, method, URL and GitHub's message. */
export function describeGitHubError(err: unknown): string {
  const e = err as { status?: number; message?: string; request?: { method?: string; url?: string } };
  const where = e.request?.method && e.request.url ? `${e.request.method} ${e.request.url}: ` : '';
  return `${where}${e.status ? `HTTP ${e.status} ` : ''}${e.message ?? String(err)}`;
}
