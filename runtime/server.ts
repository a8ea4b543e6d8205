/** The runtime pod's HTTP server: /healthz (alive), /readyz (caches synced, hosted clients loaded), /metrics. */
import express from 'express';
import { listen, type Listening } from './listening.js';
import type { Registry } from '../operator/kube/metrics.js';

export type RuntimeServer = Listening;

export async function startRuntimeServer(options: {
  port: number;
  registry: Registry;
  ready: () => boolean;
}): Promise<RuntimeServer> {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  app.get('/readyz', (_req, res) => {
    const ready = options.ready();
    res
      .status(ready ? 200 : 503)
      .type('text/plain')
      .send(ready ? 'ok\n' : 'not ready\n');
  });
  app.get('/metrics', async (_req, res) => {
    res.type(options.registry.contentType).send(await options.registry.metrics());
  });
  return listen(app, options.port);
}
