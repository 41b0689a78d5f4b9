// The flags every EBS command shares (region, endpoints, parallelism, timeout, attempts) and the
// plain EbsConnectionConfig they resolve to. Credentials always come from the AWS SDK's default
// chain (environment, profiles, SSO, container, instance profile), as for the S3 commands
// without -a/-s. The flags themselves are the catalog's (flag-catalog.ts), with EBS defaults.
import { UsageError } from '../errors.js';
import {
  DEFAULT_EBS_CONCURRENCY,
  DEFAULT_EBS_RETRY,
  DEFAULT_EBS_TIMEOUT_SECONDS,
  MAX_EBS_CONCURRENCY,
  type EbsConnectionConfig,
} from '../ebs/connection.js';
import { flag, flags } from './flag-catalog.js';
import type { OptionSpec, ParsedOptions } from './options.js';

export const ebsConnectionOptions: readonly OptionSpec[] = [
  flag('region', {
    help: 'AWS region of the snapshot. Default: the SDK chain (AWS_REGION, the profile).',
  }),
  ...flags('endpointUrl', 'ec2Url'),
  flag('concurrency', {
    defaultValue: DEFAULT_EBS_CONCURRENCY,
    help: `Block requests in flight at once (1-${MAX_EBS_CONCURRENCY}). Memory use is about N x 512 KiB.`,
  }),
  flag('timeout', {
    defaultValue: DEFAULT_EBS_TIMEOUT_SECONDS,
    help: 'A request whose connection is silent this long fails and is retried; connecting may take at most 10 s of it.',
  }),
  flag('attempts'),
];

function endpoint(flag: string, text: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `https://${text}`;
  try {
    const url = new URL(withScheme);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme');
    return url.toString().replace(/\/$/, '');
  } catch {
    throw new UsageError(`${flag} has invalid value '${text}': not an http(s) URL`);
  }
}

export function ebsConnectionFromOptions(opts: ParsedOptions): EbsConnectionConfig {
  const concurrency = opts.int('concurrency')!;
  if (concurrency < 1 || concurrency > MAX_EBS_CONCURRENCY)
    throw new UsageError(
      `--concurrency has invalid value '${concurrency}': give 1 to ${MAX_EBS_CONCURRENCY}`,
    );
  const timeout = opts.int('timeout')!;
  if (timeout < 1) throw new UsageError(`--timeout has invalid value '${timeout}': give at least 1 second`);
  const attempts = opts.int('attempts')!;
  if (attempts < 1 || attempts > 20)
    throw new UsageError(`--attempts has invalid value '${attempts}': give 1 to 20`);
  const region = opts.str('region');
  const endpointText = opts.str('endpointUrl');
  const ebsEndpoint = endpointText !== undefined ? endpoint('--endpoint-url', endpointText) : undefined;
  const ec2Text = opts.str('ec2Url');
  const ec2Endpoint = ec2Text !== undefined ? endpoint('--ec2-url', ec2Text) : ebsEndpoint;
  return {
    ...(region !== undefined ? { region } : {}),
    ...(ebsEndpoint !== undefined ? { ebsEndpoint } : {}),
    ...(ec2Endpoint !== undefined ? { ec2Endpoint } : {}),
    concurrency,
    timeoutMs: timeout * 1000,
    retry: { ...DEFAULT_EBS_RETRY, attempts },
  };
}
