/** The lab's kubelet: pods as real HTTP servers behind virtual loopback IPs (see ../network.ts). */
export { Kubelet, type KubeletOptions, type PodEvent, type PodEventType, type ProcessImages } from './kubelet.js';
export { ContainerStartError, type ProcessSpec, type RestartPolicy } from './container.js';
export { ANALYSIS_ENTRYPOINT, DEFAULT_ANALYSIS_IMAGE, analysisImage, matchesImage, type AnalysisImageOptions, type TokenRequest } from './process.js';
export { BEHAVIOR_ENV, type Behavior, parseBehavior, preStopSeconds, imageVersion } from './behavior.js';
export { IpAllocator, defaultIpRange, realTierIpRange, type IpAllocatorOptions, type IpRange } from './ip.js';
