import { performance } from 'node:perf_hooks';

/**
 * A timeout that counts only time this process could run. A plain timer also counts the time the process was not
 * scheduled (a loaded machine) or its event loop was blocked; an answer that arrived meanwhile sits unread, and
 * the timer reports a timeout the other side did not cause. The guard's probe (a stalled runner must not read as a
 * slow target) and the lab's health checks and probes (checker and server share one event loop, on AWS they are
 * separate machines) use it.
 *
 * Each tick credits at most two ticks' worth, so a stall does not count; when the time is used up, the I/O that
 * arrived meanwhile is read first (an immediate runs after the poll phase). A target that never answers still times
 * out after `ms` of time the process was running. Returns the cancel function.
 */
export function responsiveTimeout(ms: number, onTimeout: () => void, now: () => number = () => performance.now()): () => void {
  const step = Math.min(100, Math.max(5, ms / 5));
  let credited = 0;
  let last = now();
  let cancelled = false;
  let immediate: NodeJS.Immediate | undefined;
  const tick = (): void => {
    const t = now();
    credited += Math.min(t - last, 2 * step);
    last = t;
    if (credited < ms) {
      timer = setTimeout(tick, step);
      timer.unref();
      return;
    }
    immediate = setImmediate(() => {
      if (!cancelled) onTimeout();
    });
  };
  let timer = setTimeout(tick, Math.min(step, ms));
  timer.unref();
  return () => {
    cancelled = true;
    clearTimeout(timer);
    if (immediate) clearImmediate(immediate);
  };
}
