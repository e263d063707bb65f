// Preloaded into kinesis-local (`node --require bind_loopback.cjs main.js`): every server it opens
// listens on CDR_DEVSTACK_BIND_HOST (127.0.0.1 by default) instead of on every interface.
//
// Why a preload: kinesis-local 0.6.2 has no host or interface setting. Its KinesisMockService
// hard-codes the host "0.0.0.0" for both the plain and the TLS port, and fs2 turns a wildcard host
// into `net.Server.listen(port, callback)`, which Node binds to all interfaces (IPv4 and IPv6).
// The environment variables it reads (KINESIS_MOCK_PLAIN_PORT, KINESIS_MOCK_TLS_PORT, ...) name
// ports only. Here a listen() without a host, or with a wildcard one, gets the loopback host.
"use strict";

const net = require("net");

const host = process.env.CDR_DEVSTACK_BIND_HOST || "127.0.0.1";
const wildcards = new Set([undefined, null, "", "0.0.0.0", "::"]);
const listen = net.Server.prototype.listen;

net.Server.prototype.listen = function listenOnLoopback(...args) {
  const [first] = args;
  if (args.length === 0 || typeof first === "function") {
    args.unshift(0, host); // listen([callback]): a random port
  } else if (typeof first === "number" || (typeof first === "string" && /^\d+$/.test(first))) {
    if (typeof args[1] === "string") {
      if (wildcards.has(args[1])) args[1] = host; // listen(port, host, ...)
    } else {
      args.splice(1, 0, host); // listen(port[, backlog][, callback])
    }
  } else if (first && typeof first === "object" && first.path === undefined && first.fd === undefined
             && first._handle === undefined && wildcards.has(first.host)) {
    args[0] = { ...first, host }; // listen({port, ...})
  }
  return listen.apply(this, args);
};
