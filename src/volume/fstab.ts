// The image's /etc/fstab: the volume's own, adjusted so the image boots (root by UUID, entries
// for disks the image does not have commented out, with a note for each); or a generated one
// (the reference's content, corrected: root by UUID with the real type, ephemeral disks nofail).

export interface FsIdentity {
  readonly uuid: string;
  readonly label?: string;
  readonly type: string;
}

const header = (version: string): string =>
  `# /etc/fstab written by amibundle ${version} (bundle-vol --generate-fstab)\n` +
  '# The root file system is found by UUID, so the disk may be called xvda, sda or nvme0n1.\n';

/**
 * `--generate-fstab`. The reference wrote `/dev/sda1 / ext3` whatever the file system and disk
 * name were, and mounted the ephemeral disk without `nofail`, so instances without one hung at
 * boot; the legacy (i386) variant also had the ephemeral disk on sda2 and swap on sda3.
 */
export function generatedFstab(root: FsIdentity, legacy: boolean, version: string): string {
  const pass = root.type === 'xfs' ? '0 0' : '1 1';
  const rows: [string, string, string, string, string][] = [
    [`UUID=${root.uuid}`, '/', root.type, 'defaults', pass],
    legacy
      ? ['/dev/sda2', '/mnt', 'auto', 'defaults,nofail,x-systemd.device-timeout=10s', '0 0']
      : ['/dev/sdb', '/mnt', 'auto', 'defaults,nofail,x-systemd.device-timeout=10s', '0 0'],
    ...(legacy
      ? [
          ['/dev/sda3', 'swap', 'swap', 'defaults,nofail,x-systemd.device-timeout=10s', '0 0'] as [
            string,
            string,
            string,
            string,
            string,
          ],
        ]
      : []),
    ['none', '/dev/pts', 'devpts', 'gid=5,mode=620', '0 0'],
    ['none', '/proc', 'proc', 'defaults', '0 0'],
    ['none', '/sys', 'sysfs', 'defaults', '0 0'],
  ];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((f, i) => (i < 4 ? f.padEnd(widths[i]!) : f)).join(' '));
  return header(version) + lines.join('\n') + '\n';
}

interface FstabEntry {
  readonly spec: string;
  readonly file: string;
  readonly type: string;
  readonly options: string;
}

function decodeField(f: string): string {
  return f.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

function parseEntry(line: string): FstabEntry | undefined {
  const t = line.trim();
  if (t === '' || t.startsWith('#')) return undefined;
  const f = t.split(/\s+/);
  if (f.length < 2) return undefined;
  return {
    spec: decodeField(f[0]!),
    file: decodeField(f[1]!),
    type: f[2] ?? 'auto',
    options: f[3] ?? 'defaults',
  };
}

/** A reference to one particular partition or file system (not a launch-time device name). */
function namesADisk(spec: string): boolean {
  return (
    /^(UUID|LABEL|PARTUUID|PARTLABEL)=/i.test(spec) ||
    /^\/dev\/disk\/by-(uuid|label|partuuid|partlabel|id|path)\//.test(spec)
  );
}

function isRootIdentity(spec: string, root: FsIdentity): boolean {
  const m = /^(UUID|LABEL)=(.*)$/i.exec(spec);
  if (!m) return false;
  const value = m[2]!.replace(/^"(.*)"$/, '$1');
  if (m[1]!.toUpperCase() === 'UUID') return value.toLowerCase() === root.uuid.toLowerCase();
  return root.label !== undefined && value === root.label;
}

export interface FstabAdjustment {
  readonly text: string;
  readonly notes: readonly string[];
  readonly changed: boolean;
}

/**
 * Keeps the volume's fstab but fixes what would stop the image from booting:
 *  - the root entry names the file system by UUID (device names change between xvda, sda and
 *    nvme0n1; a directory volume gets a new UUID); a root entry is added when there is none;
 *  - entries for file systems whose files were copied into the image's root file system are
 *    commented out (their disks do not exist on the new instance);
 *  - entries naming another partition of the source machine by UUID/LABEL/PARTUUID (not
 *    `nofail`/`noauto`) are commented out too: an instance of the image has no such disk.
 * Plain device names (`/dev/sdb /mnt`) are launch-time attachments and stay.
 */
export function adjustFstab(
  text: string,
  root: FsIdentity,
  mergedMountPoints: readonly string[],
): FstabAdjustment {
  const notes: string[] = [];
  const out: string[] = [];
  let hasRoot = false;
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  for (const line of lines) {
    const e = parseEntry(line);
    if (!e) {
      out.push(line);
      continue;
    }
    if (e.file === '/') {
      hasRoot = true;
      const typeOk = e.type === root.type || e.type === 'auto';
      if (isRootIdentity(e.spec, root) && typeOk) {
        out.push(line);
        continue;
      }
      const fields = line.trim().split(/\s+/);
      fields[0] = `UUID=${root.uuid}`;
      if (!typeOk) {
        fields[2] = root.type;
        fields[3] = 'defaults';
      }
      out.push(`# amibundle: was: ${line.trim()}`, fields.join('\t'));
      notes.push(
        `/etc/fstab: the root entry now names the file system by UUID=${root.uuid}${typeOk ? '' : ` and type ${root.type}`} (was ${e.spec}${typeOk ? '' : ` ${e.type}`})`,
      );
      continue;
    }
    const optionList = e.options.split(',');
    const optional = optionList.includes('nofail') || optionList.includes('noauto');
    if (mergedMountPoints.includes(e.file)) {
      out.push(`# amibundle: merged into the root file system: ${line.trim()}`);
      notes.push(
        `/etc/fstab: commented out ${e.file}: its files were copied into the image's root file system`,
      );
      continue;
    }
    if (namesADisk(e.spec) && !isRootIdentity(e.spec, root) && !optional) {
      out.push(`# amibundle: no such disk in the image: ${line.trim()}`);
      notes.push(
        `/etc/fstab: commented out ${e.file} (${e.spec}): the image has no such disk, so booting would wait for it`,
      );
      continue;
    }
    out.push(line);
  }
  if (!hasRoot) {
    out.push(`UUID=${root.uuid}\t/\t${root.type}\tdefaults\t0\t1`);
    notes.push(`/etc/fstab: added a root entry (UUID=${root.uuid}); the volume's fstab had none`);
  }
  return { text: `${out.join('\n')}\n`, notes, changed: notes.length > 0 };
}
