// unbundle and verify check the manifest signature by default with the public half of -k, or
// with --cert; a bundle signed by another key (or not at all) is refused with one line; the
// output always says what the signature was verified with, or why it was not checked.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemberInfo } from '../../src/format/tar-header.js';
import { runCli } from '../support/cli.js';
import { craftBundle, tarOfMembers, type CraftOptions } from '../support/craft-bundle.js';
import { keysDir, tempDir } from '../support/fixtures.js';

let tmp: { dir: string; remove: () => void };
let otherKey: string;
beforeAll(() => {
  tmp = tempDir('signature');
  otherKey = crypto
    .generateKeyPairSync('rsa', { modulusLength: 2048 })
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString();
});
afterAll(() => tmp.remove());

const userKey = path.join(keysDir, 'user-key.pem');
const userCert = path.join(keysDir, 'user-cert.pem');
const ec2Key = path.join(keysDir, 'ec2-key.pem');
const file = (name: string): MemberInfo => ({ name, mode: 0o644, mtime: 1400000000, size: 1024 });
const tar = tarOfMembers([{ info: file('img') }]);

function bundle(label: string, opts: CraftOptions = {}): { dir: string; manifest: string; dest: string } {
  const work = fs.mkdtempSync(path.join(tmp.dir, `${label}-`));
  const dir = path.join(work, 'bundle');
  const dest = path.join(work, 'dest');
  fs.mkdirSync(dir);
  fs.mkdirSync(dest);
  return { dir, manifest: craftBundle(dir, 'img', tar, opts), dest };
}

function unbundle(b: { dir: string; manifest: string; dest: string }, ...extra: string[]) {
  return runCli('ec2-unbundle', ['-m', b.manifest, '-k', userKey, '-s', b.dir, '-d', b.dest, ...extra]);
}

describe('signature checked by default', () => {
  it('a bundle signed with the -k key pair restores and says so', async () => {
    const b = bundle('good');
    const r = await unbundle(b);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('signature: verified with the key of -k');
    expect(fs.readdirSync(b.dest)).toEqual(['img']);
  });

  it('with --cert it names the certificate', async () => {
    const b = bundle('cert');
    const r = await unbundle(b, '--cert', userCert);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`signature: verified with --cert ${userCert}`);
  });

  it('a bundle signed by another key is refused by unbundle and verify (exit 254, one line), nothing written', async () => {
    const b = bundle('other', { signingKey: otherKey });
    const r = await unbundle(b);
    expect(r.code, r.stdout).toBe(254);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^ERROR: the manifest signature does not verify with the key of -k/);
    expect(fs.readdirSync(b.dest)).toEqual([]);
    const v = await runCli('amibundle', ['verify', '-m', b.manifest, '-k', userKey]);
    expect(v.code).toBe(254);
    expect(v.stderr.trim().split('\n')).toHaveLength(1);
    expect(v.stderr).toMatch(/does not verify with the key of -k/);
  });

  it('a manifest edited after signing is refused', async () => {
    const b = bundle('edited', {
      resign: false,
      editManifest: (xml) => xml.replace('<user>123456789012</user>', '<user>123456789013</user>'),
    });
    const r = await unbundle(b);
    expect(r.code).toBe(254);
    expect(r.stderr).toMatch(/signature does not verify/);
    expect(fs.readdirSync(b.dest)).toEqual([]);
  });

  it('an unsigned manifest is refused', async () => {
    const b = bundle('unsigned', {
      resign: false,
      editManifest: (xml) => xml.replace(/<signature>[^<]*<\/signature>/, ''),
    });
    const r = await unbundle(b);
    expect(r.code).toBe(254);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^ERROR: the manifest has no signature/);
  });

  it("--no-signature-check restores another signer's bundle and says it did not check", async () => {
    const b = bundle('skip', { signingKey: otherKey });
    const r = await unbundle(b, '--no-signature-check');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('signature: not checked: --no-signature-check');
    const j = await runCli('amibundle', [
      'verify',
      '-m',
      b.manifest,
      '-k',
      userKey,
      '--no-signature-check',
      '--json',
    ]);
    expect(j.code).toBe(0);
    const done = j.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.type === 'done')!;
    expect(done.signature).toEqual({ verified: false, reason: 'disabled' });
  });

  it('--no-signature-check with --cert is a usage error', async () => {
    const b = bundle('both');
    const r = await unbundle(b, '--no-signature-check', '--cert', userCert);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--cert and --no-signature-check may not both be provided/);
  });

  it('--ec2-key mode cannot check without --cert, and says so; with --cert it checks', async () => {
    const b = bundle('ec2');
    const r = await runCli('amibundle', ['verify', '-m', b.manifest, '-k', ec2Key, '--ec2-key']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('signature: not checked: --ec2-key mode');
    const c = await runCli('amibundle', [
      'verify',
      '-m',
      b.manifest,
      '-k',
      ec2Key,
      '--ec2-key',
      '-c',
      userCert,
      '--json',
    ]);
    expect(c.code, c.stderr).toBe(0);
    const done = c.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.type === 'done')!;
    expect(done.signature).toEqual({ verified: true, with: 'cert', cert: userCert });
  });

  it('verify without -k or -c says the signature was not checked', async () => {
    const b = bundle('nokey');
    const r = await runCli('amibundle', ['verify', '-m', b.manifest]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('signature: not checked: give -k KEY or -c CERT');
  });
});
