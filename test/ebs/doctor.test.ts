// `doctor --for to-ebs` against the EBS test server: credentials and region found, the probe
// DescribeSnapshots made (and its refusal reported as a failure), and what cannot be probed said.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEbsServer, type EbsServer } from '../support/ebs-server/index.js';
import { ebsCli } from './ebs-helpers.js';

let server: EbsServer;

beforeAll(async () => {
  server = await startEbsServer();
});

afterAll(async () => {
  await server.close();
});

describe('doctor --for to-ebs', () => {
  it('probes DescribeSnapshots and says what cannot be probed', async () => {
    const before = server.faults.counters.requests.DescribeSnapshots ?? 0;
    const r = await ebsCli(server, ['doctor', '--for', 'to-ebs']);
    expect(r.code).toBe(0);
    expect(server.faults.counters.requests.DescribeSnapshots).toBe(before + 1);
    expect(r.stdout).toMatch(/ec2:DescribeSnapshots allowed/);
    expect(r.stdout).toMatch(/cannot be probed/);
  });

  it('reports a refused DescribeSnapshots as a failed check', async () => {
    server.faults.deny('DescribeSnapshots');
    const r = await ebsCli(server, ['doctor', '--for', 'to-ebs']);
    server.faults.allow('DescribeSnapshots');
    expect(r.code).toBe(254);
    expect(r.stdout + r.stderr).toMatch(/UnauthorizedOperation/);
  });
});
