// The Action's entry point (bundled to dist/index.js, runs.using: node24).
import { runAction } from './main.js';

runAction(process.env.GITHUB_WORKSPACE || process.cwd()).then((code) => {
  process.exitCode = code;
});
