// Flags shared by the commands that read a bundle (unbundle, verify): the manifest, where the
// parts are, which key copy to unwrap, and the certificate that checks the signature.
import { DISK_FORMATS } from '../disk/image-sink.js';
import type { OptionSpec } from './options.js';

export function manifestOption(help: string, required: boolean): OptionSpec {
  return {
    name: 'manifest',
    long: 'manifest',
    short: 'm',
    kind: 'string',
    metavar: 'PATH',
    path: 'file',
    ...(required ? { required } : {}),
    help,
  };
}

export function privateKeyOption(help: string, required: boolean): OptionSpec {
  return {
    name: 'privatekey',
    long: 'privatekey',
    short: 'k',
    kind: 'string',
    metavar: 'PATH',
    path: 'file',
    ...(required ? { required } : {}),
    help,
  };
}

export function sourceOption(defaultText: string): OptionSpec {
  return {
    name: 'source',
    long: 'source',
    short: 's',
    kind: 'string',
    metavar: 'DIRECTORY',
    path: 'dir',
    default: defaultText,
    help: 'Directory holding the parts.',
  };
}

export const ec2KeyOption: OptionSpec = {
  name: 'ec2Key',
  long: 'ec2-key',
  kind: 'flag',
  help: "-k is EC2's key: unwrap the ec2_encrypted_key/iv copies (for archives made with your own --ec2cert).",
};

/** `--cert`: unbundle has no short name for it (ec2-unbundle had none); verify uses -c. */
export function signatureCertOption(short?: 'c'): OptionSpec {
  return {
    name: 'verifyCert',
    long: 'cert',
    ...(short ? { short } : {}),
    kind: 'string',
    metavar: 'PATH',
    path: 'file',
    help: 'Require the manifest signature to verify with this certificate.',
  };
}

/** `--format`: the disk format unbundle writes, straight from the tar stream. */
export const diskFormatOption: OptionSpec = {
  name: 'format',
  long: 'format',
  kind: 'string',
  metavar: 'FORMAT',
  choices: DISK_FORMATS,
  default: 'raw',
  help: 'Disk format of the restored image: raw (NAME, sparse), qcow2 (NAME.qcow2), vmdk (NAME.vmdk, streamOptimized, as AWS VM Import takes), vhd (NAME.vhd, dynamic) or vhd-fixed (NAME.vhd, fixed). Written straight from the bundle, never through a raw copy.',
};
