// The fstab of a paravirtual image, made fit for an HVM disk (no QEMU needed): root by UUID, the
// PV instance's extra disks commented out with a note, everything else kept as it was.
import { describe, expect, it } from 'vitest';
import { hvmFstab, PV_NOTE } from '../../src/hvm/pv-fstab.js';

const root = { uuid: '0b8c1c7e-52c5-4f1e-9d8e-3e2a4f6b7c80', type: 'ext4' };

describe('hvmFstab', () => {
  it('switches the root to UUID and comments out ephemeral, swap and /dev/xvdb entries', () => {
    const r = hvmFstab(
      [
        '# PV instance',
        '/dev/sda1\t/\text4\tdefaults\t1 1',
        '/dev/sda2\t/mnt\text3\tdefaults\t0 0',
        '/dev/sda3\tswap\tswap\tdefaults\t0 0',
        '/dev/xvdb\t/data\text4\tdefaults\t0 0',
        '/dev/sdc /media/ephemeral1 auto defaults,nofail 0 0',
        'LABEL=scratch /mnt auto defaults 0 0',
        'none\t/proc\tproc\tdefaults\t0 0',
        'tmpfs /tmp tmpfs defaults 0 0',
        'UUID=0b8c1c7e-52c5-4f1e-9d8e-3e2a4f6b7c80 /srv ext4 defaults,noauto 0 0',
        '',
      ].join('\n'),
      root,
    );
    const lines = r.text.split('\n');
    expect(lines).toContain(`UUID=${root.uuid}\t/\text4\tdefaults\t1\t1`);
    for (const gone of [
      '/dev/sda2\t/mnt',
      '/dev/sda3\tswap',
      '/dev/xvdb\t/data',
      '/dev/sdc /media/ephemeral1',
      'LABEL=scratch /mnt',
    ])
      expect(lines.find((l) => l.includes(gone))).toMatch(/^#/);
    // LABEL=scratch is commented out as a disk the image does not have (volume/fstab.ts's note).
    expect(lines.filter((l) => l.startsWith(PV_NOTE))).toHaveLength(4);
    for (const kept of ['none\t/proc\tproc\tdefaults\t0 0', 'tmpfs /tmp tmpfs defaults 0 0', '# PV instance'])
      expect(lines).toContain(kept);
    expect(r.notes.filter((n) => n.includes('instance-store/PV device'))).toHaveLength(4);
    expect(r.changed).toBe(true);
  });

  it('keeps /dev/xvda1 as the root device name only until it is replaced by the UUID, and leaves a clean fstab alone', () => {
    const clean = `UUID=${root.uuid} / ext4 defaults 0 1\nproc /proc proc defaults 0 0\n`;
    expect(hvmFstab(clean, root)).toEqual({ text: clean, notes: [], changed: false });
    const xvda = hvmFstab('/dev/xvda1 / ext4 defaults 0 1\n', root);
    expect(xvda.text).toContain(`UUID=${root.uuid}\t/\text4`);
    expect(xvda.text).not.toMatch(new RegExp(`^${PV_NOTE}`, 'm'));
  });
});
