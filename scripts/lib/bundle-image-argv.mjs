// The bundle-image command line the benchmark scripts (bench.mjs, bench-rescue.mjs) run: the
// samples/ test keys, a made-up account and x86_64, never a question asked (--batch).

/** bundle-image's arguments (after the program) for `image` into `dest` under the prefix `name`. */
export function bundleImageArgs(image, keys, dest, name) {
  return [
    'bundle-image',
    '-i',
    image,
    '-k',
    keys.key,
    '-c',
    keys.cert,
    '--ec2cert',
    keys.ec2cert,
    '-u',
    '123456789012',
    '-r',
    'x86_64',
    '-d',
    dest,
    '-p',
    name,
    '--batch',
  ];
}
