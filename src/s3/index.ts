// What the rest of amibundle uses from the S3 side: the connection config, URL parsing, the three
// transfer operations, and the streaming sink and source. The flags are cli/s3-flags.ts's.
export { CANNED_ACLS, type CannedAcl, type S3ConnectionConfig } from './connection.js';
export { parseBucketArg, parseS3Url, s3Url, type S3Location } from './location.js';
export { uploadBundle, type UploadBundleOptions, type UploadBundleResult } from './upload-bundle.js';
export { downloadBundle, type DownloadBundleOptions, type DownloadBundleResult } from './download-bundle.js';
export { deleteBundle, type DeleteBundleOptions, type DeleteBundleResult } from './delete-bundle.js';
export { S3PartSink } from './part-sink.js';
export { S3PartSource } from './part-source.js';
export { openS3PartSink, openS3PartSource, type StreamingContext } from './streaming.js';
export { S3Error } from './s3-error.js';
