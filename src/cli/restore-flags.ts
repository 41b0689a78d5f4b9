// Flags shared by the commands that read a bundle (unbundle, verify): the manifest, where the
// parts are, which key copy to unwrap, and what checks the signature (by default the public half
// of -k; --cert; or nothing with --no-signature-check), with the line that says which it was.
import { UsageError } from '../errors.js';
import type { SignatureReport } from '../events.js';
import type { SignatureOutcome } from '../restore/restore-options.js';
import { flag } from './flag-catalog.js';
import type { OptionSpec, ParsedOptions } from './options.js';

export function manifestOption(help: string, required: boolean): OptionSpec {
  return flag('manifest', { help, ...(required ? { required } : {}) });
}

export function privateKeyOption(help: string, required: boolean): OptionSpec {
  return flag('privatekey', { help, ...(required ? { required } : {}) });
}

export const ec2KeyOption: OptionSpec = flag('ec2Key');

/** `--cert`: unbundle has no short name for it (ec2-unbundle had none); verify uses -c. */
export function signatureCertOption(short?: 'c'): OptionSpec {
  return flag('verifyCert', short ? { short } : {});
}

export const noSignatureCheckOption: OptionSpec = flag('noSignatureCheck');

/**
 * The signature flags, checked: `--no-signature-check` with `--cert` is a contradiction.
 * Returns the certificate file (if any) and whether the check is skipped.
 */
export function signatureFlags(opts: ParsedOptions): { certFile?: string; skipSignature: boolean } {
  const certFile = opts.str('verifyCert');
  const skipSignature = opts.flag('noSignatureCheck');
  if (skipSignature && certFile !== undefined)
    throw new UsageError('--cert and --no-signature-check may not both be provided');
  return { ...(certFile !== undefined ? { certFile } : {}), skipSignature };
}

/** The line every run prints: what the signature was verified with, or why it was not checked. */
export function signatureLine(outcome: SignatureOutcome, certFile: string | undefined): string {
  if (outcome.verified)
    return outcome.with === 'cert'
      ? `signature: verified with --cert ${certFile ?? ''}`.trimEnd()
      : 'signature: verified with the key of -k';
  switch (outcome.reason) {
    case 'ec2-key':
      return "signature: not checked: --ec2-key mode (-k is EC2's key, not the signer's; give --cert to check)";
    case 'disabled':
      return 'signature: not checked: --no-signature-check';
    case 'no-key':
      return 'signature: not checked: give -k KEY or -c CERT';
  }
}

/** The same for the JSON `done` event. */
export function signatureEvent(outcome: SignatureOutcome, certFile: string | undefined): SignatureReport {
  return outcome.verified
    ? {
        verified: true,
        with: outcome.with === 'cert' ? 'cert' : 'privatekey',
        ...(outcome.with === 'cert' ? { cert: certFile } : {}),
      }
    : { verified: false, reason: outcome.reason };
}

/** `--format`: the disk format unbundle writes, straight from the tar stream. */
export const diskFormatOption: OptionSpec = flag('format');
