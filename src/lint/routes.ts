import type { DeploymentModel } from '../manifests/model.js';

export { routedDeployments, routesOf, type Route, type RoutedDeployment } from '../manifests/model.js';

export function deploymentName(d: DeploymentModel): string {
  return `${d.kind} ${d.namespace}/${d.name}`;
}

export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}
