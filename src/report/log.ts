/** Where progress and messages go: the terminal, the Actions log, or nowhere (tests). */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Repeated status while waiting; a terminal may overwrite the previous line, a CI log prints it throttled. */
  progress(message: string): void;
  group<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

export function streamLogger(write: (s: string) => void, options: { progressEveryMs?: number; now?: () => number } = {}): Logger {
  const now = options.now ?? Date.now;
  let lastProgress = 0;
  let lastMessage = '';
  return {
    info: (m) => write(`${m}\n`),
    warn: (m) => write(`warning: ${m}\n`),
    error: (m) => write(`error: ${m}\n`),
    progress: (m) => {
      const t = now();
      if (m === lastMessage && t - lastProgress < (options.progressEveryMs ?? 5000)) return;
      if (t - lastProgress < 1000 && m !== lastMessage) {
        lastMessage = m;
        return;
      }
      lastProgress = t;
      lastMessage = m;
      write(`  … ${m}\n`);
    },
    group: async (name, fn) => {
      write(`\n== ${name}\n`);
      return fn();
    },
  };
}

export const silentLogger: Logger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  progress: () => undefined,
  group: (_name, fn) => fn(),
};
