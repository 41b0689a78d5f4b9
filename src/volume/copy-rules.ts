// What is copied from the volume: rsync filter rules in the order that makes them safe. The
// signing key and certificate come first so that nothing (not -i, not --no-filter) brings them
// back; then the user's includes; then the excludes (system directories, other mounts, the image
// and its destination, swap files, the user's -e); then the security filter.
import fs from 'node:fs';
import path from 'node:path';
import { isWithin, volumePath, type MountEntry } from './mountinfo.js';

export type RuleReason =
  'key' | 'include' | 'system' | 'mount' | 'image' | 'swap' | 'user' | 'trust' | 'filter';

export interface CopyRule {
  readonly action: '+' | '-';
  /** rsync pattern, relative to the transfer root (the volume). */
  readonly pattern: string;
  readonly reason: RuleReason;
}

/** A literal path, inside the volume, that the size estimate can skip. */
export interface PrunedPath {
  readonly path: string;
  /** Only the directory's contents are skipped (the directory itself is kept as a mount point). */
  readonly contentsOnly: boolean;
}

export interface CopyPlan {
  readonly rules: readonly CopyRule[];
  /** The exclude list as people read it (the reference's "Excluding:" lines). */
  readonly excluded: readonly string[];
  readonly pruned: readonly PrunedPath[];
  /** Mounts below the volume whose files are copied into the image's one file system. */
  readonly merged: readonly MountEntry[];
  /** Things worth telling the user (merged mounts, bind mounts, patterns that match nothing). */
  readonly notes: readonly string[];
}

export interface CopyPlanInput {
  /** Real path of the volume. */
  readonly volume: string;
  /** Device number (major:minor) of the volume's own file system, when known. */
  readonly volumeDevNumber?: string;
  readonly mountsBelow: readonly MountEntry[];
  /** `-a/--all`: copy the contents of non-local mounts too. */
  readonly all: boolean;
  /** Security filter on (the default; `--no-filter` turns it off). */
  readonly filter: boolean;
  /** `-e` entries (comma lists split), plus the extra arguments a shell expansion produced. */
  readonly excludes: readonly string[];
  /** `-i` entries. */
  readonly includes: readonly string[];
  /** Host paths of the signing key and certificate (-k, -c): never copied. */
  readonly secretFiles: readonly string[];
  /** Host paths of the image being written (final and temporary names). */
  readonly imageFiles: readonly string[];
  /** Host path of the destination directory. */
  readonly destination: string;
  /** Host paths of bundle-vol's private temporary directory. */
  readonly workDirs: readonly string[];
  readonly swapFiles: readonly string[];
}

/** Always left out: their contents are run-time state; the directories stay as mount points. */
export const systemDirs = ['/dev', '/proc', '/sys', '/run', '/mnt', '/media', '/tmp', '/var/tmp'] as const;

/** File systems whose files belong in the image; anything else mounted below the volume is skipped. */
export const localFsTypes = new Set([
  'ext2',
  'ext3',
  'ext4',
  'xfs',
  'jfs',
  'reiserfs',
  'btrfs',
  'vfat',
  'msdos',
  'exfat',
  'f2fs',
]);

/** The reference's security filter, plus the SSH key types it predates. */
export const securityFilter = [
  '*/#*#',
  '*/.#*',
  '*.sw',
  '*.swo',
  '*.swp',
  '*~',
  '*.pem',
  '*.priv',
  '*id_rsa*',
  '*id_dsa*',
  '*id_ecdsa*',
  '*id_ed25519*',
  '*.gpg',
  '*.jks',
  '*/.ssh/authorized_keys',
  '*/.bash_history',
] as const;

/**
 * Public trust the security filter must not strip: CA stores hold public certificates as `*.pem`
 * (dropping them, as the reference did, leaves dangling hash links and breaks TLS on the new
 * instance), and package managers' keyrings and signed indexes are `*.gpg` public keys (dropping
 * them leaves an instance that cannot verify its package archive).
 */
