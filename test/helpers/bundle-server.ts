import { createReadStream, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';

export interface BundleServer {
  readonly url: (name: string) => string;
  /** Request log: path and Range header of every request. */
  readonly requests: Array<{ path: string; range: string | null }>;
  close(): Promise<void>;
}

/**
 * Serves files over HTTP on 127.0.0.1 with Range support and an ETag, like a CDN. `dropAfter` cuts
 * the first N responses after that many bytes (a flaky mobile link).
 */
export async function bundleServer(files: Record<string, string>, o: { dropAfter?: number; drops?: number } = {}): Promise<BundleServer> {
  const requests: BundleServer['requests'] = [];
  let drops = o.drops ?? 0;
  const server: Server = createServer((req: IncomingMessage, res) => {
    const name = decodeURIComponent((req.url ?? '/').slice(1));
    requests.push({ path: name, range: req.headers.range ?? null });
    const file = files[name];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    const size = statSync(file).size;
    const etag = `"${size}-${statSync(file).mtimeMs}"`;
    let start = 0;
    let end = size - 1;
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const ifRange = req.headers['if-range'];
    if (m && (!ifRange || ifRange === etag)) {
      start = Number(m[1]);
      if (m[2]) end = Number(m[2]);
      if (start >= size) {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        return;
      }
      res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${size}`, 'content-length': end - start + 1, etag });
    } else {
      res.writeHead(200, { 'content-length': size, etag, 'accept-ranges': 'bytes' });
    }
    const stream = createReadStream(file, { start, end });
    if (drops > 0 && o.dropAfter !== undefined) {
      drops--;
      let sent = 0;
      const limit = o.dropAfter;
      stream.on('data', (chunk: string | Buffer) => {
        const c = chunk as Buffer;
        if (sent + c.length >= limit) {
          res.write(c.subarray(0, limit - sent));
          stream.destroy();
          res.socket?.destroy();
          return;
        }
        sent += c.length;
        res.write(c);
      });
      stream.on('end', () => res.end());
    } else {
      stream.pipe(res);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: (name) => `http://127.0.0.1:${port}/${encodeURIComponent(name)}`,
    requests,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
