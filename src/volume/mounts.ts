// Mounting the image's file system (and, for the GRUB step, the host's /dev, /proc and /sys
// inside it) with an unmount registered for every path out. Unmounting retries while something
// still holds the file system, then detaches it lazily rather than leaving it mounted.
import type { Reporter } from '../events.js';
import type { CleanupStack } from './cleanup-stack.js';
import { pathInImage } from './image-path.js';
import { runTool, runToolSync } from '../io/run-tool.js';

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function unmount(target: string, out?: Reporter): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await runTool('umount', [target], { out, what: `unmounting ${target}` });
      return;
    } catch (err) {
      if (!/busy/i.test(String(err))) throw err;
      if (attempt >= 10) {
        out?.warn(
          `${target} is still busy; detaching it lazily (the kernel unmounts it when it is released)`,
        );
        await runTool('umount', ['--lazy', target], { out, what: `unmounting ${target}` });
        return;
      }
      await sleep(300);
    }
  }
}

/** Mounts and returns the undo (also run by the clean-up stack if the caller never does). */
export async function mountWithUndo(
  args: readonly string[],
  target: string,
  cleanup: CleanupStack,
  out?: Reporter,
): Promise<() => Promise<void>> {
  await runTool('mount', [...args, target], { out, what: `mounting ${target}` });
  return cleanup.push(
    `unmount ${target}`,
    () => unmount(target, out),
    () => void (runToolSync('umount', [target]) || runToolSync('umount', ['--lazy', target])),
  );
}

/** Bind-mounts the host's /dev, /proc and /sys into the image (for a chrooted grub-install). */
export async function bindSystemDirs(
  root: string,
  cleanup: CleanupStack,
  out?: Reporter,
): Promise<() => Promise<void>> {
  const undos: (() => Promise<void>)[] = [];
  for (const dir of ['/dev', '/proc', '/sys'])
    undos.push(await mountWithUndo(['--bind', dir], pathInImage(root, dir), cleanup, out));
  return async () => {
    for (const undo of undos.reverse()) await undo();
  };
}
