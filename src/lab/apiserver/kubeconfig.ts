/** A kubeconfig for the lab API server (cluster, user and context all named "alb-rollout-lab"). */
import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';

export const LAB_CONTEXT = 'alb-rollout-lab';

export function kubeconfigYaml(url: string, token?: string, caPem?: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    preferences: {},
    // The embedded server speaks plain HTTP: client-node refuses that unless TLS verification is marked skipped.
    clusters: [
      {
        name: LAB_CONTEXT,
        cluster: caPem ? { server: url, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } : { server: url, 'insecure-skip-tls-verify': true },
      },
    ],
    users: [{ name: LAB_CONTEXT, user: token ? { token } : {} }],
    contexts: [{ name: LAB_CONTEXT, context: { cluster: LAB_CONTEXT, user: LAB_CONTEXT, namespace: 'default' } }],
    'current-context': LAB_CONTEXT,
  });
}

export async function writeKubeconfig(path: string, url: string, token?: string, caPem?: string): Promise<void> {
  await writeFile(path, kubeconfigYaml(url, token, caPem), { mode: 0o600 });
}
