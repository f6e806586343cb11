import { exposureProblem, isLoopbackAddress, realVendors } from '../../local/loopback';

const SANDBOXES = { shopifyUrl: 'http://127.0.0.1:40001', customerIoUrl: 'http://127.0.0.1:40002' };
const REAL = { shopifyUrl: 'https://my-shop.myshopify.com', customerIoUrl: 'https://track.customer.io' };
const LOOPBACK_ONLY = [
  { name: 'SQS emulator (fauxqs)', address: '127.0.0.1', port: 40003 },
  { name: 'webhook server', address: '127.0.0.1', port: 3000 },
];
const ALL_INTERFACES = [...LOOPBACK_ONLY, { name: 'DynamoDB emulator (dynalite)', address: '::', port: 40004 }];

describe('local stack: loopback only, or no real vendors', () => {
  it.each(['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1'])('reads %s as loopback', (address) => {
    expect(isLoopbackAddress(address)).toBe(true);
  });

  it.each(['0.0.0.0', '::', '192.0.2.2', 'fd00::2', '::ffff:192.0.2.2', 'localhost'])('reads %s as beyond loopback', (address) => {
    expect(isLoopbackAddress(address)).toBe(false);
  });

  it('counts Shopify and Customer.io as real unless their URL is on this machine', () => {
    expect(realVendors(SANDBOXES)).toEqual([]);
    expect(realVendors({ ...SANDBOXES, customerIoUrl: 'http://localhost:9000' })).toEqual([]);
    expect(realVendors(REAL).map(({ name }) => name)).toEqual(['Shopify', 'Customer.io']);
    expect(realVendors({ ...SANDBOXES, shopifyUrl: REAL.shopifyUrl }).map(({ name }) => name)).toEqual(['Shopify']);
  });

  it('refuses real vendors while any socket listens beyond loopback, and names it', () => {
    // Act
    const problem = exposureProblem(ALL_INTERFACES, realVendors({ ...SANDBOXES, shopifyUrl: REAL.shopifyUrl }));

    // Assess
    expect(problem).toContain('DynamoDB emulator (dynalite) listens on :::40004');
    expect(problem).toContain('Shopify (https://my-shop.myshopify.com)');
    expect(problem).not.toContain('webhook server');
  });

  it('lets real vendors run when every socket is on loopback', () => {
    expect(exposureProblem(LOOPBACK_ONLY, realVendors(REAL))).toBeUndefined();
  });

  it('lets the sandboxes run whatever the sockets (nothing real to pay)', () => {
    expect(exposureProblem(ALL_INTERFACES, realVendors(SANDBOXES))).toBeUndefined();
  });
});
