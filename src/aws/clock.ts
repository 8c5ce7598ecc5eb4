/**
 * AWS time as the tool sees it. Against AWS it is wall-clock time. Against the embedded lab, AWS time runs
 * `scale` times faster from `originMs` on, so CloudWatch periods and "when can this target's state change next"
 * must be computed on that clock; the lab prints both numbers (`--time-scale`, `--time-origin`).
 */
export interface AwsClock {
  readonly scale: number;
  readonly originMs: number;
  /** Now, in AWS epoch milliseconds. */
  now(): number;
  /** The wall-clock time (ms) at which the AWS clock shows `awsMs`. */
  toWall(awsMs: number): number;
  /** Wall-clock milliseconds for a duration in AWS seconds. */
  wallMs(awsSeconds: number): number;
}

export function awsClock(scale = 1, originMs = 0, wallNow: () => number = Date.now): AwsClock {
  return {
    scale,
    originMs,
    now: () => (scale === 1 ? wallNow() : originMs + (wallNow() - originMs) * scale),
    toWall: (awsMs) => (scale === 1 ? awsMs : originMs + (awsMs - originMs) / scale),
    wallMs: (awsSeconds) => (awsSeconds * 1000) / scale,
  };
}
