// A paravirtual image's /etc/fstab, made fit for an HVM disk: the root entry names the file
// system by UUID (a PV image says /dev/sda1 or /dev/xvda1, which on an HVM instance is the disk's
// first partition only by luck, and nvme0n1p1 on Nitro), and entries for the disks a PV instance
// got from EC2's block device mapping (the ephemeral disk on /dev/sda2 or /dev/sdb, swap on
// /dev/sda3, /dev/xvdb…, anything mounted on /mnt or /media/ephemeral*) are commented out with a
// note: the new instance may not have them, and a missing one stops the boot in emergency mode.
import { adjustFstab, type FsIdentity } from '../volume/fstab.js';

/** Device names a PV instance's extra disks had: sda2+, sdb+, xvda2+, xvdb+, hda2+, hdb+. */
const PV_DEVICE = /^\/dev\/(?:(?:sd|xvd|hd)[a-z]\d*|(?:sd|xvd|hd)a(?:[2-9]|\d{2,}))$/;
/** Where EC2's ephemeral disks were mounted. */
const EPHEMERAL_MOUNT = /^\/(?:mnt|media\/ephemeral\d*|mnt\/ephemeral\d*|ephemeral\d*)$/;

export const PV_NOTE =
  '# amibundle --hvm: an instance-store/PV device, absent on an HVM instance unless attached:';

/** The root disk itself (sda, sda1, xvda1): never an extra. */
const ROOT_DEVICE = /^\/dev\/(?:sd|xvd|hd)a1?$/;

function isPvExtra(spec: string, file: string): boolean {
  return EPHEMERAL_MOUNT.test(file) || (PV_DEVICE.test(spec) && !ROOT_DEVICE.test(spec));
}

export interface PvFstabResult {
  readonly text: string;
  readonly notes: readonly string[];
  readonly changed: boolean;
}

/** Root by UUID (volume/fstab.ts), then the PV extra disks commented out, each with a note. */
export function hvmFstab(text: string, root: FsIdentity): PvFstabResult {
  const rooted = adjustFstab(text, root, []);
  const notes = [...rooted.notes];
  const lines = rooted.text.replace(/\n$/, '').split('\n');
  const out: string[] = [];
  for (const line of lines) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) {
      out.push(line);
      continue;
    }
    const [spec = '', file = ''] = t.split(/\s+/);
    if (file !== '/' && isPvExtra(spec, file)) {
      out.push(`${PV_NOTE} ${t}`);
      notes.push(
        `/etc/fstab: commented out ${file} (${spec}): an instance-store/PV device an HVM instance does not have`,
      );
      continue;
    }
    out.push(line);
  }
  return { text: `${out.join('\n')}\n`, notes, changed: notes.length > 0 };
}
