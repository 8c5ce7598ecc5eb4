/**
 * Optional GitHub Deployment status (when the `github-token` input is given): a Deployment for the commit and the
 * environment, `in_progress` while alb-rollout runs, then `success` or `failure` with the ALB as environment URL.
 * Plain REST calls (`GITHUB_API_URL`, default https://api.github.com); a failure here is reported, never fatal.
 */

export interface GitHubContext {
  token: string;
  apiUrl: string;
  /** owner/name */
  repository: string;
  sha: string;
  environment: string;
  runUrl?: string;
}

export interface DeploymentStatusReporter {
  finish(state: 'success' | 'failure', description: string, environmentUrl?: string): Promise<void>;
}

export async function startDeploymentStatus(ctx: GitHubContext, warn: (message: string) => void): Promise<DeploymentStatusReporter | undefined> {
  const call = async (method: string, path: string, body: unknown): Promise<Record<string, unknown>> => {
    const res = await fetch(`${ctx.apiUrl.replace(/\/$/, '')}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${ctx.token}`,
        accept: 'application/vnd.github+json',
        'content-type': 'application/json',
        'x-github-api-version': '2022-11-28',
        'user-agent': 'alb-rollout',
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text.slice(0, 200)}`);
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  };
  try {
    const deployment = await call('POST', `/repos/${ctx.repository}/deployments`, {
      ref: ctx.sha,
      environment: ctx.environment,
      auto_merge: false,
      required_contexts: [],
      description: 'alb-rollout deploy',
    });
    const id = deployment.id;
    if (typeof id !== 'number') throw new Error(`the GitHub API answered without a deployment id: ${JSON.stringify(deployment).slice(0, 200)}`);
    const status = (state: string, description: string, environmentUrl?: string): Promise<Record<string, unknown>> =>
      call('POST', `/repos/${ctx.repository}/deployments/${id}/statuses`, {
        state,
        description: description.slice(0, 140),
        ...(ctx.runUrl ? { log_url: ctx.runUrl } : {}),
        ...(environmentUrl ? { environment_url: environmentUrl } : {}),
      });
    await status('in_progress', 'alb-rollout is rolling out');
    return {
      finish: async (state, description, environmentUrl) => {
        try {
          await status(state, description, environmentUrl);
        } catch (err) {
          warn(`could not set the GitHub deployment status: ${(err as Error).message}`);
        }
      },
    };
  } catch (err) {
    warn(`could not create a GitHub deployment (the rollout goes on without it): ${(err as Error).message}. The token needs the deployments: write permission.`);
    return undefined;
  }
}
