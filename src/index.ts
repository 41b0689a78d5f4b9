// amibundle as a library: the calls each command makes, with their option and result types,
// the events they report and the errors they throw. `import { bundleImage } from 'amibundle'`.
// Everything here takes plain values (PEM text, paths, an S3ConnectionConfig), never argv; pass
// a Reporter as `out` to see progress and events, or leave it out for silence.
export { bundleImage, checkBundleName } from './bundle/bundle-image.js';
export type {
  BundleImageOptions,
  BundleResult,
  CompressionOptions,
  SparseMode,
} from './bundle/bundle-options.js';
export { restoreBundle, verifyParts } from './restore/restore.js';
export type { RestoreOptions, RestoreResult, SignatureOutcome } from './restore/restore-options.js';
export { readManifestFile } from './format/manifest-file.js';
export type { ParsedManifest } from './format/manifest-reader.js';
export { DirPartSink } from './parts/dir-part-sink.js';
export { DirPartSource } from './parts/dir-part-source.js';
export type { PartSink } from './parts/part-sink.js';
export type { PartSource } from './parts/part-source.js';
export { uploadBundle } from './s3/upload-bundle.js';
export type { UploadBundleOptions, UploadBundleResult } from './s3/upload-bundle.js';
export { downloadBundle } from './s3/download-bundle.js';
export type { DownloadBundleOptions, DownloadBundleResult } from './s3/download-bundle.js';
export { deleteBundle } from './s3/delete-bundle.js';
export type { DeleteBundleOptions, DeleteBundleResult, DeleteSelection } from './s3/delete-bundle.js';
export { parseBucketArg, parseS3Url } from './s3/location.js';
export type { S3Location } from './s3/location.js';
export type { CannedAcl, S3ConnectionConfig } from './s3/connection.js';
export { bundleVolume } from './volume/bundle-volume.js';
export type { BundleVolumeOptions, BundleVolumeResult } from './volume/bundle-volume.js';
export { migrateManifestFile } from './migrate/migrate-file.js';
export type { MigrateFileOptions, MigrateFileResult } from './migrate/migrate-file.js';
export { EVENT_FIELDS, EVENT_TYPES, silentReporter } from './events.js';
export type { AmibundleEvent, EventType, OutputMode, ProgressUpdate, Reporter } from './events.js';
export { AmiError, BundleError, ExitCode, InterruptedError, MissingFileError, UsageError } from './errors.js';
export { toolVersion } from './version.js';
