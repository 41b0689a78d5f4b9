// The flags every S3 command shares (credentials, region, endpoint, retries, parallelism) and
// the plain S3ConnectionConfig they resolve to. Short names differ between commands (-s is also
// --source elsewhere), so the shared table has long names only and each command adds its own
// with withShortNames().
import type { Reporter } from '../events.js';
import { UsageError } from '../errors.js';
import {
  CANNED_ACLS,
  regionOfAwsHost,
  regionOfLocation,
  type CannedAcl,
  type S3ConnectionConfig,
} from '../s3/connection.js';
import { RETRY_OFF, RETRY_ON, type RetryPolicy } from '../s3/retry.js';
import { flag, flags } from './flag-catalog.js';
import type { OptionSpec, ParsedOptions } from './options.js';

export const s3ConnectionOptions: readonly OptionSpec[] = flags(
  'accessKey',
  'secretKey',
  'delegationToken',
  'region',
  'url',
  'sigv',
  'retry',
  'concurrency',
  'timeout',
);

export const aclOption: OptionSpec = flag('acl');

/** The shared table with this command's one-letter names, e.g. `{ accessKey: 'a' }`. */
export function withShortNames(
  specs: readonly OptionSpec[],
  shorts: Readonly<Record<string, string>>,
): OptionSpec[] {
  return specs.map((s) => (shorts[s.name] ? { ...s, short: shorts[s.name] } : s));
}

/** The S3 flags of the ec2-*-bundle tools, whose one-letter names are -a, -s and -t. */
export const s3ToolConnectionOptions: readonly OptionSpec[] = withShortNames(s3ConnectionOptions, {
  accessKey: 'a',
  secretKey: 's',
  delegationToken: 't',
});

/** `-b BUCKET[/PREFIX]`, mandatory for the S3 tools. */
export function bucketOption(help: string): OptionSpec {
  return flag('bucket', { required: true, help });
}

function endpointUrl(text: string): URL {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`;
  try {
    const url = new URL(withScheme);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme');
    return url;
  } catch {
    throw new UsageError(`--url has invalid value '${text}': not an http(s) URL`);
  }
}

export function retryPolicyFromOptions(opts: ParsedOptions): RetryPolicy {
  return opts.flag('retry') ? RETRY_ON : RETRY_OFF;
}

/** Reads the shared flags; `location` (upload's --location) sets the region when --region does not. */
export function connectionFromOptions(
  opts: ParsedOptions,
  out: Reporter,
  extra: { readonly location?: string } = {},
): S3ConnectionConfig {
  const accessKeyId = opts.str('accessKey');
  const secretAccessKey = opts.str('secretKey');
  const sessionToken = opts.str('delegationToken');
  if (accessKeyId !== undefined || secretAccessKey !== undefined || sessionToken !== undefined) {
    if (accessKeyId === undefined) throw new UsageError('missing mandatory parameter: --access-key');
    if (secretAccessKey === undefined) throw new UsageError('missing mandatory parameter: --secret-key');
  }
  if (opts.str('sigv') === '2')
    throw new UsageError(
      '--sigv 2 is not supported: amibundle signs every request with Signature Version 4, which all S3 regions and S3-compatible servers accept',
      'drop --sigv',
    );
  const concurrency = opts.int('concurrency')!;
  if (concurrency < 1 || concurrency > 64)
    throw new UsageError(`--concurrency has invalid value '${concurrency}': give 1 to 64`);
  const timeout = opts.int('timeout')!;
  if (timeout < 1) throw new UsageError(`--timeout has invalid value '${timeout}': give at least 1 second`);

  let region = opts.str('region');
  let regionSource = region !== undefined ? '--region' : undefined;
  if (region === undefined && extra.location !== undefined) {
    region = regionOfLocation(extra.location);
    regionSource = '--location';
  }
  let endpoint: string | undefined;
  const urlText = opts.str('url') ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  if (urlText !== undefined && urlText !== '') {
    const url = endpointUrl(urlText);
    const awsRegion = regionOfAwsHost(url.hostname);
    if (awsRegion !== undefined) {
      // An AWS endpoint only tells the region; the SDK addresses AWS itself.
      if (region === undefined) {
        region = awsRegion;
        regionSource = '--url';
        out.debug(`Region determined to be ${region} from ${url.hostname}`);
      }
    } else {
      endpoint = url.toString().replace(/\/$/, '');
    }
  }
  return {
    ...(accessKeyId !== undefined && secretAccessKey !== undefined
      ? { credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) } }
      : {}),
    ...(region !== undefined ? { region, regionSource } : {}),
    ...(endpoint !== undefined ? { endpoint } : {}),
    retry: retryPolicyFromOptions(opts),
    concurrency,
    timeoutMs: timeout * 1000,
  };
}

export function aclFromOptions(opts: ParsedOptions): CannedAcl {
  const given = opts.str('acl');
  if (given !== undefined) return given as CannedAcl;
  const fromEnv = process.env.AMIBUNDLE_S3_ACL;
  if (fromEnv === undefined || fromEnv === '') return 'aws-exec-read';
  const acl = CANNED_ACLS.find((a) => a === fromEnv);
  if (!acl)
    throw new UsageError(
      `AMIBUNDLE_S3_ACL has invalid value '${fromEnv}': Please specify one of these values: ${CANNED_ACLS.join(', ')}`,
    );
  return acl;
}

/** The connection of `--upload`/`--from` streaming: upload's --location counts as a region. */
export function streamingConnectionFromOptions(opts: ParsedOptions, out: Reporter): S3ConnectionConfig {
  // Only commands that create buckets (bundle-image --upload) take --location.
  const location = opts.declares('location') ? opts.str('location') : undefined;
  return connectionFromOptions(opts, out, location !== undefined ? { location } : {});
}
