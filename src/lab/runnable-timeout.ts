/**
 * A timeout that counts only time this process could run. In the lab the checker (ALB health checks, kubelet
 * probes) and the checked server (a pod's container) share one event loop: while the loop is blocked — a loaded
 * machine, a burst of watch events — the target cannot answer and its answer cannot be read, so that wall time is
 * not the target's slowness. The timer ticks every `tickMs`; a tick that comes late counts as at most two ticks.
 * A target that never answers (a blackhole, a hung handler) still times out once the loop has run `ms`.
 */
export function runnableTimeout(ms: number, fn: () => void, tickMs = Math.max(5, Math.min(50, ms / 10))): { clear(): void } {
  let elapsed = 0;
  let last = Date.now();
  let handle: NodeJS.Timeout | undefined;
  const arm = (): void => {
    handle = setTimeout(tick, Math.min(tickMs, Math.max(1, ms - elapsed)));
    handle.unref();
  };
  const tick = (): void => {
    const now = Date.now();
    elapsed += Math.min(now - last, tickMs * 2);
    last = now;
    if (elapsed >= ms) fn();
    else arm();
  };
  arm();
  return { clear: () => clearTimeout(handle) };
}
