// A sweep of bad invocations: each gets one line on stderr that says what is wrong, the
// documented exit code, no stack trace, and leaves nothing behind.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { bundledCases, keysDir, tempDir } from '../support/fixtures.js';

let tmp: { dir: string; remove: () => void };
let image: string;
let dest: string;
let garbage: string;
beforeAll(() => {
  tmp = tempDir('bad');
  image = path.join(tmp.dir, 'disk.img');
  fs.writeFileSync(image, crypto.randomBytes(4096));
  dest = path.join(tmp.dir, 'dest');
  fs.mkdirSync(dest);
  garbage = path.join(tmp.dir, 'garbage.pem');
  fs.writeFileSync(garbage, 'not a key\n');
});
afterAll(() => tmp.remove());

const key = (f: string): string => path.join(keysDir, f);
const fixtureManifest = (): string => {
  const c = bundledCases()[0]!;
  return path.join(c.dir, c.expected!.manifest_file);
};

type Case = [label: string, tool: string, args: () => string[], code: number, message: RegExp];

const bundle = (...extra: string[]): string[] => [
  '-i',
  image,
  '-k',
  key('user-key.pem'),
  '-c',
  key('user-cert.pem'),
  '-u',
  '123456789012',
  '--ec2cert',
  key('ec2-cert.pem'),
  '-d',
  dest,
  '-r',
  'x86_64',
  '--batch',
  ...extra,
];

/** bundle-vol's mandatory flags; the checks below come before it looks at the machine. */
const volume = (): string[] => [
  '-k',
  key('user-key.pem'),
  '-c',
  key('user-cert.pem'),
  '-u',
  '123456789012',
  '--ec2cert',
  key('ec2-cert.pem'),
  '-d',
  dest,
  '-r',
  'x86_64',
  '--batch',
];

