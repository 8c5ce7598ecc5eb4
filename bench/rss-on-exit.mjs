// Preloaded into a CLI child by bench/suites/plan-cli.ts: its peak RSS (MB) on fd 3 when it exits.
import { writeSync } from 'node:fs';

process.on('exit', () => {
  writeSync(3, `${Math.round((process.resourceUsage().maxRSS / 1024) * 10) / 10}\n`);
});
