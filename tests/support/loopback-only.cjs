'use strict';
/**
 * Preloaded (`node --require`) into the child that runs a packaged Lambda zip: every TCP
 * connection to anything but loopback is refused before DNS: the child names it on stderr and
 * exits at once (code 97), so a setting the test forgot (an AWS endpoint, a vendor URL) fails the
 * test straight away, rather than reaching the internet or being retried until the deadline.
 */
const net = require('node:net');

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|localhost|::1|\[::1\])$/i;
const connect = net.Socket.prototype.connect;

net.Socket.prototype.connect = function guardedConnect(...args) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  const options =
    first !== null && typeof first === 'object' ? first : { port: first, host: typeof args[1] === 'string' ? args[1] : undefined };
  const isIpc = typeof options.path === 'string' || (typeof first === 'string' && !/^\d+$/.test(first));
  const host = options.host ?? 'localhost';
  if (!isIpc && !LOOPBACK.test(String(host))) {
    process.stderr.write(`loopback-only: refused a connection to ${host}:${options.port}\n`);
    process.exit(97);
  }
  return connect.apply(this, args);
};
