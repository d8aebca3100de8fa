/**
 * A TCP proxy for loopback tests of network faults: it sits in front of a server and passes bytes
 * both ways, letting a test cut a connection (both sockets, no goodbye) or alter bytes on the way.
 */
import * as net from 'node:net';

/**
 * What to do with a piece of one direction of one connection: pass it (possibly altered), or
 * return 'cut' to kill the connection. `conn` counts connections from 0; `before` is the bytes
 * that went that way on this connection before `data`.
 */
export type ProxyHook = (data: Buffer, info: { conn: number; before: number }) => Buffer | 'cut';

export interface TcpProxy {
  port: number;
  /** Connections killed by a hook so far. */
  cuts(): number;
  close(): void;
}

export async function tcpProxy(targetPort: number, hooks: { up?: ProxyHook; down?: ProxyHook }): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let conns = 0;
  let cuts = 0;
  const proxy = net.createServer((inbound) => {
    const conn = conns++;
    const outbound = net.connect(targetPort, '127.0.0.1');
    sockets.add(inbound).add(outbound);
    const pipe = (from: net.Socket, to: net.Socket, hook: ProxyHook | undefined) => {
      let before = 0;
      from.on('data', (d: Buffer) => {
        const out = hook ? hook(d, { conn, before }) : d;
        before += d.length;
        if (out === 'cut') {
          cuts++;
          inbound.destroy();
          outbound.destroy();
          return;
        }
        to.write(out);
      });
    };
    pipe(inbound, outbound, hooks.up);
    pipe(outbound, inbound, hooks.down);
    for (const s of [inbound, outbound]) s.on('error', () => undefined).on('close', () => (inbound.destroy(), outbound.destroy()));
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  return {
    port: (proxy.address() as net.AddressInfo).port,
    cuts: () => cuts,
    close: () => {
      for (const s of sockets) s.destroy();
      proxy.close();
    },
  };
}