const cases: Case[] = [
  ['unknown flag', 'ec2-bundle-image', () => bundle('--frobnicate'), 1, /invalid option: --frobnicate/],
  ['unknown short flag', 'ec2-bundle-image', () => bundle('-Z'), 1, /invalid option: -Z/],
  ['missing image', 'ec2-bundle-image', () => bundle().slice(2), 1, /missing mandatory parameter: --image/],
  [
    'missing cert',
    'ec2-bundle-image',
    () => ['-i', image, '-k', key('user-key.pem'), '-u', '123456789012'],
    1,
    /missing mandatory parameter: --cert/,
  ],
  [
    'missing user',
    'ec2-bundle-image',
    () => ['-i', image, '-k', key('user-key.pem'), '-c', key('user-cert.pem')],
    1,
    /missing mandatory parameter: --user/,
  ],
  ['flag without value', 'ec2-bundle-image', () => [...bundle(), '-p'], 1, /missing argument: --prefix/],
  [
    'image does not exist',
    'ec2-bundle-image',
    () => bundle('-i', '/nonexistent/disk.img'),
    2,
    /--image has invalid value '\/nonexistent\/disk.img': File does not exist/,
  ],
  [
    'image is a directory',
    'ec2-bundle-image',
    () => bundle('-i', tmp.dir),
    2,
    /--image has invalid value .*File does not exist or is not a file/,
  ],
  [
    'key does not exist',
    'ec2-bundle-image',
    () => bundle('-k', '/nonexistent.pem'),
    2,
    /--privatekey has invalid value/,
  ],
  [
    'destination does not exist',
    'ec2-bundle-image',
    () => bundle('-d', '/nonexistent-dir'),
    2,
    /--destination has invalid value .*Directory does not exist/,
  ],
  [
    'ec2cert does not exist',
    'ec2-bundle-image',
    () => bundle('--ec2cert', '/nonexistent-cert.pem'),
    2,
    /--ec2cert has invalid value/,
  ],
  [
    'access key id as user',
    'ec2-bundle-image',
    () => bundle('-u', 'AKIAIOSFODNN7EXAMPLE'),
    1,
    /the user ID should consist of 12 digits.*should not be your Access Key ID/,
  ],
  [
    'user too long',
    'ec2-bundle-image',
    () => bundle('-u', '1234567890123'),
    1,
    /--user has invalid value '1234567890123'/,
  ],
  [
    'prefix with slash',
    'ec2-bundle-image',
    () => bundle('-p', 'a/b'),
    1,
    /^ERROR: --prefix has invalid value 'a\/b': the bundle name 'a\/b' contains '\/'/,
  ],
  ['empty prefix', 'ec2-bundle-image', () => bundle('-p', ''), 1, /bundle name \(-p\) is empty/],
  [
    'prefix starting with dash',
    'ec2-bundle-image',
    () => bundle('-p', '-x'),
    1,
    /cannot be used as a file name/,
  ],
  [
    'bad block device mapping',
    'ec2-bundle-image',
    () => bundle('-B', 'ami=sda1=x'),
    1,
    /--block-device-mapping has invalid value 'ami=sda1=x'/,
  ],
  [
    'bad block device mapping entry',
    'ec2-bundle-image',
    () => bundle('-B', 'root'),
    1,
    /--block-device-mapping has invalid value 'root'/,
  ],
  [
    'cert does not match key',
    'ec2-bundle-image',
    () => bundle('-c', key('ec2-cert.pem')),
    254,
    /the certificate \(-c \S+\/ec2-cert\.pem\) does not match the private key \(-k \S+\/user-key\.pem\)/,
  ],
  [
    'key is not a key',
    'ec2-bundle-image',
    () => bundle('-k', garbage),
    254,
    /private key \(-k \S+\/garbage\.pem\) is not a PEM RSA private key/,
  ],
  [
    'cert is not a cert',
    'ec2-bundle-image',
    () => bundle('-c', garbage),
    254,
    /certificate \(-c \S+\/garbage\.pem\) is not a PEM X.509 certificate/,
  ],
  [
    'ec2cert is not a cert',
    'ec2-bundle-image',
    () => bundle('--ec2cert', garbage),
    254,
    /EC2 certificate \(--ec2cert \S+\/garbage\.pem\) is not a PEM X.509 certificate/,
  ],
  [
    'bad sparse mode',
    'ec2-bundle-image',
    () => bundle('--sparse', 'maybe'),
    1,
    /--sparse has invalid value 'maybe'.*fs, zeros, none/,
  ],
  [
    'bad compression',
    'ec2-bundle-image',
    () => bundle('--compress', 'bzip2'),
    1,
    /--compress has invalid value 'bzip2'/,
  ],
  [
    'gzip level out of range',
    'ec2-bundle-image',
    () => bundle('--compress-level', '12'),
    1,
    /compression level 12 is out of range for gzip/,
  ],
  [
    'conflicting levels',
    'ec2-bundle-image',
    () => bundle('--fast', '--best'),
    1,
    /conflicting compression levels/,
  ],
  [
    'non-integer level',
    'ec2-bundle-image',
    () => bundle('--compress-level', 'high'),
    1,
    /invalid argument: --compress-level high/,
  ],
  [
    'zero threads',
    'ec2-bundle-image',
    () => bundle('--threads', '0'),
    1,
    /--threads must be between 1 and 256/,
  ],
  ['stray positional argument', 'ec2-bundle-image', () => bundle('extra'), 1, /unexpected argument 'extra'/],
  [
    'flag with a value it does not take',
    'ec2-bundle-image',
    () => bundle('--batch=yes'),
    1,
    /--batch takes no value/,
  ],
  [
    'unsupported architecture declined',
    'ec2-bundle-image',
    () => bundle('-r', 'sparc').filter((a) => a !== '--batch'),
    1,
    /unsupported architecture not confirmed/,
  ],
  [
    'unbundle without key',
    'ec2-unbundle',
    () => ['-m', fixtureManifest()],
    1,
    /missing mandatory parameter: --privatekey/,
  ],
  [
    'unbundle with missing manifest',
    'ec2-unbundle',
    () => ['-m', '/nonexistent.xml', '-k', key('user-key.pem')],
    2,
    /--manifest has invalid value/,
  ],
  [
    'unbundle with the wrong key',
    'ec2-unbundle',
    () => [
      '-m',
      fixtureManifest(),
      '-k',
      key('ec2-key.pem'),
      '-s',
      path.dirname(fixtureManifest()),
      '-d',
      dest,
      // Without it the signature check refuses the key first (test/cli/signature.test.ts).
      '--no-signature-check',
    ],
    254,
    /cannot decrypt the manifest's user_encrypted_key with this private key/,
  ],
  [
    'unbundle of a non-manifest',
    'ec2-unbundle',
    () => ['-m', garbage, '-k', key('user-key.pem'), '-d', dest],
    254,
    /garbage\.pem: manifest is not XML/,
  ],
  [
    'unbundle into a missing directory',
    'ec2-unbundle',
    () => ['-m', fixtureManifest(), '-k', key('user-key.pem'), '-d', '/nonexistent-dir'],
    2,
    /--destination has invalid value/,
  ],
  [
    'verify with a bad certificate',
    'amibundle',
    () => ['verify', '-m', fixtureManifest(), '-c', garbage],
    254,
    /certificate \(--cert\) is not a PEM X.509 certificate/,
  ],
  [
    'bundle-vol prefix with slash',
    'ec2-bundle-vol',
    () => [...volume(), '-p', 'a/b'],
    1,
    /^ERROR: --prefix has invalid value 'a\/b': the bundle name 'a\/b' contains '\/'/,
  ],
  [
    'bundle-vol prefix starting with dash',
    'ec2-bundle-vol',
    () => [...volume(), '-p', '-x'],
    1,
    /^ERROR: --prefix has invalid value '-x': .*cannot be used as a file name/,
  ],
  ['unknown command', 'amibundle', () => ['bundle-imag'], 1, /unknown command 'bundle-imag'/],
  ['ambiguous abbreviation', 'amibundle', () => ['unbundle', '--ma', 'x'], 1, /ambiguous option: --ma/],
];

