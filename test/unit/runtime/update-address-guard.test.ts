import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { forbiddenAddress } from '../../../runtime/updates/address-guard.js';
import { httpPost } from '../../../runtime/updates/http-post.js';

describe('forbiddenAddress: where the runtime never posts an account’s updates', () => {
  it.each([
    '127.0.0.1',
    '127.1.2.3',
    '169.254.169.254',
    '169.254.1.1',
    '0.0.0.0',
    '::1',
    '::',
    'fe80::1',
    'fd00:ec2::254',
    '::ffff:127.0.0.1',
    '::ffff:169.254.169.254',
  ])('refuses %s', (address) => {
    expect(forbiddenAddress(address)).toMatch(/loopback, link-local, unspecified or cloud metadata/);
  });

  it.each(['10.0.0.7', '192.0.2.10', '2001:db8::7', 'fd00::1', '172.16.0.1'])('allows %s', (address) => {
    expect(forbiddenAddress(address)).toBeUndefined();
  });
});

describe('httpPost', () => {
  it('refuses a receiver whose name resolves to loopback, unless local development allows it', async () => {
    const server = createServer((_req, res) => res.writeHead(204).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const signal = new AbortController().signal;
      for (const host of ['127.0.0.1', 'localhost']) {
        const refused = await httpPost()(`http://${host}:${port}/`, {}, '{}', signal);
        expect(refused).toEqual({
          error: expect.stringMatching(/refusing to post updates to .*loopback/) as string,
        });
      }
      const allowed = await httpPost({ allowLoopback: true })(`http://127.0.0.1:${port}/`, {}, '{}', signal);
      expect(allowed).toEqual({ status: 204 });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('passes Retry-After through and reports no answer as an error', async () => {
    const server = createServer((_req, res) => res.writeHead(503, { 'retry-after': '12' }).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const post = httpPost({ allowLoopback: true });
    const signal = new AbortController().signal;
    try {
      expect(await post(`http://127.0.0.1:${port}/`, {}, '{}', signal)).toEqual({
        status: 503,
        retryAfter: '12',
      });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect(await post(`http://127.0.0.1:${port}/`, {}, '{}', signal)).toEqual({
      error: expect.any(String) as string,
    });
  });
});
