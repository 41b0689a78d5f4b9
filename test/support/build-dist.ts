// vitest global setup: `npm run build` once (tsc, then the command line's bundle that bin/*.js run),
// so tests that run the CLI as a user does exercise the current sources, not a stale build.
import { execFileSync } from 'node:child_process';
import { projectRoot } from './fixtures.js';

export default function setup(): void {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: projectRoot, stdio: 'inherit' });
}