describe('bad invocations: one line, documented exit code, nothing written', () => {
  it.each(cases)('%s', async (_label, tool, args, code, message) => {
    const before = fs.readdirSync(dest);
    const r = await runCli(tool, args());
    expect(r.code, r.stderr).toBe(code);
    // Warnings may precede it, but the failure itself is exactly one line, the last.
    const lines = r.stderr.trim().split('\n');
    expect(
      lines.filter((l) => !l.startsWith('WARNING: ')),
      r.stderr,
    ).toHaveLength(1);
    expect(lines.at(-1)).toMatch(/^ERROR: /);
    expect(lines.at(-1)).toMatch(message);
    expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/);
    expect(fs.readdirSync(dest)).toEqual(before);
  });

  it('--debug adds the stack, still without secrets', async () => {
    const r = await runCli('ec2-bundle-image', bundle('-c', key('ec2-cert.pem'), '--debug'));
    expect(r.code).toBe(254);
    expect(r.stderr).toMatch(/^ERROR: the certificate/);
    expect(r.stderr).toMatch(/at .*\.js:\d+/);
  });
});

describe('amibundle --help', () => {
  it('command names and summaries in two columns sized to the longest name', async () => {
    const r = await runCli('amibundle', ['--help']);
    expect(r.code).toBe(0);
    const rows = r.stdout.split('\n').filter((l) => /^ {4}\S/.test(l));
    expect(rows.length).toBeGreaterThan(10);
    const version = rows.find((l) => l.trimStart().startsWith('ec2-ami-tools-version'));
    expect(version).toMatch(/^ {4}ec2-ami-tools-version {2}\S/);
    // Every summary starts in the same column, two spaces after the longest name.
    const starts = new Set(rows.map((l) => /^ {4}\S+ +/.exec(l)![0].length));
    expect([...starts]).toEqual([4 + 'ec2-ami-tools-version'.length + 2]);
  });
});
