// Undo steps for everything bundle-vol sets up (temporary directory, image file, loop device,
// mounts), run newest first on every path out: success, failure and interruption. If the process
// exits before the steps ran (a second Ctrl-C exits at once), a synchronous copy of each step
// runs from the 'exit' event, so no mount or loop device outlives the run.
import type { Reporter } from '../events.js';
import { describeError } from '../errors.js';

interface UndoStep {
  readonly label: string;
  readonly run: () => Promise<void>;
  readonly runSync: () => void;
}

export class CleanupStack {
  private readonly steps: UndoStep[] = [];
  private readonly onExit = (): void => this.unwindSync();

  constructor(private readonly out?: Reporter) {
    process.on('exit', this.onExit);
  }

  /** Registers an undo step; returns a function that runs it early (and then forgets it). */
  push(label: string, run: () => Promise<void>, runSync: () => void): () => Promise<void> {
    const step: UndoStep = { label, run, runSync };
    this.steps.push(step);
    return async () => {
      if (!this.steps.includes(step)) return;
      // Forgotten only once done: if the process exits meanwhile, the exit hook repeats it.
      await step.run();
      this.forget(step);
    };
  }

  private forget(step: UndoStep): void {
    const i = this.steps.indexOf(step);
    if (i >= 0) this.steps.splice(i, 1);
  }

  /** Forgets a step without running it (its effect is now wanted, e.g. the finished image). */
  keep(label: string): void {
    const i = this.steps.findIndex((s) => s.label === label);
    if (i >= 0) this.steps.splice(i, 1);
  }

  /**
   * Runs every step, newest first. A failing step does not stop the others; the failures are
   * returned (and reported) so the caller can say what was left behind.
   */
  async unwind(): Promise<string[]> {
    const failures: string[] = [];
    while (this.steps.length > 0) {
      const step = this.steps[this.steps.length - 1]!;
      try {
        this.out?.debug(`clean-up: ${step.label}`);
        await step.run();
      } catch (err) {
        failures.push(`${step.label}: ${describeError(err)}`);
      }
      this.forget(step);
    }
    process.off('exit', this.onExit);
    return failures;
  }

  private unwindSync(): void {
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        step.runSync();
      } catch {
        /* the process is exiting: nothing better to do than try the next step */
      }
    }
  }
}
