// Finding the EC2 certificate a bundle's key and IV are wrapped to: the flag, then the places
// ec2-ami-tools looks, then the copies shipped in certs/ (public certificates).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MissingFileError } from '../errors.js';

export type Partition = 'aws' | 'aws-us-gov' | 'aws-cn';

const fileFor: Record<Partition, string> = {
  aws: 'cert-ec2.pem',
  'aws-us-gov': 'cert-ec2-gov.pem',
  'aws-cn': 'cert-ec2-cn-north-1.pem',
};

/** certs/ at the package root, from src/crypto or dist/crypto alike. */
export const shippedCertDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../certs');

export function ec2CertCandidates(
  partition: Partition = 'aws',
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  const file = fileFor[partition];
  const homes = [env.EC2_AMITOOL_HOME, env.EC2_HOME].filter((h): h is string => !!h);
  return [
    ...homes.map((h) => path.join(h, 'etc/ec2/amitools', file)),
    path.join('/etc/ec2/amitools', file),
    path.join(shippedCertDir, file),
  ];
}

/** Path of the EC2 certificate to use; `explicit` is `--ec2cert` (already checked to exist). */
export function findEc2Cert(explicit: string | undefined, partition: Partition = 'aws'): string {
  if (explicit) return explicit;
  const found = ec2CertCandidates(partition).find((p) => fs.existsSync(p));
  if (!found)
    throw new MissingFileError(
      'no EC2 certificate found',
      `pass --ec2cert PATH (cert-ec2.pem from ec2-ami-tools' etc/ec2/amitools/) or set EC2_AMITOOL_HOME`,
    );
  return found;
}
