/**
 * The local emulators (local/emulators.mjs, started once for the test run by jest's globalSetup
 * exactly as `npm start` starts them) answer on loopback and on no other interface: nobody on the
 * same network can put a referral on the work queue or edit the ledger.
 */
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { isLoopbackAddress } from '../../local/loopback';

/** Whether a TCP connection to host:port is accepted. */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: 2_000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

/** This machine's addresses other than loopback (link-local IPv6 needs a scope id: left out). */
function externalAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((info) => info !== undefined && !info.internal && !info.address.startsWith('fe80:'))
    .map((info) => info!.address);
}

const endpoints = (): [string, number][] => [
  ['SQS (fauxqs)', Number(new URL(process.env.TEST_SQS_ENDPOINT!).port)],
  ['DynamoDB (dynalite)', Number(new URL(process.env.TEST_DYNAMODB_ENDPOINT!).port)],
];

describe('local emulators: loopback only', () => {
  it('binds every emulator socket to a loopback address', () => {
    // Prepare
    const listening = JSON.parse(process.env.TEST_EMULATORS_LISTENING!) as { name: string; address: string }[];

    // Assess
    expect(listening.map(({ name }) => name)).toEqual(['SQS emulator (fauxqs)', 'DynamoDB emulator (dynalite)']);
    for (const { address } of listening) expect(isLoopbackAddress(address)).toBe(true);
  });

  it.each(endpoints())('%s accepts connections on 127.0.0.1', async (_name, port) => {
    expect(await accepts('127.0.0.1', port)).toBe(true);
  });

  // Only as strong as this machine's interfaces: vacuous where loopback is the only one (the test above still holds there).
  it.each(endpoints())('%s refuses connections on every other interface of this machine', async (_name, port) => {
    // Act
    const reachable: string[] = [];
    for (const address of externalAddresses()) if (await accepts(address, port)) reachable.push(address);

    // Assess
    expect(reachable).toEqual([]);
  });
});
