import { describeGitHubError, requestOptions, type GitHubClient, type GitHubRun } from './github.js';
import { RESULTS, type ResultValue } from './outputs.js';

/**
 * Optional GitHub Deployment (when `github-token` is given): a Deployment for the commit and the environment,
 * `in_progress` while alb-rollout runs, then a final state that follows the result, also when the run throws.
 * A failure of the GitHub API is reported as a warning, never fatal to the rollout.
 */

export type FinalDeploymentState = 'success' | 'failure' | 'error';

export interface DeploymentStatusReporter {
  readonly id: number;
  /** Idempotent: the first final state wins. */
  finish(state: FinalDeploymentState, description: string, environmentUrl?: string): Promise<void>;
  readonly finished: boolean;
}

/** The final Deployment state for a run's result (a result value that no one mapped fails to compile). */
export function deploymentStateFor(result: ResultValue, exitCode: number): FinalDeploymentState {
  const state = RESULTS[result].deploymentState;
  // `unverified` with --on-inconclusive pass exits 0: the deployment stands, and the description says it is unverified.
  return state === 'error' && exitCode === 0 ? 'success' : state;
}

export async function startDeploymentStatus(
  octokit: GitHubClient,
  run: GitHubRun,
  environment: string,
  warn: (message: string) => void,
): Promise<DeploymentStatusReporter | undefined> {
  let id: number;
  try {
    const created = await octokit.rest.repos.createDeployment({
      owner: run.owner,
      repo: run.repo,
      ref: run.sha,
      environment,
      auto_merge: false,
      required_contexts: [],
      description: 'alb-rollout deploy',
      ...requestOptions(),
    });
    const data = created.data as { id?: unknown; message?: unknown };
    if (typeof data.id !== 'number') throw new Error(`the GitHub API answered ${created.status} without a deployment id: ${String(data.message ?? '').slice(0, 200)}`);
    id = data.id;
  } catch (err) {
    warn(`could not create a GitHub deployment (the rollout goes on without it): ${describeGitHubError(err)}. The token needs the deployments: write permission.`);
    return undefined;
  }
  const status = async (state: 'in_progress' | FinalDeploymentState, description: string, environmentUrl?: string): Promise<void> => {
    await octokit.rest.repos.createDeploymentStatus({
      owner: run.owner,
      repo: run.repo,
      deployment_id: id,
      state,
      description: description.slice(0, 140),
      ...(run.runUrl ? { log_url: run.runUrl } : {}),
      ...(environmentUrl ? { environment_url: environmentUrl } : {}),
      ...requestOptions(),
    });
  };
  try {
    await status('in_progress', 'alb-rollout is rolling out');
  } catch (err) {
    warn(`could not set the GitHub deployment in_progress: ${describeGitHubError(err)}`);
  }
  let finished = false;
  return {
    id,
    get finished() {
      return finished;
    },
    finish: async (state, description, environmentUrl) => {
      if (finished) return;
      finished = true;
      try {
        await status(state, description, environmentUrl);
      } catch (err) {
        warn(`could not set the final GitHub deployment status (${state}); the deployment may show in_progress: ${describeGitHubError(err)}`);
      }
    },
  };
}
