/**
 * The local stack's one network promise: everything it runs listens on loopback only. Its SQS and
 * DynamoDB emulators check no credentials, and the webhook server accepts whoever holds a secret
 * printed on the screen, so a socket reachable from the network lets anyone on it queue a referral;
 * with real Shopify or Customer.io credentials that referral pays a real gift card or mails a real
 * person. `npm start` therefore reads back where each of its sockets is bound (the operating
 * system's answer, not the address it asked for) and refuses to run with real vendors when any is
 * wider than loopback.
 */
import { BlockList, isIP } from 'node:net';
import type { BoundAddress } from './emulators-types';

export type { BoundAddress };

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** 127.0.0.0/8, ::1 (however written), and 127.x as an IPv4-mapped IPv6 address. */
export function isLoopbackAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  const ip = mapped ? mapped[1]! : bare;
  const family = isIP(ip);
  return family === 4 ? LOOPBACK.check(ip, 'ipv4') : family === 6 ? LOOPBACK.check(ip, 'ipv6') : false;
}

/** Whether a URL's host is this machine's loopback (an IP literal, or the name localhost). */
export function isLoopbackUrl(url: string): boolean {
  let hostname: string;
  try {
    hostname = new URL(url).hostname;
  } catch {
    return false;
  }
  return hostname === 'localhost' || hostname.endsWith('.localhost') || isLoopbackAddress(hostname);
}

export interface RealVendor {
  /** e.g. "Shopify" */
  name: string;
  /** Where its calls go. */
  url: string;
}

/**
 * The vendors the worker would call beyond this machine: real money (Shopify) or real mail
 * (Customer.io). A URL on loopback (a fake or a tunnel the person runs) is not one.
 */
export function realVendors(targets: { shopifyUrl: string; customerIoUrl: string }): RealVendor[] {
  const vendors: RealVendor[] = [];
  if (!isLoopbackUrl(targets.shopifyUrl)) vendors.push({ name: 'Shopify', url: targets.shopifyUrl });
  if (!isLoopbackUrl(targets.customerIoUrl)) vendors.push({ name: 'Customer.io', url: targets.customerIoUrl });
  return vendors;
}

/** Why the stack must not run as it is, or undefined: sockets beyond loopback together with real vendors. */
export function exposureProblem(listening: BoundAddress[], vendors: RealVendor[]): string | undefined {
  const exposed = listening.filter(({ address }) => !isLoopbackAddress(address));
  if (exposed.length === 0 || vendors.length === 0) return undefined;
  return (
    `${exposed.map(({ name, address, port }) => `${name} listens on ${address}:${port}`).join(', ')}, beyond loopback, ` +
    `while real ${vendors.map(({ name, url }) => `${name} (${url})`).join(' and ')} credentials are set: anyone on this network ` +
    'could queue a referral that pays for real. Unset the SHOPIFY_* / CUSTOMERIO_* variables to use the sandboxes.'
  );
}
