// migrateManifestFile(): migrate-manifest's file side as one library call. The manifest at
// `file` is read, authenticated, rebuilt for the target EC2 certificate (migrate.ts), and
// replaced in one step; the original is kept as FILE.bak. Everything that can refuse does so
// before anything is written, and a failed replace removes the fresh backup so a rerun is not
// blocked by it.
import fs from 'node:fs';
import { AmiError, BundleError, ExitCode, MissingFileError, UsageError } from '../errors.js';
import { silentReporter, type Reporter } from '../events.js';
import { MAX_MANIFEST_BYTES } from '../format/manifest-reader.js';
import { writeFileAtomic } from '../io/atomic-file.js';
import {
  authenticate,
  chooseIds,
  loadMigrationKeys,
  readSourceManifest,
  rebuildManifest,
  type SourceManifest,
} from './migrate.js';

const BACKUP_HINT = 'move it away (it may hold the original from an earlier migration) and run again';

export interface MigrateFileOptions {
  /** The manifest to migrate, rewritten in place (a symlink's target is what is replaced). */
  readonly file: string;
  /** Unwraps the bundle's key from the user copies, and signs the result. */
  readonly privateKeyPem: string;
  /** The existing signature must verify with it (unless signUnverified). */
  readonly userCertPem: string;
  /** The target EC2 certificate the key and IV are wrapped to anew. */
  readonly ec2CertPem: string;
  /** Re-sign a manifest whose signature does not verify (with a warning). */
  readonly signUnverified?: boolean;
  /** Drop kernel/ramdisk ids not given (true fails when the manifest has some: see chooseIds). */
  readonly mapping: boolean;
  /** New kernel/ramdisk ids; '' removes one. */
  readonly kernel?: string;
  readonly ramdisk?: string;
  /** Asked before ids are removed; without it removal is refused. */
  readonly confirm?: (question: string) => Promise<boolean>;
  readonly out?: Reporter;
}

export interface MigrateFileResult {
  readonly backup: string;
  /** The manifest version class the source had. */
  readonly sourceVersion: string;
  /** What the source signature verified over: raw bytes, the re-serialised form, or nothing. */
  readonly signatureCheckedOver: string;
  readonly kernelId: string | undefined;
  readonly ramdiskId: string | undefined;
  /** Ids removed from the manifest. */
  readonly removed: readonly string[];
}

function readManifestBytes(file: string): Buffer {
  const size = fs.statSync(file).size;
  if (size > MAX_MANIFEST_BYTES)
    throw new BundleError(`Bad manifest '${file}': ${size} bytes is not a bundle manifest`);
  return fs.readFileSync(file);
}

function readSource(file: string, raw: Buffer): SourceManifest {
  try {
    return readSourceManifest(raw);
  } catch (err) {
    if (err instanceof BundleError) throw new BundleError(`Bad manifest '${file}': ${err.message}`, err.hint);
    throw err;
  }
}

export async function migrateManifestFile(opts: MigrateFileOptions): Promise<MigrateFileResult> {
  const out = opts.out ?? silentReporter;
  const { file } = opts;
  const keys = loadMigrationKeys({
    privateKey: opts.privateKeyPem,
    userCert: opts.userCertPem,
    ec2Cert: opts.ec2CertPem,
  });
  out.event({ type: 'start', command: 'migrate-manifest', manifest: file });

  const raw = readManifestBytes(file);
  const source = readSource(file, raw);
  const verified = authenticate(source, keys.userCert);
  if (!verified && !opts.signUnverified)
    throw new BundleError(`Bad manifest '${file}': Manifest fails authentication.`);
  if (!verified)
    out.warn(
      `the signature of ${file} does not verify with -c; re-signing it with -k anyway (--sign-unverified)`,
    );
  const how = verified ?? 'unverified';
  if (how === 'rexml') out.debug('signature verified over the REXML re-serialisation, not the raw bytes');

  const backup = `${file}.bak`;
  if (fs.existsSync(backup))
    throw new AmiError(
      `backup file ${backup} already exists; nothing was changed`,
      ExitCode.missingFile,
      BACKUP_HINT,
    );

  const ids = chooseIds(source.parsed.manifest.machineConfiguration, {
    mapping: opts.mapping,
    ...(opts.kernel !== undefined ? { kernel: opts.kernel } : {}),
    ...(opts.ramdisk !== undefined ? { ramdisk: opts.ramdisk } : {}),
  });
  const migrated = rebuildManifest(source, { ...keys, ids });
  if (source.parsed.manifest.image.compression === 'zstd')
    out.warn('this bundle uses zstd: EC2 cannot register it, wherever its key is wrapped to');
  if (ids.removed.length > 0) {
    const question = `This operation will remove the kernel and/or ramdisk associated with the AMI (${ids.removed.join(', ')}). This may cause the AMI to fail to launch unless you specify an appropriate kernel and ramdisk at launch time.`;
    const ok = opts.confirm ? await opts.confirm(question) : false;
    if (!ok)
      throw new UsageError(
        'stopped: removing the kernel/ramdisk was not confirmed; nothing was changed',
        'pass --kernel/--ramdisk to set ids, or --batch to accept',
      );
  }

  // Replace the file a symlink points to, as writing in place did, not the link.
  let target = file;
  try {
    target = fs.realpathSync(file);
  } catch (err) {
    throw new MissingFileError(`cannot resolve ${file}: ${(err as Error).message}`);
  }
  const mode = fs.statSync(target).mode & 0o777;
  out.info('Backing up manifest...');
  await writeFileAtomic(backup, raw, { mode, overwrite: false }, BACKUP_HINT, 'backup file');
  try {
    await writeFileAtomic(target, migrated.bytes, { mode, overwrite: true });
  } catch (err) {
    // The original is untouched (the write is atomic); a stale backup would block the rerun.
    fs.rmSync(backup, { force: true });
    throw err;
  }
  const mc = migrated.manifest.machineConfiguration;
  return {
    backup,
    sourceVersion: source.versionClass,
    signatureCheckedOver: how,
    kernelId: mc?.kernelId,
    ramdiskId: mc?.ramdiskId,
    removed: ids.removed,
  };
}