export const trustStores = [
  '/etc/ssl/certs/*',
  '/usr/share/ca-certificates/***',
  '/etc/ca-certificates/***',
  '/etc/pki/ca-trust/***',
  '/etc/pki/tls/certs/*',
  '/usr/share/pki/ca-trust-source/***',
  '/usr/share/keyrings/***',
  '/etc/apt/trusted.gpg',
  '/etc/apt/trusted.gpg.d/***',
  '/etc/apt/keyrings/***',
  '/var/lib/apt/lists/*',
  '/etc/pki/rpm-gpg/***',
] as const;

const wildcard = /[*?[]/;

/** A path as an rsync pattern that matches only itself, with `suffix` (itself a pattern) appended. */
export function literalPattern(p: string, suffix = ''): string {
  // rsync reads backslashes as escapes only in patterns that contain a wildcard.
  if (!wildcard.test(p) && !wildcard.test(suffix)) return p + suffix;
  return p.replace(/[*?[\\]/g, '\\$&') + suffix;
}

function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/**
 * `-e`/`-i` entries are absolute paths relative to the volume (`-e /home` with `-v /mnt/vol`),
 * but a host path inside the volume (what a shell expands `-e /mnt/vol/tmp/*` to) means the
 * same place. An entry that names an existing path is taken literally; others are patterns.
 */
export function userPattern(volume: string, entry: string): { pattern: string; literal: boolean } {
  if (!entry.startsWith('/')) return { pattern: entry, literal: false };
  const trailing = entry.length > 1 && entry.endsWith('/') ? '/' : '';
  const bare = trailing ? entry.slice(0, -1) : entry;
  let inVolume = bare;
  if (volume !== '/' && isWithin(path.normalize(bare), volume))
    inVolume = volumePath(volume, path.normalize(bare));
  if (exists(path.join(volume, inVolume)))
    return { pattern: literalPattern(inVolume) + trailing, literal: true };
  return { pattern: inVolume + trailing, literal: false };
}

/** Host paths inside the volume, as anchored literal patterns (outside ones cannot be copied anyway). */
function insideVolume(volume: string, hostPaths: readonly string[]): string[] {
  const result: string[] = [];
  for (const p of hostPaths) {
    const abs = path.resolve(p);
    if (isWithin(abs, volume) && abs !== volume) result.push(volumePath(volume, abs));
  }
  return [...new Set(result)];
}

/** The key and certificate as given and as their real paths (a link inside the volume counts too). */
export function secretPaths(files: readonly string[]): string[] {
  const all: string[] = [];
  for (const f of files) {
    all.push(path.resolve(f));
    try {
      all.push(fs.realpathSync(f));
    } catch {
      /* missing files are reported by the option parser */
    }
  }
  return [...new Set(all)];
}

/** The plan as it is built: rules in order, and what each exclusion prunes from the estimate. */
class PlanBuilder {
  readonly rules: CopyRule[] = [];
  readonly excluded: string[] = [];
  readonly pruned: PrunedPath[] = [];
  readonly notes: string[] = [];
  readonly merged: MountEntry[] = [];

  add(action: '+' | '-', pattern: string, reason: RuleReason): void {
    if (!this.rules.some((r) => r.pattern === pattern && r.action === action))
      this.rules.push({ action, pattern, reason });
  }

  excludeLiteral(p: string, reason: RuleReason, contentsOnly: boolean): void {
    this.add('-', literalPattern(p, contentsOnly ? '/*' : ''), reason);
    this.pruned.push({ path: p, contentsOnly });
    this.excluded.push(contentsOnly ? `${p}/*` : p);
  }

  alreadyOut(p: string): boolean {
    return this.pruned.some((q) => (q.contentsOnly ? p.startsWith(`${q.path}/`) : isWithin(p, q.path)));
  }
}

/**
 * Mounts below the volume: local file systems are merged into the image (rsync descends into
 * them); the rest (proc, network, overlay, squashfs, tmpfs …) are left out unless --all.
 */
function planMountsBelow(plan: PlanBuilder, input: CopyPlanInput): void {
  const { volume } = input;
  const seenDevices = new Set<string>(input.volumeDevNumber ? [input.volumeDevNumber] : []);
  for (const m of input.mountsBelow) {
    const where = volumePath(volume, m.mountPoint);
    if (plan.pruned.some((p) => isWithin(where, p.path))) continue;
    if (input.all) {
      plan.merged.push(m);
      continue;
    }
    if (!localFsTypes.has(m.fsType)) {
      plan.excludeLiteral(where, 'mount', true);
      plan.notes.push(
        `${where} (${m.fsType}) is not a local file system: its files are not copied (-a copies them)`,
      );
      continue;
    }
    if (m.root !== '/' || (m.devNumber && !m.devNumber.startsWith('0:') && seenDevices.has(m.devNumber))) {
      plan.excludeLiteral(where, 'mount', true);
      plan.notes.push(`${where} is a bind mount of files copied elsewhere: its files are not copied twice`);
      continue;
    }
    seenDevices.add(m.devNumber);
    plan.merged.push(m);
    plan.excludeLiteral(`${where === '/' ? '' : where}/lost+found`, 'system', false);
    plan.notes.push(
      `${where} (${m.fsType}, ${m.source}) is a separate file system: its files go into the image's root file system`,
    );
  }
}

/** The image being made, the destination's contents, work directories and swap files. */
function planOwnFiles(plan: PlanBuilder, input: CopyPlanInput): void {
  const { volume } = input;
  for (const p of insideVolume(volume, input.imageFiles)) plan.excludeLiteral(p, 'image', false);
  // The destination's contents (earlier bundles, parts), not the directory: `-d /tmp` or
  // `-d /mnt` must still leave the image a /tmp and a /mnt.
  const dest = path.resolve(input.destination);
  if (isWithin(dest, volume) && dest !== volume && !plan.alreadyOut(`${volumePath(volume, dest)}/x`))
    plan.excludeLiteral(volumePath(volume, dest), 'image', true);
  for (const p of insideVolume(volume, input.workDirs))
    if (!plan.alreadyOut(p)) plan.excludeLiteral(p, 'image', false);
  for (const p of insideVolume(volume, input.swapFiles))
    if (!plan.alreadyOut(p)) plan.excludeLiteral(p, 'swap', false);
}

/** The user's --exclude entries, with a note for a literal path that matches nothing. */
function planUserExcludes(plan: PlanBuilder, input: CopyPlanInput): void {
  for (const entry of input.excludes) {
    const { pattern, literal } = userPattern(input.volume, entry);
    plan.add('-', pattern, 'user');
    plan.excluded.push(pattern);
    if (literal)
      plan.pruned.push({ path: pattern.replace(/\\(.)/g, '$1').replace(/\/$/, ''), contentsOnly: false });
    else if (entry.startsWith('/') && !wildcard.test(entry))
      plan.notes.push(`--exclude ${entry} matches nothing in the volume ${input.volume}`);
  }
}

export function planCopy(input: CopyPlanInput): CopyPlan {
  const { volume } = input;
  const plan = new PlanBuilder();
  for (const p of insideVolume(volume, secretPaths(input.secretFiles))) {
    plan.add('-', literalPattern(p), 'key');
    plan.pruned.push({ path: p, contentsOnly: false });
  }
  for (const entry of input.includes) plan.add('+', userPattern(volume, entry).pattern, 'include');
  for (const dir of systemDirs) plan.excludeLiteral(dir, 'system', true);
  plan.excludeLiteral('/lost+found', 'system', false);
  planMountsBelow(plan, input);
  planOwnFiles(plan, input);
  planUserExcludes(plan, input);
  if (input.filter) {
    for (const t of trustStores) plan.add('+', t, 'trust');
    for (const f of securityFilter) plan.add('-', f, 'filter');
  }
  const { rules, excluded, pruned, merged, notes } = plan;
  return { rules, excluded, pruned, merged, notes };
}

/** The rules as rsync `--filter` arguments: on the command line, so rsync's debug output names each. */
export function rsyncFilterArgs(rules: readonly CopyRule[]): string[] {
  return rules.map((r) => `--filter=${r.action} ${r.pattern}`);
}
