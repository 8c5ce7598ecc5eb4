/** The lab's Kubernetes API server (see server.ts) and a kubeconfig writer for it. */
export { LabApiServer, type ApiFaults, type ApiServerOptions } from './server.js';
export { writeKubeconfig, kubeconfigYaml, LAB_CONTEXT } from './kubeconfig.js';
export { RESOURCES, findByKind, type ResourceDescriptor } from './resources.js';
