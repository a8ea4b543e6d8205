/** The Kubernetes machinery shared by the operator and the runtime pods. */
export * from './apply.js';
export * from './cache.js';
export * from './client.js';
export * from './controller.js';
export * from './events.js';
export * from './leader-election.js';
export * from './logging.js';
export * from './metrics.js';
export * from './rate-limiter.js';
export * from './reflector.js';
export * from './resource.js';
export * from './watch.js';
export * from './workqueue.js';
